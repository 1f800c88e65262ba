"""`python -m cluster_manager <command>`: the operator CLI that the charm's actions run.

Exit codes: 0 ok, 1 the request was refused (unknown name, past expiry, …), 2 usage error,
3 the database is unavailable. Every command accepts `--json` for machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .db.pool import DatabaseUnavailable, connect
from .exit_codes import EXIT_DATABASE_UNAVAILABLE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from .settings import Settings, SettingsError


class CommandError(Exception):
    """The command was understood but refused; the message is for the operator."""


Handler = Callable[[argparse.Namespace, Settings], Any]
_COMMANDS: dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None], str]] = {}


def command(name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand; its handler returns the JSON-able result or prints itself."""

    def register(handler: Handler) -> Handler:
        _COMMANDS[name] = (handler, arguments, help_text)
        return handler

    return register


def emit(args: argparse.Namespace, result: Any, human: str) -> None:
    """Print `result` as JSON with --json, else the human-readable text."""
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(human)


def _no_arguments(_: argparse.ArgumentParser) -> None:
    pass


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", choices=("management", "connector"))


@command("migrate", "apply pending database migrations (safe to run concurrently)", _no_arguments)
def _migrate(args: argparse.Namespace, settings: Settings) -> None:
    from .db.migrate import migrate

    # A migration may rightly run longer than any request's statement.
    with connect(settings.database_url, statement_timeout=None) as conn:
        result = migrate(conn)
    emit(
        args,
        {"version": result.version, "applied": list(result.applied)},
        f"database schema at version {result.version} (applied {len(result.applied)})",
    )


@command("serve", "serve one app on its unix socket", _serve_arguments)
def _serve(args: argparse.Namespace, settings: Settings) -> None:
    from .serve import serve

    serve(args.app, settings)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command."""
    from . import commands  # noqa: F401 - registers the operator commands

    parser = argparse.ArgumentParser(
        prog="cluster-manager", description=(__doc__ or "").split("\n")[0]
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, arguments, help_text) in _COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json", action="store_true", help="print JSON")
        arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        handler = _COMMANDS[args.command][0]
        handler(args, settings)
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
