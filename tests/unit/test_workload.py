"""The Pebble layer, the files pushed into the container, and what is restarted when."""

from __future__ import annotations

import dataclasses

from cluster_manager.front import FrontSettings, render_front_config

from pebble_layer import build_layer
from tests.unit.builders import (
    CONFIG,
    CONTAINER,
    DB_ENDPOINT,
    SERVICES,
    SigningCA,
    cli,
    deploy,
    migrate_exec,
    peer_address,
    replace_container,
    replace_relation,
    running,
    workload_file,
)
from tests.unit.conftest import PebbleCalls
from tools.stack import MODULES
from workload import parse_env_file

ENV_FILE = "/etc/cluster-manager/cluster-manager.env"
FRONT_CONFIG = "/etc/cluster-manager/haproxy.cfg"


def http_check(level: str, path: str) -> dict:
    return {
        "override": "replace",
        "level": level,
        "period": "10s",
        "timeout": "3s",
        "threshold": 3,
        "http": {"url": f"http://127.0.0.1:8081{path}"},
    }


def app_service(
    name: str, summary: str = "gunicorn on a unix socket", command: str | None = None
) -> dict:
    return {
        "override": "replace",
        "summary": f"cluster manager {name} ({summary})",
        "command": command or f"python3 -m cluster_manager serve {name}",
        "startup": "enabled",
        "after": ["haproxy"],
        "environment": {"MCM_ENV_FILE": "/etc/cluster-manager/cluster-manager.env"},
        "on-check-failure": {f"{name}-alive": "restart"},
    }


def test_layer_runs_haproxy_both_apps_the_forwarder_and_the_tunnel_with_their_checks():
    layer = build_layer(tunnel=True)

    assert layer.to_dict() == {
        "summary": "MicroCloud Cluster Manager",
        "description": "HAProxy in front of the management, connector, forwarder and tunnel"
        " processes",
        "services": {
            "haproxy": {
                "override": "replace",
                "summary": "HAProxy: TLS for the management API and the cluster connector",
                "command": "haproxy -W -db -f /etc/cluster-manager/haproxy.cfg",
                "startup": "enabled",
                "on-check-failure": {"haproxy-alive": "restart"},
            },
            "management": app_service("management"),
            "connector": app_service("connector"),
            "forwarder": {
                "override": "replace",
                "summary": "cluster manager forwarder (LXD metrics to remote write)",
                "command": "python3 -m cluster_manager.forwarding",
                "startup": "enabled",
                "environment": {"MCM_ENV_FILE": "/etc/cluster-manager/cluster-manager.env"},
                "on-check-failure": {"forwarder-alive": "restart"},
            },
            "tunnel": app_service(
                "tunnel",
                "asyncio: the clusters' websockets, TLS on 9445",
                "python3 -m cluster_manager.tunnel",
            ),
        },
        "checks": {
            "haproxy-alive": http_check("alive", "/health/haproxy"),
            "management-alive": http_check("alive", "/health/management"),
            "management-ready": http_check("ready", "/ready/management"),
            "connector-alive": http_check("alive", "/health/connector"),
            "connector-ready": http_check("ready", "/ready/connector"),
            "forwarder-alive": http_check("alive", "/health/forwarder"),
            "tunnel-alive": http_check("alive", "/health/tunnel"),
            "tunnel-ready": http_check("ready", "/ready/tunnel"),
        },
    }


