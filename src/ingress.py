"""Traefik routes for both domains: TCP, routed by SNI, TLS passed through to every unit.

Traefik never terminates our TLS: HAProxy in each unit does, so the connector can see the
clusters' client certificates (design D1, D2). Traefik sends the PROXY protocol (v2) so that
the front and the workload see the real client address for logs and rate limits (D8).

traefik-k8s runs Traefik 2.11 and the e2e tests Traefik 3.x, so the route uses only keys both
read (docs/traefik.md; tests/unit/test_traefik_compat.py checks them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from constants import CONNECTOR_PORT, MANAGEMENT_PORT

ENTRYPOINT = "websecure"
PROXY_PROTOCOL_VERSION = 2

TRUSTED_PROXIES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
"""Sources whose PROXY protocol header the front believes.

Traefik connects from its pod address, which changes whenever its pod is recreated and is not
published in the traefik-route relation data, so we trust the private ranges Kubernetes pod
networks are allocated from (the defaults of every common CNI) instead of one address. The
TLS listeners accept only connections that start with a PROXY header once Traefik is related,
and only pods inside the cluster can reach a pod address, so this never lets an outside client
choose its own address.
"""


def unit_address(unit_name: str, app_name: str, model_name: str) -> str:
    """Return a unit's stable pod DNS name (Juju's headless `<app>-endpoints` service)."""
    pod = unit_name.replace("/", "-")
    return f"{pod}.{app_name}-endpoints.{model_name}.svc.cluster.local"


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
