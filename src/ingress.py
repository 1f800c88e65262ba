"""Traefik routes for both domains: TCP, routed by SNI, TLS passed through to every unit.

Traefik never terminates our TLS: HAProxy in each unit does, so the connector can see the
clusters' client certificates (design D1, D2). Traefik sends the PROXY protocol (v2) so that
the front and the workload see the real client address for logs and rate limits (D8).

traefik-k8s runs Traefik 2.11 and the e2e tests Traefik 3.x, so the route uses only keys both
read (docs/traefik.md; tests/unit/test_traefik_compat.py checks them).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from constants import CONNECTOR_PORT, MANAGEMENT_PORT

ENTRYPOINT = "websecure"
PROXY_PROTOCOL_VERSION = 2


def unit_address() -> str:
    """Return this unit's host name as its pod resolves it, for Traefik and Prometheus.

    In a pod that is Juju's headless service name `<pod>.<app>-endpoints.<model>.svc.<cluster
    domain>`, whatever the cluster's domain; the COS and Traefik libraries make the same call.
    """
    return socket.getfqdn()


def build_route_config(
    model_name: str,
    app_name: str,
    management_domain: str,
    connector_domain: str,
    addresses: Iterable[str],
) -> dict[str, Any]:
    """Return Traefik dynamic configuration routing both domains to every address.

    Args:
        model_name: the Juju model, to keep our names unique in Traefik.
        app_name: our application name, likewise.
        management_domain: SNI of the management API, sent to port 8443.
        connector_domain: SNI of the cluster connector, sent to port 9443.
        addresses: host names (or IPs) of the units that serve.
    """
    prefix = f"juju-{model_name}-{app_name}"
    hosts = sorted(set(addresses))
    routers: dict[str, Any] = {}
    services: dict[str, Any] = {}
    for role, domain, port in (
        ("management", management_domain, MANAGEMENT_PORT),
        ("connector", connector_domain, CONNECTOR_PORT),
    ):
        service = f"{prefix}-{role}"
        routers[service] = {
            "entryPoints": [ENTRYPOINT],
            "rule": f"HostSNI(`{domain}`)",
            "service": service,
            "tls": {"passthrough": True},
        }
        services[service] = {
            "loadBalancer": {
                "servers": [{"address": f"{host}:{port}"} for host in hosts],
                "proxyProtocol": {"version": PROXY_PROTOCOL_VERSION},
            }
        }
    return {"tcp": {"routers": routers, "services": services}}