def test_ready_unit_plans_the_layer_and_runs_every_service(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    container = deployment.container
    assert container.plan.to_dict() == {
        "services": build_layer(tunnel=True).to_dict().get("services"),
        "checks": build_layer(tunnel=True).to_dict().get("checks"),
    }
    assert {
        name: status.value for name, status in container.service_statuses.items()
    } == dict.fromkeys(SERVICES, "active")


def test_env_file_holds_config_database_and_tunnel_settings_readable_only_by_root(
    ctx, ca: SigningCA
):
    deployment = deploy(ctx, ca)

    (tunnel,) = (s for s in deployment.state.secrets if s.label == "tunnel-secret")
    env = workload_file(deployment.container, ENV_FILE)
    assert env.read_text().splitlines() == [
        "MCM_CA_BUNDLE_FILE=/etc/cluster-manager/tls/ca-bundle.crt",
        "MCM_CONNECTOR_CERT_FILE=/etc/cluster-manager/tls/connector.crt",
        "MCM_CONNECTOR_DOMAIN=cc.example.com",
        "MCM_CONNECTOR_MAX_BODY_MIB=64",
        "MCM_CONNECTOR_PORT=443",
        f"MCM_DATABASE_URL=postgresql://relation_id_5:s3cret@{DB_ENDPOINT}/cluster_manager",
        "MCM_GRAFANA_URL=",
        "MCM_HEARTBEAT_INTERVAL=60",
        f"MCM_INTERNAL_ADDRESS={peer_address(0)}",
        "MCM_JOIN_TOKEN_EXPIRY=86400",
        "MCM_LOG_LEVEL=info",
        "MCM_METRICS_PORT=9102",
        "MCM_OFFLINE_AFTER=180",
        "MCM_RATE_LIMIT_CONNECTOR=60/minute",
        "MCM_RATE_LIMIT_MANAGEMENT=600/minute",
        "MCM_REMOTE_WRITE_URLS=",
        "MCM_RUN_DIR=/run/cluster-manager",
        "MCM_TUNNEL_PORT=9445",
        f"MCM_TUNNEL_SECRET={tunnel.latest_content['tunnel-secret']}",
    ]
    assert env.stat().st_mode & 0o777 == 0o600


def test_front_behind_traefik_expects_proxy_protocol_from_the_pod_network(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    front_config = workload_file(deployment.container, FRONT_CONFIG)
    assert front_config.read_text() == render_front_config(
        FrontSettings(
            management_cert="/etc/cluster-manager/tls/management.crt",
            connector_cert="/etc/cluster-manager/tls/connector.crt",
            run_dir="/run/cluster-manager",
            proxy_protocol=True,
            trusted_proxies=(
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "100.64.0.0/10",
                "fc00::/7",
            ),
        )
    )


def test_trusted_proxies_option_sets_whose_proxy_header_the_front_believes(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    state = dataclasses.replace(
        deployment.state, config={**CONFIG, "trusted-proxies": "10.1.0.0/16, 2001:db8:42::/56"}
    )

    out = ctx.run(ctx.on.config_changed(), state)

    front = workload_file(out.get_container(CONTAINER), FRONT_CONFIG).read_text()
    assert "{ fc_src 10.1.0.0/16 2001:db8:42::/56 }" in front
    assert "192.168.0.0/16" not in front


def test_certificates_and_keys_are_pushed_keys_private(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    tls = workload_file(deployment.container, "tls")
    assert tls.joinpath("management.crt").read_text().count("BEGIN CERTIFICATE") == 2
    assert tls.joinpath("connector.crt").read_text().count("BEGIN CERTIFICATE") == 1
    for key in ("management.key", "connector.key"):
        assert "PRIVATE KEY" in tls.joinpath(key).read_text()
        assert tls.joinpath(key).stat().st_mode & 0o777 == 0o600
    assert tls.joinpath("ca-bundle.crt").read_text() == ""


def test_leader_migrates_with_the_env_file_settings_before_starting(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    [migration] = ctx.exec_history["cluster-manager"]
    assert migration.command == cli("migrate", "--json")
    env = (workload_file(deployment.container, ENV_FILE)).read_text()
    assert migration.environment == dict(line.split("=", 1) for line in env.splitlines())
    assert deployment.relation(deployment.peers).local_app_data["schema-version"] == "3"


def test_running_leader_does_not_migrate_again(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    ctx.exec_history.clear()

    ctx.run(ctx.on.update_status(), deployment.state)

    assert ctx.exec_history == {}


def test_leader_migrates_again_when_its_services_are_not_running(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    ctx.exec_history.clear()
    fresh_pod = dataclasses.replace(deployment.container, service_statuses={})

    ctx.run(ctx.on.update_status(), replace_container(deployment.state, fresh_pod))

    assert [run.command for run in ctx.exec_history["cluster-manager"]] == [
        cli("migrate", "--json")
    ]


def test_failed_migration_does_not_start_the_services(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    fresh = dataclasses.replace(
        deployment.container,
        layers={},
        service_statuses={},
        check_infos=frozenset(),
        execs={migrate_exec(return_code=3, stderr="database unavailable")},
    )
    peers = dataclasses.replace(deployment.relation(deployment.peers), local_app_data={})
    state = replace_relation(replace_container(deployment.state, fresh), peers)

    out = ctx.run(ctx.on.pebble_ready(fresh), state)

    assert out.get_container("cluster-manager").plan.services == {}


def test_config_change_restarts_only_the_apps(ctx, ca: SigningCA, pebble_calls: PebbleCalls):
    deployment = deploy(ctx, ca)
    state = dataclasses.replace(deployment.state, config={**CONFIG, "log-level": "debug"})
    pebble_calls.calls.clear()

    out = ctx.run(ctx.on.config_changed(), state)

    assert pebble_calls.calls == [("restart", ("management", "connector", "forwarder", "tunnel"))]
    env = (workload_file(out.get_container("cluster-manager"), ENV_FILE)).read_text()
    assert "MCM_LOG_LEVEL=debug" in env


def test_offline_after_is_rendered_independently_of_the_heartbeat_interval(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    config = {**CONFIG, "heartbeat-interval": 10, "offline-after": 600}

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(deployment.state, config=config))

    env = parse_env_file(workload_file(out.get_container("cluster-manager"), ENV_FILE).read_text())
    assert env["MCM_HEARTBEAT_INTERVAL"] == "10"
    assert env["MCM_OFFLINE_AFTER"] == "600"


def test_connector_max_body_size_is_rendered_in_mib(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    config = {**CONFIG, "connector-max-body-size": 256}

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(deployment.state, config=config))

    env = parse_env_file(workload_file(out.get_container("cluster-manager"), ENV_FILE).read_text())
    assert env["MCM_CONNECTOR_MAX_BODY_MIB"] == "256"


def test_unchanged_inputs_touch_no_service(ctx, ca: SigningCA, pebble_calls: PebbleCalls):
    deployment = deploy(ctx, ca)
    pebble_calls.calls.clear()

    ctx.run(ctx.on.update_status(), deployment.state)

    assert pebble_calls.calls == []


def test_stopped_service_is_started_again(ctx, ca: SigningCA, pebble_calls: PebbleCalls):
    deployment = deploy(ctx, ca)
    container = running(deployment.container)
    statuses = dict(container.service_statuses)
    statuses["connector"] = statuses["connector"].__class__.INACTIVE
    container = dataclasses.replace(container, service_statuses=statuses)
    pebble_calls.calls.clear()

    ctx.run(ctx.on.update_status(), replace_container(deployment.state, container))

    assert pebble_calls.calls == [("start", ("connector",))]


def test_removing_traefik_reloads_the_front_without_proxy_protocol(
    ctx, ca: SigningCA, pebble_calls: PebbleCalls
):
    deployment = deploy(ctx, ca)
    traefik = deployment.relation(deployment.traefik)
    state = dataclasses.replace(
        deployment.state, relations={r for r in deployment.state.relations if r.id != traefik.id}
    )
    pebble_calls.calls.clear()

    out = ctx.run(ctx.on.update_status(), state)

    front_config = workload_file(out.get_container("cluster-manager"), FRONT_CONFIG)
    assert "accept-proxy" not in front_config.read_text()
    assert pebble_calls.calls == [("SIGUSR2", ("haproxy",))]


def test_the_test_stack_runs_each_process_as_the_layer_does():
    services = build_layer(tunnel=True).services

    for name, arguments in MODULES.items():
        assert services[name].command == " ".join(("python3", "-m", *arguments))
