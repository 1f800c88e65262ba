"""`juju refresh`: upgrade-charm on the state an older revision (the nginx front) left behind.

On Kubernetes, Juju re-creates the pod: Pebble starts with an empty plan and the container's
files are gone, while the relations, the peer data and the connector identity's secret stay.
The charm must also cope with a container that still holds the older revision's plan, its
services and its files (`older_revision(pod_replaced=False)`), which Pebble cannot forget
without a restart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ops
import pytest
from ops import pebble, testing

from oidc import NOT_CONFIGURED
from pebble_layer import RETIRED_CHECK, build_layer, is_planned, layer_services, retirement
from tests.unit.builders import (
    CONTAINER,
    DB_ENDPOINT,
    PREVIOUS_SCHEMA_VERSION,
    SERVICES,
    WITHOUT_TUNNELS,
    Deployment,
    SigningCA,
    cli,
    deploy,
    older_revision,
    previous_layer,
    replace_container,
    replace_relation,
    tunnel_secret,
    tunnel_secrets,
    workload_file,
)
from workload import parse_env_file

ENV_FILE = "/etc/cluster-manager/cluster-manager.env"
DATABASE_URL = f"postgresql://relation_id_5:s3cret@{DB_ENDPOINT}/cluster_manager"
ROLES = pytest.mark.parametrize("leader", [True, False], ids=["leader", "non-leader"])
CONTAINERS = pytest.mark.parametrize(
    ("pod_replaced", "old_services_running"),
    [(True, False), (False, True), (False, False)],
    ids=["pod-replaced", "old-plan-running", "old-plan-stopped"],
)
TUNNEL = pytest.mark.parametrize("tunnel", [True, False], ids=["tunnel", "no-tunnel-secret"])
OLD_PLAN = pytest.mark.parametrize(
    "old_services_running", [True, False], ids=["old-plan-running", "old-plan-stopped"]
)


@dataclasses.dataclass
class ContainerCalls:
    """What the charm asked of the container, in order: (operation, arguments)."""

    calls: list[tuple[str, tuple[Any, ...]]] = dataclasses.field(default_factory=list)

    def index(self, operation: str) -> int:
        return next(i for i, (op, _) in enumerate(self.calls) if op == operation)

    def of(self, operation: str) -> list[tuple[Any, ...]]:
        return [args for op, args in self.calls if op == operation]


@pytest.fixture
def container_calls(monkeypatch: pytest.MonkeyPatch) -> ContainerCalls:
    """Record execs (their command), layers added (their label) and service operations."""
    record = ContainerCalls()

    def spy(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: ops.Container, *args: Any, **kwargs: Any) -> Any:
            if operation == "exec":
                record.calls.append((operation, tuple(args[0])))
            elif operation == "add_layer":
                record.calls.append((operation, (args[0],)))
            else:
                record.calls.append((operation, args))
            return original(self, *args, **kwargs)

        return wrapper

    for operation in ("exec", "add_layer", "stop", "start", "restart", "replan"):
        monkeypatch.setattr(
            ops.Container, operation, spy(operation, getattr(ops.Container, operation))
        )
    return record


def refreshed(
    ctx: testing.Context, ca: SigningCA, calls: ContainerCalls | None = None, **older: Any
) -> tuple[Deployment, testing.State]:
    """Return the older revision's state and the state after upgrade-charm ran on it."""
    before = older_revision(ctx, ca, **older)
    if calls is not None:
        calls.calls.clear()
    return before, ctx.run(ctx.on.upgrade_charm(), before.state)


def identity_secret(state: testing.State) -> testing.Secret:
    (secret,) = (s for s in state.secrets if s.label == "connector-identity")
    return secret


def peer_app_data(deployment: Deployment, state: testing.State) -> dict[str, str]:
    return dict(state.get_relation(deployment.peers.id).local_app_data)


# The connector identity


@ROLES
@CONTAINERS
def test_upgrade_keeps_the_connector_secret_its_content_and_its_fingerprint(
    ctx, ca: SigningCA, leader: bool, pod_replaced: bool, old_services_running: bool
):
    before, out = refreshed(
        ctx,
        ca,
        leader=leader,
        pod_replaced=pod_replaced,
        old_services_running=old_services_running,
    )

    old, new = identity_secret(before.state), identity_secret(out)
    assert (new.id, new.tracked_content, new.latest_content) == (
        old.id,
        old.tracked_content,
        old.tracked_content,
    )
    old_data, new_data = peer_app_data(before, before.state), peer_app_data(before, out)
    for key in ("connector-secret-id", "connector-fingerprint"):
        assert new_data[key] == old_data[key]
    container = out.get_container(CONTAINER)
    assert (
        workload_file(container, "tls/connector.crt").read_text()
        == (old.tracked_content["certificate"])
    )
    assert (
        workload_file(container, "tls/connector.key").read_text()
        == (old.tracked_content["private-key"])
    )


