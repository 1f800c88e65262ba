"""Enrolling a cluster with a join token: one transaction, all or nothing (design D3)."""

from __future__ import annotations

import dataclasses
import hmac
from datetime import datetime

from psycopg import errors

from .pool import DbConnection


class EnrollmentError(Exception):
    """The join was refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class NewCluster:
    """A validated join request."""

    name: str
    certificate_pem: str
    fingerprint: str
    not_before: datetime
    not_after: datetime


def enroll(conn: DbConnection, cluster: NewCluster, presented_token_hash: bytes) -> int:
    """Consume the cluster's join token and create the cluster; return its id.

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
            raise EnrollmentError(
                404, f"no join token for cluster {cluster.name!r} (used, revoked or never created)"
            )
        if not hmac.compare_digest(bytes(token["token_hash"]), presented_token_hash):
            raise EnrollmentError(403, "Forbidden")
        if token["expired"]:
            raise EnrollmentError(403, "join token has expired")
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
                raise EnrollmentError(
                    409, "this certificate is already enrolled for another cluster"
                ) from None
            raise EnrollmentError(409, f"cluster {cluster.name!r} is already enrolled") from None
        if row is None:
            raise RuntimeError("INSERT … RETURNING returned no row")
        conn.execute("INSERT INTO cluster_details (cluster_id) VALUES (%s)", (row["id"],))
        conn.execute("DELETE FROM join_tokens WHERE id = %s", (token["id"],))
        return int(row["id"])
