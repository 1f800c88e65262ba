"""The Pebble layer of the cluster-manager container, as a pure function.

Three services (docs/workload-contract.md): nginx terminates TLS and serves the plain-HTTP
health listener on 127.0.0.1:8081; the management and connector gunicorn apps listen on unix
sockets. Every setting reaches the apps through the env file named by MCM_ENV_FILE, so a
change of settings changes that file, not this layer.
"""

from __future__ import annotations

import ops

from constants import (
    CONNECTOR_SERVICE,
    ENV_FILE,
    HEALTH_PORT,
    MANAGEMENT_SERVICE,
    NGINX_CONFIG,
    NGINX_PREFIX,
    NGINX_SERVICE,
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
        "after": [NGINX_SERVICE],
        "environment": {"MCM_ENV_FILE": ENV_FILE},
        "on-check-failure": {f"{name}-alive": "restart"},
    }


def build_layer() -> ops.pebble.Layer:
    """Return the layer with the three services and their alive and ready checks."""
    nginx: ops.pebble.ServiceDict = {
        "override": "replace",
        "summary": "nginx: TLS for the management API and the cluster connector",
        "command": (f'nginx -e stderr -p {NGINX_PREFIX} -c {NGINX_CONFIG} -g "daemon off;"'),
        "startup": "enabled",
        "on-check-failure": {"nginx-alive": "restart"},
    }
    layer: ops.pebble.LayerDict = {
        "summary": "MicroCloud Cluster Manager",
        "description": "nginx in front of the management and connector applications",
        "services": {
            NGINX_SERVICE: nginx,
            MANAGEMENT_SERVICE: _app_service(MANAGEMENT_SERVICE),
            CONNECTOR_SERVICE: _app_service(CONNECTOR_SERVICE),
        },
        "checks": {
            "nginx-alive": _http_check("alive", "/health/nginx"),
            "management-alive": _http_check("alive", "/health/management"),
            "management-ready": _http_check("ready", "/ready/management"),
            "connector-alive": _http_check("alive", "/health/connector"),
            "connector-ready": _http_check("ready", "/ready/connector"),
        },
    }
    return ops.pebble.Layer(layer)
