"""`python -m cluster_manager <command>`: the operator CLI that the charm's actions run.

Exit codes (`exit_codes`): 0 ok, 1 the request was refused (unknown name, past expiry, …),
2 usage error, 3 the database is unavailable. Every command accepts `--json` for
machine-readable output. The commands themselves are registered in `commands`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .commands import COMMANDS, CommandError
from .db.pool import DatabaseUnavailable
from .exit_codes import EXIT_DATABASE_UNAVAILABLE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from .settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="cluster-manager", description=(__doc__ or "").split("\n")[0]
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, registered in COMMANDS.items():
        sub = subparsers.add_parser(name, help=registered.help, description=registered.help)
        sub.add_argument("--json", action="store_true", help="print JSON")
        registered.arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        COMMANDS[args.command].handler(args, settings)
    except SettingsError as error:
        print(f"error: configuration: {error}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except DatabaseUnavailable as error:
        print(f"error: database unavailable: {error}", file=sys.stderr)
        return EXIT_DATABASE_UNAVAILABLE
    return EXIT_OK
