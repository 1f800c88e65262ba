"""The route the leader publishes is read the same way by Traefik 2.11 and Traefik 3.x.

traefik-k8s runs Traefik 2.11; the e2e tests run our route through a Traefik 3.7 binary. Both
decode the file provider's YAML strictly: a key the version does not know fails the whole file
(and in traefik-k8s's directory provider, every route with it), so the route may only use keys
that exist in both. The key lists are in tests/unit/traefik_reference.py; docs/traefik.md
explains the differences between the two versions that matter for this route.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from ingress import PROXY_PROTOCOL_VERSION
from tests.unit.builders import SigningCA, deploy, make_context
from tests.unit.traefik_reference import DEPRECATED_IN_3, TRAEFIK_2_11_TCP, TRAEFIK_3_7_TCP

# Where the keys are names of our choosing rather than Traefik's field names.
NAMED = {
    ("tcp", section) for section in ("routers", "services", "middlewares", "serversTransports")
}

# A HostSNI matcher with one domain: the form both rule syntaxes read alike. Traefik 2.11 takes
# a list of domains (docs/content/routing/routers/index.md at v2.11.53); the v3 syntax, the
# default in 3.x, takes exactly one (docs/content/migrate/v2-to-v3-details.md).
ONE_HOST_SNI = re.compile(r"HostSNI\(`[a-z0-9.-]+`\)")


@pytest.fixture(scope="module")
def route(ca: SigningCA) -> dict[str, Any]:
    """The dynamic configuration in the leader's traefik-route databag (build_route_config)."""
    deployment = deploy(make_context(), ca)
    databag = deployment.state.get_relation(deployment.traefik.id).local_app_data
    return yaml.safe_load(databag["config"])


def key_paths(node: Any, path: tuple[str, ...] = ()) -> set[str]:
    """Return the dotted key path of every leaf, names as `<name>` and list items as `[]`."""
    if isinstance(node, dict):
        found: set[str] = set()
        for key, value in node.items():
            found |= key_paths(value, (*path, "<name>" if path in NAMED else key))
        return found or {".".join(path)}
    if isinstance(node, list):
        found = set()
        for item in node:
            found |= key_paths(item, (*path[:-1], f"{path[-1]}[]"))
        return found or {".".join(path)}
    return {".".join(path)}


def test_key_paths_read_names_and_lists():
    config = {"tcp": {"services": {"a": {"loadBalancer": {"servers": [{"address": "x:1"}]}}}}}

    assert key_paths(config) == {"tcp.services.<name>.loadBalancer.servers[].address"}


def test_every_key_the_route_uses_exists_in_traefik_2_11(route):
    assert key_paths(route) - TRAEFIK_2_11_TCP == set()


def test_every_key_the_route_uses_is_still_read_by_traefik_3_7(route):
    assert key_paths(route) - TRAEFIK_3_7_TCP == set()


def test_route_uses_no_key_that_only_traefik_3_knows(route):
    only_in_3 = TRAEFIK_3_7_TCP - TRAEFIK_2_11_TCP

    assert key_paths(route) & only_in_3 == set()
    assert set(route) == {"tcp"}
    assert set(route["tcp"]) == {"routers", "services"}


def test_the_one_deprecated_key_is_proxy_protocol_on_the_load_balancer(route):
    # Traefik 2.11 has no TCP serversTransports, so the PROXY protocol stays on the load
    # balancer; 3.x (from v3.5.2) logs a deprecation warning for it and still honours it.
    used = key_paths(route) & set(DEPRECATED_IN_3)

    assert used == {"tcp.services.<name>.loadBalancer.proxyProtocol.version"}


def test_traefik_2_11_keys_are_all_still_read_by_traefik_3_7():
    assert TRAEFIK_2_11_TCP <= TRAEFIK_3_7_TCP


def test_routers_match_one_domain_by_sni_with_tls_passed_through(route):
    for name, router in route["tcp"]["routers"].items():
        assert ONE_HOST_SNI.fullmatch(router["rule"]), name
        assert "ruleSyntax" not in router
        # Traefik does not terminate passed-through TLS, so TLS options would not apply.
        assert router["tls"] == {"passthrough": True}, name
        assert router["entryPoints"] == ["websecure"], name


def test_proxy_protocol_version_is_one_both_versions_send(route):
    # 2.11: version 1 or 2 (docs/content/routing/services/index.md at v2.11.53); 3.x refuses
    # any other (pkg/tcp/dialer.go at v3.7.9).
    assert PROXY_PROTOCOL_VERSION in (1, 2)
    for name, service in route["tcp"]["services"].items():
        assert service["loadBalancer"]["proxyProtocol"] == {"version": PROXY_PROTOCOL_VERSION}
        assert "serversTransport" not in service["loadBalancer"], name