# The tunnel, new in this revision


def layer_before_the_tunnel() -> pebble.Layer:
    """Return the layer of the revision before the tunnel: today's, less its service and checks."""
    layer = build_layer(tunnel=True)
    services = {name: s.to_dict() for name, s in layer.services.items() if name != "tunnel"}
    checks = {name: c.to_dict() for name, c in layer.checks.items() if "tunnel" not in name}
    return pebble.Layer({"services": services, "checks": checks})


def test_running_plan_from_before_the_tunnel_gains_it_by_a_replan(
    ctx, ca: SigningCA, container_calls: ContainerCalls
):
    deployment = deploy(ctx, ca)
    earlier = dict.fromkeys(("haproxy", "management", "connector"), pebble.ServiceStatus.ACTIVE)
    container = dataclasses.replace(
        deployment.container,
        layers={"cluster-manager": layer_before_the_tunnel()},
        service_statuses=earlier,
        check_infos={c for c in deployment.container.check_infos if "tunnel" not in c.name},
    )
    container_calls.calls.clear()

    out = ctx.run(ctx.on.upgrade_charm(), replace_container(deployment.state, container))

    plan = out.get_container(CONTAINER).plan
    assert plan.services["tunnel"] == build_layer(tunnel=True).services["tunnel"]
    assert {"tunnel-alive", "tunnel-ready"} <= set(plan.checks)
    # Pebble's replan starts what is new and restarts only what changed: nothing else here.
    assert [op for op, _ in container_calls.calls] == ["exec", "add_layer", "replan"]
    assert out.get_container(CONTAINER).service_statuses["tunnel"] == pebble.ServiceStatus.ACTIVE


@CONTAINERS
def test_leader_upgrade_creates_the_tunnel_secret_and_writes_it(
    ctx, ca: SigningCA, pod_replaced: bool, old_services_running: bool
):
    before, out = refreshed(
        ctx, ca, pod_replaced=pod_replaced, old_services_running=old_services_running
    )

    assert tunnel_secrets(before.state) == []
    (secret,) = tunnel_secrets(out)
    assert peer_app_data(before, out)["tunnel-secret-id"] == secret.id
    env = parse_env_file(workload_file(out.get_container(CONTAINER), ENV_FILE).read_text())
    assert env["MCM_TUNNEL_SECRET"] == secret.latest_content["tunnel-secret"]


@CONTAINERS
def test_non_leader_upgraded_before_the_leader_serves_all_but_the_tunnel(
    ctx,
    ca: SigningCA,
    container_calls: ContainerCalls,
    pod_replaced: bool,
    old_services_running: bool,
):
    _, out = refreshed(
        ctx,
        ca,
        container_calls,
        leader=False,
        pod_replaced=pod_replaced,
        old_services_running=old_services_running,
        tunnel_secret_created=False,
    )

    assert out.unit_status == WITHOUT_TUNNELS
    container = out.get_container(CONTAINER)
    for name, service in build_layer(tunnel=False).services.items():
        assert container.plan.services[name] == service
    assert "tunnel" not in container.plan.services
    assert not {"tunnel-alive", "tunnel-ready"} & set(container.plan.checks)
    serving = {name for name, s in container.service_statuses.items() if s.value == "active"}
    assert serving == set(layer_services(tunnel=False))
    assert container_calls.of("exec") == []  # the leader migrates
    env = parse_env_file(workload_file(container, ENV_FILE).read_text())
    assert "MCM_TUNNEL_SECRET" not in env
    assert env["MCM_DATABASE_URL"] == DATABASE_URL


