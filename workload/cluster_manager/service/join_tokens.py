"""Join tokens: minted for a cluster that is neither enrolled nor invited, listed, revoked."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from ..connector_certificate import ConnectorCertificateError, connector_fingerprint
from ..db import join_tokens
from ..db.pool import DbConnection
from ..envelope import APIError, BadRequest, Conflict, NotFound
from ..join_token import join_command, new_join_token, token_hash
from ..settings import Settings
from .names import require_valid_name


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
