"""Enrolling a cluster with a join token: one transaction, all or nothing (design D3)."""

from __future__ import annotations

import dataclasses
import enum
import hmac
from datetime import datetime

from psycopg import errors

from .pool import DbConnection


class EnrollmentRefusal(enum.Enum):
    """Why a join was refused; a refused join writes nothing and leaves the token usable."""

    NO_TOKEN = "no_token"  # noqa: S105 - a reason, not a password
    WRONG_TOKEN = "wrong_token"  # noqa: S105
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    CERTIFICATE_ENROLLED = "certificate_enrolled"
    CLUSTER_ENROLLED = "cluster_enrolled"


@dataclasses.dataclass(frozen=True)
class NewCluster:
    """A validated join request."""

    name: str
    certificate_pem: str
    fingerprint: str
    not_before: datetime
    not_after: datetime


def enroll(
    conn: DbConnection, cluster: NewCluster, presented_token_hash: bytes
) -> EnrollmentRefusal | None:
    """Consume the cluster's join token and create the cluster; the refusal, or None.

    The token row is locked, so of two joins racing with one token exactly one commits;
    the other then finds no token.
    """
    with conn.transaction():
        token = conn.execute(
            "SELECT id, token_hash, description, expires_at <= now() AS expired"
            " FROM join_tokens WHERE cluster_name = %s FOR UPDATE",
            (cluster.name,),
        ).fetchone()
        if token is None:
            return EnrollmentRefusal.NO_TOKEN
        if not hmac.compare_digest(bytes(token["token_hash"]), presented_token_hash):
            return EnrollmentRefusal.WRONG_TOKEN
        if token["expired"]:
            return EnrollmentRefusal.TOKEN_EXPIRED
        try:
            with conn.transaction():
                row = conn.execute(
                    "INSERT INTO clusters (name, description, certificate, fingerprint,"
                    " certificate_not_before, certificate_not_after)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (
                        cluster.name,
                        token["description"],
                        cluster.certificate_pem,
                        cluster.fingerprint,
                        cluster.not_before,
                        cluster.not_after,
                    ),
                ).fetchone()
        except errors.UniqueViolation as error:
            constraint = error.diag.constraint_name or ""
            if "fingerprint" in constraint:
                return EnrollmentRefusal.CERTIFICATE_ENROLLED
            return EnrollmentRefusal.CLUSTER_ENROLLED
        if row is None:
            raise RuntimeError("INSERT … RETURNING returned no row")
        conn.execute("INSERT INTO cluster_details (cluster_id) VALUES (%s)", (row["id"],))
        conn.execute("DELETE FROM join_tokens WHERE id = %s", (token["id"],))
    return None