@CONTAINERS
def test_non_leader_gains_the_tunnel_once_the_upgraded_leader_publishes_its_secret(
    ctx,
    ca: SigningCA,
    container_calls: ContainerCalls,
    pod_replaced: bool,
    old_services_running: bool,
):
    before, upgraded = refreshed(
        ctx,
        ca,
        leader=False,
        pod_replaced=pod_replaced,
        old_services_running=old_services_running,
        tunnel_secret_created=False,
    )
    secret = tunnel_secret()
    peers = dataclasses.replace(
        upgraded.get_relation(before.peers.id),
        local_app_data={**peer_app_data(before, upgraded), "tunnel-secret-id": secret.id},
    )
    state = replace_relation(
        dataclasses.replace(upgraded, secrets={*upgraded.secrets, secret}), peers
    )
    container_calls.calls.clear()

    out = ctx.run(ctx.on.relation_changed(peers, remote_unit=1), state)

    container = out.get_container(CONTAINER)
    assert container.plan.services["tunnel"] == build_layer(tunnel=True).services["tunnel"]
    assert {"tunnel-alive", "tunnel-ready"} <= set(container.plan.checks)
    assert container.service_statuses["tunnel"] == pebble.ServiceStatus.ACTIVE
    env = parse_env_file(workload_file(container, ENV_FILE).read_text())
    assert env["MCM_TUNNEL_SECRET"] == secret.latest_content["tunnel-secret"]
    # HAProxy keeps serving untouched; the apps restart once, on the env file that gained
    # the secret; the replan starts the tunnel.
    assert container_calls.calls == [
        ("add_layer", ("cluster-manager",)),
        ("restart", ("management", "connector", "forwarder")),
        ("replan", ()),
    ]
    assert out.unit_status == testing.ActiveStatus(NOT_CONFIGURED)


# The database


@CONTAINERS
def test_leader_migrates_before_it_starts_the_new_layer(
    ctx,
    ca: SigningCA,
    container_calls: ContainerCalls,
    pod_replaced: bool,
    old_services_running: bool,
):
    before, out = refreshed(
        ctx,
        ca,
        container_calls,
        pod_replaced=pod_replaced,
        old_services_running=old_services_running,
    )

    assert container_calls.of("exec") == [(*cli("migrate"), "--json")]
    assert container_calls.index("exec") < container_calls.index("add_layer")
    old_data, new_data = peer_app_data(before, before.state), peer_app_data(before, out)
    assert old_data["schema-version"] == PREVIOUS_SCHEMA_VERSION
    assert new_data["schema-version"] == "3"  # what the new image's migrate answered
    assert new_data["schema-database"] == old_data["schema-database"]


@CONTAINERS
def test_non_leader_leaves_migrating_to_the_leader(
    ctx,
    ca: SigningCA,
    container_calls: ContainerCalls,
    pod_replaced: bool,
    old_services_running: bool,
):
    before, out = refreshed(
        ctx,
        ca,
        container_calls,
        leader=False,
        pod_replaced=pod_replaced,
        old_services_running=old_services_running,
    )

    assert container_calls.of("exec") == []
    assert peer_app_data(before, out) == peer_app_data(before, before.state)


@ROLES
@CONTAINERS
def test_env_file_keeps_the_database_url_and_gains_the_new_settings(
    ctx, ca: SigningCA, leader: bool, pod_replaced: bool, old_services_running: bool
):
    before = older_revision(
        ctx,
        ca,
        leader=leader,
        pod_replaced=pod_replaced,
        old_services_running=old_services_running,
    )
    old_env = workload_file(before.container, ENV_FILE)
    old = parse_env_file(old_env.read_text()) if old_env.exists() else None

    out = ctx.run(ctx.on.upgrade_charm(), before.state)

    env = parse_env_file(workload_file(out.get_container(CONTAINER), ENV_FILE).read_text())
    assert env["MCM_DATABASE_URL"] == DATABASE_URL
    assert env["MCM_OFFLINE_AFTER"] and env["MCM_CONNECTOR_MAX_BODY_MIB"]
    if old is not None:  # the older revision's file: the same URL, without the new settings
        assert old["MCM_DATABASE_URL"] == DATABASE_URL
        assert "MCM_OFFLINE_AFTER" not in old


# The Pebble plan


@ROLES
def test_replaced_pod_gets_exactly_the_new_layer_and_runs_it(
    ctx, ca: SigningCA, container_calls: ContainerCalls, leader: bool
):
    _, out = refreshed(ctx, ca, container_calls, leader=leader, pod_replaced=True)

    container = out.get_container(CONTAINER)
    assert container.plan.to_dict() == {
        "services": build_layer(tunnel=True).to_dict().get("services"),
        "checks": build_layer(tunnel=True).to_dict().get("checks"),
    }
    assert container_calls.of("replan") == [()]
    assert {name: s.value for name, s in container.service_statuses.items()} == dict.fromkeys(
        SERVICES, "active"
    )


