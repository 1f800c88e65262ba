"""Connector endpoints, exactly as MicroCloud calls them (reference §1.2, design D3/D4)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, current_app

from ..client_certificate import fingerprint_of_der
from ..db.enrollment import EnrollmentRefusal, NewCluster, enroll
from ..db.heartbeats import remove_caller, store_heartbeat
from ..envelope import APIError, BadRequest, Forbidden, sync
from ..forwarding import client as forwarding
from ..join_token import token_hash
from ..plumbing import database, json_body, settings
from ..protocol.connector import Heartbeat, JoinRequest
from ..protocol.rules import NAME_RULE, valid_name
from .identity import (
    CertificateError,
    mark_caller_enrolled,
    normalized_pem,
    presented_certificate_problem,
    request_fingerprint,
    single_certificate,
)

logger = logging.getLogger(__name__)
bp = Blueprint("connector", __name__)

_JOIN_REFUSALS = {
    EnrollmentRefusal.NO_TOKEN: (
        404,
        "no join token for cluster {name!r} (used, revoked or never created)",
    ),
    EnrollmentRefusal.WRONG_TOKEN: (403, "Forbidden"),
    EnrollmentRefusal.TOKEN_EXPIRED: (403, "join token has expired"),
    EnrollmentRefusal.CERTIFICATE_ENROLLED: (
        409,
        "this certificate is already enrolled for another cluster",
    ),
    EnrollmentRefusal.CLUSTER_ENROLLED: (409, "cluster {name!r} is already enrolled"),
}
"""The answer to each refused join: status and message (`{name}` is the cluster's name)."""


@bp.get("/")
def root():
    """MicroCloud probes this without a client certificate to read ours."""
    return sync(["/1.0"])


@bp.post("/1.0/remote-cluster")
def join():
    """Enroll a cluster with its one-time join token.

    The caller must present `cluster_certificate` as its TLS client certificate, proving it
    holds the key (design D3). microcloudd always does: microcloud
    client/cluster_manager_client.go sends `clusterCert.PublicKey()` as the certificate and
    presents `clusterCert.KeyPair()` on every call. Every refusal leaves the token unused.
    """
    body = json_body(JoinRequest)
    problem = presented_certificate_problem()
    if problem is not None:
        raise Forbidden(problem)
    cluster = _validated_cluster(body)
    presented = request_fingerprint()
    if presented is None:
        raise Forbidden("a TLS client certificate is required to join")
    if presented != cluster.fingerprint:
        raise Forbidden("TLS client certificate does not match cluster_certificate")
    refusal = database().run(lambda conn: enroll(conn, cluster, token_hash(body.token)))
    if refusal is not None:
        status, message = _JOIN_REFUSALS[refusal]
        message = message.format(name=cluster.name)
        logger.info("join refused for %s: %s", cluster.name, message)
        raise APIError(status, message)
    logger.info("cluster %s enrolled (fingerprint %s)", cluster.name, cluster.fingerprint)
    mark_caller_enrolled()
    return sync({})


@bp.post("/1.0/remote-cluster/status")
def heartbeat():
    """Store a heartbeat from an enrolled cluster, authenticated by its certificate."""
    fingerprint = _caller_fingerprint()
    beat = json_body(Heartbeat)
    name = database().run(lambda conn: store_heartbeat(conn, fingerprint, beat), idempotent=True)
    if name is None:
        raise _refusal()
    mark_caller_enrolled()
    forwarding.forward(current_app, name, beat.server_metrics)
    config = settings()
    return sync(
        {
            "next_update_in_seconds": str(config.heartbeat_interval),
            "cluster_manager_address": config.connector_address,
        }
    )


@bp.delete("/1.0/remote-cluster")
def leave():
    """The calling cluster leaves: forget it and everything it reported."""
    fingerprint = _caller_fingerprint()
    name = database().run(lambda conn: remove_caller(conn, fingerprint))
    if name is None:
        raise _refusal()
    mark_caller_enrolled(False)
    logger.info("cluster %s left", name)
    return sync({})


def _caller_fingerprint() -> str:
    fingerprint = request_fingerprint()
    if fingerprint is None:
        raise Forbidden()
    return fingerprint


def _refusal() -> Forbidden:
    # Upstream answers a bare 403; say why when it is the certificate's dates.
    return Forbidden(presented_certificate_problem() or "")


def _validated_cluster(body: JoinRequest) -> NewCluster:
    if not body.cluster_name:
        raise BadRequest("remote cluster name is required")
    if not valid_name(body.cluster_name):
        raise BadRequest(f"cluster_name must be {NAME_RULE}")
    if not body.cluster_certificate:
        raise BadRequest("remote cluster certificate is required")
    try:
        cert = single_certificate(body.cluster_certificate)
    except CertificateError as error:
        raise BadRequest(f"invalid certificate: {error}") from None
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    now = datetime.now(UTC)
    if not_after <= now:
        raise BadRequest("invalid certificate: it expired at " + not_after.isoformat())
    if not_before > now:
        raise BadRequest("invalid certificate: not valid before " + not_before.isoformat())
    return NewCluster(
        name=body.cluster_name,
        certificate_pem=normalized_pem(cert),
        fingerprint=fingerprint_of_der(cert.public_bytes(Encoding.DER)),
        not_before=not_before,
        not_after=not_after,
    )
