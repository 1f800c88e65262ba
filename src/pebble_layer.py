"""The Pebble layer of the cluster-manager container, as a pure function.

Three services (docs/workload-contract.md): HAProxy terminates TLS and serves the plain-HTTP
health listener on 127.0.0.1:8081; the management and connector gunicorn apps listen on unix
sockets. Every setting reaches the apps through the env file named by MCM_ENV_FILE, so a
change of settings changes that file, not this layer.
"""

from __future__ import annotations

import ops

from constants import (
    CONNECTOR_SERVICE,
    ENV_FILE,
    FRONT_CONFIG,
    FRONT_SERVICE,
    HEALTH_PORT,
    MANAGEMENT_SERVICE,
)

LAYER_NAME = "cluster-manager"


def _http_check(level: str, path: str) -> ops.pebble.CheckDict:
    return {
        "override": "replace",
        "level": level,
        "period": "10s",
        "timeout": "3s",
        "threshold": 3,
        "http": {"url": f"http://127.0.0.1:{HEALTH_PORT}{path}"},
    }


def _app_service(name: str) -> ops.pebble.ServiceDict:
    return {
        "override": "replace",
        "summary": f"cluster manager {name} (gunicorn on a unix socket)",
        "command": f"python3 -m cluster_manager serve {name}",
        "startup": "enabled",
        "after": [FRONT_SERVICE],
        "environment": {"MCM_ENV_FILE": ENV_FILE},
        "on-check-failure": {f"{name}-alive": "restart"},
    }


def build_layer() -> ops.pebble.Layer:
    """Return the layer with the three services and their alive and ready checks."""
    front: ops.pebble.ServiceDict = {
        "override": "replace",
        "summary": "HAProxy: TLS for the management API and the cluster connector",
        # Master-worker in the foreground: SIGUSR2 reloads without dropping connections.
        "command": f"haproxy -W -db -f {FRONT_CONFIG}",
        "startup": "enabled",
        "on-check-failure": {"haproxy-alive": "restart"},
    }
    layer: ops.pebble.LayerDict = {
        "summary": "MicroCloud Cluster Manager",
        "description": "HAProxy in front of the management and connector applications",
        "services": {
            FRONT_SERVICE: front,
            MANAGEMENT_SERVICE: _app_service(MANAGEMENT_SERVICE),
            CONNECTOR_SERVICE: _app_service(CONNECTOR_SERVICE),
        },
        "checks": {
            "haproxy-alive": _http_check("alive", "/health/haproxy"),
            "management-alive": _http_check("alive", "/health/management"),
            "management-ready": _http_check("ready", "/ready/management"),
            "connector-alive": _http_check("alive", "/health/connector"),
            "connector-ready": _http_check("ready", "/ready/connector"),
        },
    }
    return ops.pebble.Layer(layer)
