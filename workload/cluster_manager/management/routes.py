"""Management API endpoints (reference §1.1, with upstream's bugs fixed as design D5 lists)."""

from __future__ import annotations

import logging
from importlib import resources
from urllib.parse import quote

from flask import Blueprint, Response, request

from .. import service
from ..auth.identity import current_identity, require_admin
from ..envelope import sync
from ..front.config import SECURITY_HEADERS
from ..plumbing import database, json_body, settings
from ..protocol.management import JoinTokenCreate, RemoteClusterPatch
from ..protocol.tunnel import METHODS
from . import serializers

logger = logging.getLogger(__name__)
bp = Blueprint("management", __name__)

# The document is public and `/1.0` checks authentication itself (any identity may ask who
# it is); every other endpoint of this blueprint needs an admin.
_NO_ADMIN_NEEDED = {"management.openapi_document", "management.whoami"}
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
"""What stays unescaped when the decoded LXD path is written back into a URL (RFC 3986)."""


@bp.before_request
def _authorize() -> None:
    if request.endpoint not in _NO_ADMIN_NEEDED:
        require_admin()


@bp.get("/1.0")
def whoami() -> Response:
    """The caller's identity; any authenticated caller, admin or not, may ask."""
    identity = current_identity()
    return sync(
        {
            "email": identity.email,
            "name": identity.name,
            "groups": list(identity.groups),
            "trusted": True,
            "auth_method": identity.method,
        }
    )


@bp.get("/1.0/openapi.yaml")
def openapi_document() -> Response:
    """Our own OpenAPI document for this API."""
    text = resources.files("cluster_manager.management").joinpath("openapi.yaml").read_text()
    return Response(text, mimetype="application/yaml")


@bp.get("/1.0/configuration")
def get_configuration() -> Response:
    """Settings an operator may see; secrets are never among them."""
    return sync(service.configuration(settings()))


@bp.get("/1.0/remote-cluster")
def list_remote_clusters() -> Response:
    """Every enrolled cluster sorted by name; `[]` when there are none."""
    config = settings()
    rows = database().run(lambda conn: service.list_clusters(conn, config), idempotent=True)
    return sync([serializers.remote_cluster(row) for row in rows])


@bp.get("/1.0/remote-cluster/<name>")
def get_remote_cluster(name: str) -> Response:
    """One enrolled cluster."""
    config = settings()
    row = database().run(lambda conn: service.get_cluster(conn, config, name), idempotent=True)
    return sync(serializers.remote_cluster(row))


@bp.patch("/1.0/remote-cluster/<name>")
def patch_remote_cluster(name: str) -> Response:
    """Change only the fields sent, all at once or not at all."""
    changes = json_body(RemoteClusterPatch).changes()
    database().run(lambda conn: service.update_cluster(conn, name, changes), idempotent=True)
    logger.info("cluster %s updated by %s: %s", name, current_identity().name, sorted(changes))
    return sync({})


@bp.delete("/1.0/remote-cluster/<name>")
def delete_remote_cluster(name: str) -> Response:
    """Forget a cluster; it is refused from its next heartbeat on."""
    database().run(lambda conn: service.remove_cluster(conn, name))
    logger.info("cluster %s removed by %s", name, current_identity().name)
    return sync({})


@bp.route("/1.0/remote-cluster/<name>/tunnel/<path:lxd_path>", methods=list(METHODS))
def tunnel(name: str, lxd_path: str) -> Response:
    """Send the request on to the cluster's LXD through its reverse tunnel; LXD's answer.

    The caller's OIDC session (if any) goes with it: its access token as LXD's bearer token,
    and the cookies LXD gave it before.
    """
    caller = current_identity()
    path = "/" + quote(lxd_path, safe=_PATH_SAFE)
    if request.query_string:
        path += "?" + request.query_string.decode("latin-1")
    reply = service.send_through_tunnel(
        database(),
        settings(),
        name,
        request.method,
        path,
        request.get_data() or None,
        access_token=caller.access_token,
        session=caller.session_id,
    )
    logger.info(
        "%s %s sent to %s by %s: %d",
        request.method,
        path.split("?")[0],
        name,
        caller.name,
        reply.status,
    )
    return Response(reply.body, status=reply.status, headers=[*reply.headers, *SECURITY_HEADERS])


@bp.get("/1.0/remote-cluster-join-token")
def list_join_tokens() -> Response:
    """Pending join tokens, oldest first, without their text; `[]` when there are none."""
    rows = database().run(service.list_join_tokens, idempotent=True)
    return sync([serializers.join_token(row) for row in rows])


@bp.post("/1.0/remote-cluster-join-token")
def create_join_token() -> Response:
    """Mint a join token; its text is in this response and nowhere else."""
    body = json_body(JoinTokenCreate)
    config = settings()
    minted = database().run(
        lambda conn: service.create_join_token(
            conn, config, body.cluster_name, body.description, body.expiry
        )
    )
    logger.info("join token for %s created by %s", minted.cluster_name, current_identity().name)
    return sync({"token": minted.token})


@bp.delete("/1.0/remote-cluster-join-token/<name>")
def revoke_join_token(name: str) -> Response:
    """Revoke a pending join token."""
    database().run(lambda conn: service.revoke_join_token(conn, name))
    logger.info("join token for %s revoked by %s", name, current_identity().name)
    return sync({})
