"""Exit codes of the operator CLI (docs/workload-contract.md), defined once.

Standard library only: charmcraft.yaml's `cluster-manager-front` part ships this module into
the charm, whose actions read the same numbers the CLI returns.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_REFUSED = 1
"""The command was understood and refused: unknown name, past expiry, duplicate."""
EXIT_USAGE = 2
"""Bad arguments (argparse exits with 2 itself) or settings the command cannot run with."""
EXIT_DATABASE_UNAVAILABLE = 3
"""PostgreSQL could not be reached or did not answer in time."""
