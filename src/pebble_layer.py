"""The Pebble layer of the cluster-manager container, as a pure function.

Five services (docs/workload-contract.md): HAProxy terminates TLS and serves the plain-HTTP
health listener on 127.0.0.1:8081; the management and connector gunicorn apps listen on unix
sockets; the forwarder takes the clusters' LXD metrics from the connector (a unix socket) to
remote write; the tunnel process holds the clusters' websockets behind the front and listens for
the other units' forwarded requests on its own TLS port (9445). Every setting reaches them
through the env file named by MCM_ENV_FILE, so a change of settings changes that file, not this
layer. The tunnel service and its checks are left out until the unit has the units' shared
secret (a unit refreshed before the leader created it serves everything else meanwhile).

Pebble cannot remove a service or a check from its plan: it forgets them only when the
container restarts, as it does on `juju refresh` (the pod is re-created). Should a plan still
hold what an older revision planned and this one does not (nginx, the front before HAProxy,
and its check), `retirement` overrides them so that they neither run nor fail.
"""

from __future__ import annotations

import ops

from constants import (
    CONNECTOR_SERVICE,
    ENV_FILE,
    FORWARDER_SERVICE,
    FRONT_CONFIG,
    FRONT_SERVICE,
    HEALTH_PORT,
    MANAGEMENT_SERVICE,
    TUNNEL_PORT,
    TUNNEL_SERVICE,
)

LAYER_NAME = "cluster-manager"

RETIRED_CHECK: ops.pebble.CheckDict = {
    "override": "replace",
    "period": "10s",
    "timeout": "3s",
    "threshold": 3,
    "exec": {"command": "true"},
}
"""What a check of an older revision becomes: no level, so the Kubernetes probes ignore it, and
nothing that can fail (its HTTP path may be gone, and a failing alive check fails the probe)."""


def _http_check(level: str, path: str) -> ops.pebble.CheckDict:
    return {
        "override": "replace",
        "level": level,
        "period": "10s",
        "timeout": "3s",
        "threshold": 3,
        "http": {"url": f"http://127.0.0.1:{HEALTH_PORT}{path}"},
    }


def _app_service(
    name: str,
    summary: str = "gunicorn on a unix socket",
    command: str | None = None,
) -> ops.pebble.ServiceDict:
    return {
        "override": "replace",
        "summary": f"cluster manager {name} ({summary})",
        "command": command or f"python3 -m cluster_manager serve {name}",
        "startup": "enabled",
        "after": [FRONT_SERVICE],
        "environment": {"MCM_ENV_FILE": ENV_FILE},
        "on-check-failure": {f"{name}-alive": "restart"},
    }


def _forwarder_service() -> ops.pebble.ServiceDict:
    return {
        "override": "replace",
        "summary": "cluster manager forwarder (LXD metrics to remote write)",
        "command": "python3 -m cluster_manager.forwarding",
        "startup": "enabled",
        "environment": {"MCM_ENV_FILE": ENV_FILE},
        "on-check-failure": {f"{FORWARDER_SERVICE}-alive": "restart"},
    }


def build_layer(tunnel: bool) -> ops.pebble.Layer:
    """Return the layer with the services and their alive and ready checks.

    Args:
        tunnel: whether the unit has the tunnel secret, without which the tunnel process refuses
            to start: the tunnel service and its checks are planned only then.
    """
    front: ops.pebble.ServiceDict = {
        "override": "replace",
        "summary": "HAProxy: TLS for the management API and the cluster connector",
        # Master-worker in the foreground: SIGUSR2 reloads without dropping connections.
        "command": f"haproxy -W -db -f {FRONT_CONFIG}",
        "startup": "enabled",
        "on-check-failure": {"haproxy-alive": "restart"},
    }
    services: dict[str, ops.pebble.ServiceDict] = {
        FRONT_SERVICE: front,
        MANAGEMENT_SERVICE: _app_service(MANAGEMENT_SERVICE),
        CONNECTOR_SERVICE: _app_service(CONNECTOR_SERVICE),
        FORWARDER_SERVICE: _forwarder_service(),
    }
    checks: dict[str, ops.pebble.CheckDict] = {
        "haproxy-alive": _http_check("alive", "/health/haproxy"),
        "management-alive": _http_check("alive", "/health/management"),
        "management-ready": _http_check("ready", "/ready/management"),
        "connector-alive": _http_check("alive", "/health/connector"),
        "connector-ready": _http_check("ready", "/ready/connector"),
        "forwarder-alive": _http_check("alive", "/health/forwarder"),
    }
    if tunnel:
        services[TUNNEL_SERVICE] = _app_service(
            TUNNEL_SERVICE,
            f"asyncio: the clusters' websockets, TLS on {TUNNEL_PORT}",
            "python3 -m cluster_manager.tunnel",
        )
        checks["tunnel-alive"] = _http_check("alive", "/health/tunnel")
        checks["tunnel-ready"] = _http_check("ready", "/ready/tunnel")
    layer: ops.pebble.LayerDict = {
        "summary": "MicroCloud Cluster Manager",
        "description": "HAProxy in front of the management, connector, forwarder and tunnel"
        " processes",
        "services": services,
        "checks": checks,
    }
    return ops.pebble.Layer(layer)


def layer_services(tunnel: bool) -> tuple[str, ...]:
    """Return the names of the layer's services, the front first (the order they start in)."""
    return tuple(build_layer(tunnel).services)


def retirement(plan: ops.pebble.Plan) -> ops.pebble.Layer:
    """Return the overrides that retire what `plan` holds from an older revision; empty once done.

    A service this revision does not define is disabled (merged: it keeps the command Pebble
    requires of every service) and a check becomes `RETIRED_CHECK`. The image defines no
    services and the logging layer only log targets, so everything else is an older revision's.
    The tunnel is this revision's even while a unit without its secret leaves it out.
    """
    layer = build_layer(tunnel=True)
    services: dict[str, ops.pebble.ServiceDict] = {
        name: {"override": "merge", "startup": "disabled"}
        for name, service in plan.services.items()
        if name not in layer.services and service.startup != "disabled"
    }
    checks: dict[str, ops.pebble.CheckDict] = {
        name: RETIRED_CHECK
        for name, check in plan.checks.items()
        if name not in layer.checks and not _retired(check)
    }
    return ops.pebble.Layer({"services": services, "checks": checks})


def is_planned(plan: ops.pebble.Plan, tunnel: bool) -> bool:
    """Return whether `plan` holds `build_layer(tunnel)` and nothing an older revision left acting.

    A tunnel planned while its secret was there may stay: Pebble cannot remove it.
    """
    layer = build_layer(tunnel)
    retired = retirement(plan)
    return (
        all(plan.services.get(name) == service for name, service in layer.services.items())
        and all(plan.checks.get(name) == check for name, check in layer.checks.items())
        and not retired.services
        and not retired.checks
    )


def _retired(check: ops.pebble.Check) -> bool:
    """Return whether `check` is `RETIRED_CHECK` (Pebble may reword its durations)."""
    return (
        check.level in (ops.pebble.CheckLevel.UNSET, "")
        and check.http is None
        and check.tcp is None
        and check.exec == RETIRED_CHECK.get("exec")
    )
