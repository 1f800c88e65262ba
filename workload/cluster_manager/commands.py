"""The operator commands of the CLI, and the registry `cli` builds its parser from.

Output and exit codes follow docs/workload-contract.md. The work itself is done by
`service`, the same functions the management API and the web UI call. `cli` imports this
module, never the other way round.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg

from . import service
from .db.heartbeats import prune_history
from .db.pool import DatabaseUnavailable, DbConnection, connect
from .envelope import APIError
from .protocol.envelope import rfc3339, utc
from .service import ConnectorCertificateError, connection_status, connector_fingerprint
from .settings import Settings

T = TypeVar("T")
Handler = Callable[[argparse.Namespace, Settings], Any]
Arguments = Callable[[argparse.ArgumentParser], None]


class CommandError(Exception):
    """The command was understood but refused (exit code 1); the message is for the operator."""


@dataclasses.dataclass(frozen=True)
class Command:
    """A registered subcommand."""

    handler: Handler
    arguments: Arguments
    help: str


COMMANDS: dict[str, Command] = {}
"""Every subcommand by name, in the order `--help` lists them."""


def command(name: str, help_text: str, arguments: Arguments):
    """Register a subcommand; its handler returns the JSON-able result or prints itself."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(handler, arguments, help_text)
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


def _database_work(settings: Settings, work: Callable[[DbConnection], T]) -> T:
    """Run `work` on a fresh connection, mapping refusals and outages onto exit codes."""
    try:
        with connect(settings.database_url) as conn:
            return work(conn)
    except APIError as error:
        raise CommandError(error.message) from None
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(str(error)) from error


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]
    return "\n".join(lines)


def relative_age(moment: datetime | None, now: datetime) -> str:
    """How long ago `moment` was, in its largest whole unit: "42s ago", "3h ago", "never"."""
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


# -- database and serving ------------------------------------------------------------------


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


@command(
    "prune-history",
    "drop heartbeat history older than the retention (MCM_HISTORY_RETENTION_DAYS)",
    _no_arguments,
)
def _prune_history(args: argparse.Namespace, settings: Settings) -> None:
    retention = settings.history_retention_days
    removed = _database_work(settings, lambda conn: prune_history(conn, retention))
    emit(
        args,
        {"removed": removed, "retention_days": retention},
        f"pruned {removed} heartbeat history rows older than {retention} days",
    )


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", choices=("management", "connector"))


@command("serve", "serve one app on its unix socket", _serve_arguments)
def _serve(args: argparse.Namespace, settings: Settings) -> None:
    from .serve import serve

    serve(args.app, settings)


# -- join tokens ---------------------------------------------------------------------------


def _rfc3339_argument(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. Z or +02:00")
    return moment


def _positive_seconds(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("--expires-in must be positive")
    return seconds


def _join_token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the name the MicroCloud will be enrolled under")
    parser.add_argument("--description", default="", help="shown with the cluster once enrolled")
    expiry = parser.add_mutually_exclusive_group()
    expiry.add_argument("--expiry", type=_rfc3339_argument, help="RFC 3339 expiry time")
    expiry.add_argument("--expires-in", type=_positive_seconds, help="lifetime in seconds")


@command("create-join-token", "mint a join token for a MicroCloud", _join_token_arguments)
def _create_join_token(args: argparse.Namespace, settings: Settings) -> None:
    expires_at = args.expiry
    if args.expires_in is not None:
        expires_at = datetime.now(UTC) + timedelta(seconds=args.expires_in)
    minted = _database_work(
        settings,
        lambda conn: service.create_join_token(
            conn, settings, args.name, args.description, expires_at
        ),
    )
    expires = rfc3339(utc(minted.expires_at))
    emit(
        args,
        {
            "cluster_name": minted.cluster_name,
            "token": minted.token,
            "expires_at": expires,
            "join_command": minted.join_command,
        },
        f"token: {minted.token}\nexpires at: {expires}\n{minted.join_command}",
    )


def _name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")


@command("list-tokens", "list pending join tokens (never their text)", _no_arguments)
def _list_tokens(args: argparse.Namespace, settings: Settings) -> None:
    rows = _database_work(settings, service.list_join_tokens)
    result = [
        {
            "cluster_name": row["cluster_name"],
            "description": row["description"],
            "expiry": rfc3339(utc(row["expires_at"])),
            "created_at": rfc3339(utc(row["created_at"])),
            "expired": bool(row["expired"]),
        }
        for row in rows
    ]
    table = _table(
        ("CLUSTER", "DESCRIPTION", "EXPIRES", "CREATED"),
        [
            (
                item["cluster_name"],
                item["description"],
                item["expiry"] + (" (expired)" if item["expired"] else ""),
                item["created_at"],
            )
            for item in result
        ],
    )
    emit(args, result, table if result else "no join tokens")


@command("revoke-token", "revoke the pending join token of a cluster", _name_argument)
def _revoke_token(args: argparse.Namespace, settings: Settings) -> None:
    _database_work(settings, lambda conn: service.revoke_join_token(conn, args.name))
    emit(
        args,
        {"cluster_name": args.name, "revoked": True},
        f"revoked join token for {args.name}",
    )


# -- clusters -----------------------------------------------------------------------------


@command("list-clusters", "list enrolled clusters and whether they report", _no_arguments)
def _list_clusters(args: argparse.Namespace, settings: Settings) -> None:
    rows = _database_work(settings, lambda conn: service.list_clusters(conn, settings))
    now = datetime.now(UTC)
    result = [
        {
            "name": row.name,
            "status": connection_status(row),
            "member_count": row.member_count,
            "instance_count": row.instance_count,
            "last_heartbeat_at": (
                rfc3339(utc(row.last_heartbeat_at)) if row.last_heartbeat_at else None
            ),
        }
        for row in rows
    ]
    table = _table(
        ("NAME", "STATUS", "MEMBERS", "INSTANCES", "LAST HEARTBEAT"),
        [
            (
                row.name,
                connection_status(row),
                str(row.member_count),
                str(row.instance_count),
                relative_age(row.last_heartbeat_at, now),
            )
            for row in rows
        ],
    )
    emit(args, result, table if result else "no clusters enrolled")


@command("remove-cluster", "forget an enrolled cluster", _name_argument)
def _remove_cluster(args: argparse.Namespace, settings: Settings) -> None:
    _database_work(settings, lambda conn: service.remove_cluster(conn, args.name))
    emit(args, {"name": args.name, "removed": True}, f"removed cluster {args.name}")


# -- API tokens and identity --------------------------------------------------------------


@command("create-api-token", "mint an admin token for the management API", _name_argument)
def _create_api_token(args: argparse.Namespace, settings: Settings) -> None:
    token = _database_work(settings, lambda conn: service.create_api_token(conn, args.name))
    emit(args, {"name": args.name, "token": token}, token)


@command(
    "show-connector-fingerprint",
    "print the SHA-256 fingerprint that join tokens carry",
    _no_arguments,
)
def _show_connector_fingerprint(args: argparse.Namespace, settings: Settings) -> None:
    try:
        fingerprint = connector_fingerprint(settings.connector_cert_file)
    except ConnectorCertificateError as error:
        raise CommandError(str(error)) from None
    emit(args, {"fingerprint": fingerprint}, fingerprint)