@ROLES
@OLD_PLAN
def test_old_front_is_stopped_and_disabled_and_the_new_layer_started_by_name(
    ctx, ca: SigningCA, container_calls: ContainerCalls, leader: bool, old_services_running: bool
):
    _, out = refreshed(
        ctx, ca, container_calls, leader=leader, old_services_running=old_services_running
    )

    container = out.get_container(CONTAINER)
    plan = container.plan
    for name, service in build_layer(tunnel=True).services.items():
        assert plan.services[name] == service
    for name, check in build_layer(tunnel=True).checks.items():
        assert plan.checks[name] == check
    assert plan.services["nginx"].startup == "disabled"
    assert container.service_statuses["nginx"] == pebble.ServiceStatus.INACTIVE
    assert {name: container.service_statuses[name] for name in SERVICES} == dict.fromkeys(
        SERVICES, pebble.ServiceStatus.ACTIVE
    )
    # A replan would also restart nginx, whose definition changed; ours start by name.
    assert container_calls.of("replan") == []
    assert container_calls.of("stop") == ([("nginx",)] if old_services_running else [])
    assert container_calls.of("restart") == [SERVICES]
    if old_services_running:
        assert container_calls.index("stop") < container_calls.index("restart")


@ROLES
@OLD_PLAN
def test_old_front_check_can_no_longer_fail_the_probes(
    ctx, ca: SigningCA, leader: bool, old_services_running: bool
):
    _, out = refreshed(ctx, ca, leader=leader, old_services_running=old_services_running)

    check = out.get_container(CONTAINER).plan.checks["nginx-alive"]
    assert check.level == pebble.CheckLevel.UNSET
    assert check.exec == {"command": "true"}
    assert check.http is None


@ROLES
@CONTAINERS
def test_upgraded_unit_is_active(
    ctx, ca: SigningCA, leader: bool, pod_replaced: bool, old_services_running: bool
):
    _, out = refreshed(
        ctx,
        ca,
        leader=leader,
        pod_replaced=pod_replaced,
        old_services_running=old_services_running,
    )

    assert out.unit_status == testing.ActiveStatus(NOT_CONFIGURED)


@ROLES
@CONTAINERS
def test_the_hook_after_the_upgrade_restarts_and_migrates_nothing(
    ctx,
    ca: SigningCA,
    container_calls: ContainerCalls,
    leader: bool,
    pod_replaced: bool,
    old_services_running: bool,
):
    _, upgraded = refreshed(
        ctx,
        ca,
        leader=leader,
        pod_replaced=pod_replaced,
        old_services_running=old_services_running,
    )
    container_calls.calls.clear()

    out = ctx.run(ctx.on.update_status(), upgraded)

    # The leader's scheduled prune-history is the one command an update-status runs.
    prune = ("exec", tuple(cli("prune-history", "--json")))
    assert [call for call in container_calls.calls if call != prune] == []
    assert out.unit_status == testing.ActiveStatus(NOT_CONFIGURED)


# The retirement, as a pure function of the plan


def plan_of(*layers: pebble.Layer) -> pebble.Plan:
    """Return the plan Pebble makes of `layers` added in order under one label."""
    services: dict[str, pebble.Service] = {}
    checks: dict[str, pebble.Check] = {}
    for layer in layers:
        for name, service in layer.services.items():
            if service.override == "merge" and name in services:
                services[name]._merge(service)
            else:
                services[name] = service
        checks.update(layer.checks)
    return pebble.Plan(
        {
            "services": {name: s.to_dict() for name, s in services.items()},
            "checks": {name: c.to_dict() for name, c in checks.items()},
        }
    )


def test_retirement_disables_the_services_and_disarms_the_checks_the_layer_lacks():
    plan = plan_of(previous_layer(), build_layer(tunnel=True))

    retired = retirement(plan)

    assert retired.to_dict() == {
        "services": {"nginx": {"override": "merge", "startup": "disabled"}},
        "checks": {"nginx-alive": RETIRED_CHECK},
    }
    assert not is_planned(plan, tunnel=True)


@TUNNEL
def test_a_plan_with_the_older_revision_retired_is_planned(tunnel: bool):
    plan = plan_of(previous_layer(), build_layer(tunnel))

    retired = plan_of(previous_layer(), build_layer(tunnel), retirement(plan))

    assert retirement(retired).to_dict() == {}
    assert is_planned(retired, tunnel)


def test_a_plan_without_the_tunnel_retires_nothing_and_is_planned_only_without_its_secret():
    plan = plan_of(build_layer(tunnel=False))

    assert plan_of(layer_before_the_tunnel()).to_dict() == plan.to_dict()
    assert retirement(plan).to_dict() == {}
    assert is_planned(plan, tunnel=False)
    assert not is_planned(plan, tunnel=True)


def test_a_planned_tunnel_is_never_retired_even_without_its_secret():
    plan = plan_of(build_layer(tunnel=True))

    assert retirement(plan).to_dict() == {}
    assert is_planned(plan, tunnel=True)
    # Pebble cannot remove it: planning again would change nothing.
    assert is_planned(plan, tunnel=False)


@TUNNEL
def test_the_older_revisions_plan_is_never_planned(tunnel: bool):
    assert not is_planned(plan_of(previous_layer()), tunnel)
