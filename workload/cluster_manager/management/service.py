"""What the management API and the operator CLI both do, written once.

Each function takes an open connection and raises the envelope's `APIError` subclasses on
refusal: the API answers them as they are, the CLI turns them into exit code 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from ..db import api_tokens, clusters, join_tokens
from ..db.pool import DbConnection
from ..envelope import APIError, BadRequest, Conflict, NotFound
from ..join_token import join_command, new_join_token, token_hash
from ..protocol.rules import NAME_RULE, valid_name
from ..settings import Settings
from .connector_identity import ConnectorCertificateError, connector_fingerprint

API_TOKEN_PREFIX = "mcm_"  # noqa: S105 - marks our tokens, not a secret


@dataclasses.dataclass(frozen=True)
class MintedJoinToken:
    """A join token as handed to the operator, once."""

    cluster_name: str
    token: str
    expires_at: datetime

    @property
    def join_command(self) -> str:
        """The command to run on one member of the MicroCloud."""
        return join_command(self.token)


def require_valid_name(name: str, what: str) -> None:
    """Refuse names the connector would refuse at join time (or that are empty)."""
    if not name:
        raise BadRequest(f"{what} is required")
    if not valid_name(name):
        raise BadRequest(f"{what} must be {NAME_RULE}")


def fingerprint_of_connector(settings: Settings) -> str:
    """The connector fingerprint, or a 500 naming the file when it cannot be read."""
    try:
        return connector_fingerprint(settings.connector_cert_file)
    except ConnectorCertificateError as error:
        raise APIError(500, str(error)) from None


def create_join_token(
    conn: DbConnection,
    settings: Settings,
    cluster_name: str,
    description: str = "",
    expires_at: datetime | None = None,
) -> MintedJoinToken:
    """Mint and store a join token for a cluster that is neither enrolled nor invited.

    Args:
        conn: an open connection.
        settings: the deployment's settings (connector address, default lifetime).
        cluster_name: the name the cluster will join under.
        description: copied onto the cluster when it joins.
        expires_at: when the token stops working; now + MCM_JOIN_TOKEN_EXPIRY if None.

    Returns:
        The token; only its hash is stored.
    """
    now = datetime.now(UTC)
    if expires_at is not None and expires_at <= now:
        raise BadRequest("expiry date must be in the future")
    require_valid_name(cluster_name, "cluster name")
    expires_at = expires_at or now + timedelta(seconds=settings.join_token_expiry)
    token = new_join_token(
        cluster_name, expires_at, settings.connector_address, fingerprint_of_connector(settings)
    ).encode()
    refusal = join_tokens.create_join_token(
        conn, cluster_name, token_hash(token), description, expires_at
    )
    if refusal is join_tokens.TokenRefusal.CLUSTER_ENROLLED:
        raise Conflict(f"cluster {cluster_name} is already enrolled")
    if refusal is join_tokens.TokenRefusal.TOKEN_EXISTS:
        raise Conflict(f"a join token for cluster {cluster_name} already exists")
    return MintedJoinToken(cluster_name, token, expires_at)


def revoke_join_token(conn: DbConnection, cluster_name: str) -> None:
    """Delete the pending token of `cluster_name`, or raise NotFound."""
    if not join_tokens.delete_join_token(conn, cluster_name):
        raise NotFound(f"no join token for cluster {cluster_name}")


def list_join_tokens(conn: DbConnection) -> list[dict[str, Any]]:
    """Pending join tokens, oldest first, without the token text."""
    return join_tokens.list_join_tokens(conn)


def list_clusters(conn: DbConnection, settings: Settings) -> list[clusters.ClusterRow]:
    """Every enrolled cluster, sorted by name."""
    return clusters.list_clusters(conn, settings.offline_after)


def get_cluster(conn: DbConnection, settings: Settings, name: str) -> clusters.ClusterRow:
    """One enrolled cluster, or raise NotFound."""
    row = clusters.get_cluster(conn, name, settings.offline_after)
    if row is None:
        raise NotFound(f"remote cluster {name} not found")
    return row


def update_cluster(conn: DbConnection, name: str, changes: dict[str, object]) -> None:
    """Apply a validated PATCH in one statement, or raise NotFound."""
    if not clusters.update_cluster(conn, name, changes):
        raise NotFound(f"remote cluster {name} not found")


def remove_cluster(conn: DbConnection, name: str) -> None:
    """Forget an enrolled cluster, or raise NotFound.

    The cluster is not told; its next heartbeat is refused (design D4).
    """
    if not clusters.delete_cluster(conn, name):
        raise NotFound(f"remote cluster {name} not found")


def create_api_token(conn: DbConnection, name: str) -> str:
    """Mint an admin API token called `name`; the token is returned once, stored hashed."""
    require_valid_name(name, "API token name")
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    if not api_tokens.create_api_token(conn, name, api_token_hash(token)):
        raise Conflict(f"an API token named {name} already exists")
    return token


def api_token_hash(token: str) -> bytes:
    """What the database stores for an API token."""
    return hashlib.sha256(token.encode()).digest()


def utc(moment: datetime) -> datetime:
    """The same instant in UTC, so every timestamp we print ends in `Z`."""
    return moment.astimezone(UTC)
