"""Config validation: every option's invalid values block with a message naming the fix."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest
import yaml
from ops import testing

from charm_config import RANGES, CharmConfig
from tests.unit.builders import (
    APP,
    CONFIG,
    MODEL,
    ROOT,
    SigningCA,
    deploy,
    workload_container,
    workload_file,
)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"management-api-domain": ""}, "management-api-domain is not set"),
        ({"cluster-connector-domain": ""}, "cluster-connector-domain is not set"),
        (
            {"management-api-domain": "https://cm.example.com"},
            "management-api-domain 'https://cm.example.com' is not a valid DNS name",
        ),
        (
            {"cluster-connector-domain": "localhost"},
            "cluster-connector-domain 'localhost' is not a valid DNS name",
        ),
        (
            {"cluster-connector-domain": "cm.example.com"},
            "management-api-domain and cluster-connector-domain must differ",
        ),
        ({"heartbeat-interval": 5}, "heartbeat-interval must be between 10 and 3600, got 5"),
        ({"offline-after": 10}, "offline-after must be between 30 and 86400, got 10"),
        ({"offline-after": 100000}, "offline-after must be between 30 and 86400, got 100000"),
        (
            {"connector-max-body-size": 0},
            "connector-max-body-size must be between 1 and 1024, got 0",
        ),
        (
            {"connector-max-body-size": 2048},
            "connector-max-body-size must be between 1 and 1024, got 2048",
        ),
        (
            {"join-token-expiry": 10},
            "join-token-expiry must be between 60 and 2592000, got 10",
        ),
        (
            {"rate-limit-connector": "lots"},
            "rate-limit-connector 'lots' is not a rate limit like 60/minute or 10/second;600/hour",
        ),
        (
            {"rate-limit-management": "10/fortnight"},
            "rate-limit-management '10/fortnight' is not a rate limit like 60/minute or"
            " 10/second;600/hour",
        ),
        ({"log-level": "verbose"}, "log-level must be one of debug, info, warning, error"),
        (
            {"trusted-proxies": "10.1.0.1/16"},
            "trusted-proxies: '10.1.0.1/16' is not a CIDR (did you mean 10.1.0.0/16?)",
        ),
        ({"trusted-proxies": "pods"}, "trusted-proxies: 'pods' is not a CIDR"),
        ({"trusted-proxies": " , "}, "trusted-proxies must list at least one CIDR"),
    ],
)
def test_invalid_option_blocks_with_its_message_and_the_command_to_fix_it(ctx, changes, message):
    state = testing.State(
        leader=True,
        config={**CONFIG, **changes},
        model=testing.Model(name=MODEL),
        containers={workload_container()},
    )

    out = ctx.run(ctx.on.config_changed(), state)

    (option,) = changes
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(
        f"invalid config: {message} (juju config {APP} {option}="
    )
    assert out.unit_status.message.endswith(")")


@pytest.mark.parametrize("limit", ["60/minute", "10 per second", "10/second;600/hour", "5/2 days"])
def test_rate_limits_in_the_limits_syntax_are_accepted(limit):
    config = CharmConfig(
        management_api_domain="cm.example.com",
        cluster_connector_domain="cc.example.com",
        rate_limit_connector=limit,
    )

    assert config.rate_limit_connector == limit


def test_trusted_proxies_are_normalised_without_duplicates():
    config = CharmConfig(
        management_api_domain="cm.example.com",
        cluster_connector_domain="cc.example.com",
        trusted_proxies=" 10.1.0.0/16,2001:DB8::/32 ,10.1.0.0/16",
    )

    assert config.trusted_proxy_networks == ("10.1.0.0/16", "2001:db8::/32")


def test_default_trusted_proxies_cover_shared_and_ipv6_pod_networks():
    config = CharmConfig(
        management_api_domain="cm.example.com", cluster_connector_domain="cc.example.com"
    )
    networks = [ipaddress.ip_network(cidr) for cidr in config.trusted_proxy_networks]

    for pod in ("10.1.2.3", "172.20.0.9", "192.168.5.5", "100.64.12.1", "fd00:10:244::7"):
        assert any(ipaddress.ip_address(pod) in network for network in networks), pod
    assert not any(ipaddress.ip_address("8.8.8.8") in network for network in networks)


def test_defaults_match_config_yaml():
    options = yaml.safe_load((ROOT / "config.yaml").read_text())["options"]
    for field in dataclasses.fields(CharmConfig):
        # A `secret` option (oidc-client-secret) has no default: the table's is None.
        assert options[field.name.replace("_", "-")].get("default") == field.default


def test_every_range_is_stated_in_config_yaml():
    options = yaml.safe_load((ROOT / "config.yaml").read_text())["options"]
    for option, (low, high) in RANGES.items():
        assert options[option]["type"] == "int"
        assert f"Between {low} and {high}" in options[option]["description"], option


def test_invalid_config_leaves_the_running_workload_alone(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    env_before = workload_file(deployment.container, "cluster-manager.env").read_text()
    state = dataclasses.replace(deployment.state, config={**CONFIG, "log-level": "loud"})

    out = ctx.run(ctx.on.config_changed(), state)

    env_after = workload_file(out.get_container("cluster-manager"), "cluster-manager.env")
    assert env_after.read_text() == env_before
