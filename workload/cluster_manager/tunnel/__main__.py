"""`python3 -m cluster_manager.tunnel`: run the tunnel process until SIGTERM or SIGINT.

Its own entry point, not a command of the operator CLI: the CLI imports every app's code, and
this process holds thousands of sockets in a few tens of MB.
"""

from __future__ import annotations

import sys

from ..exit_codes import EXIT_OK, EXIT_USAGE
from ..settings import Settings, SettingsError
from .server import serve_tunnel


def main() -> int:
    """Read the settings and serve; a bad setting exits with the CLI's usage code."""
    try:
        serve_tunnel(Settings.from_env())
    except SettingsError as error:
        print(f"error: configuration: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
