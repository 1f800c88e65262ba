"""The issue's commands on a real Juju model: deploy, integrate, enroll, scale, operate.

The tests run in order and share the model; each states what an operator would observe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

APP = "microcloud-cluster-manager-k8s"
DATABASE = "postgresql-k8s"
CERTIFICATES = "self-signed-certificates"
TRAEFIK = "traefik-k8s"
CONFIG = {"management-api-domain": "cm.example.com", "cluster-connector-domain": "cc.example.com"}
TIMEOUT = 30 * 60


def app_status(juju: Any, app: str = APP) -> list[tuple[str, str]]:
    status = juju.status()
    units = status.apps[app].units
    return [(u.workload_status.current, u.workload_status.message) for u in units.values()]


def wait_active(juju: Any, units: int) -> None:
    def ready(status: Any) -> bool:
        app = status.apps.get(APP)
        return (
            app is not None
            and len(app.units) == units
            and all(u.workload_status.current == "active" for u in app.units.values())
        )

    juju.wait(ready, timeout=TIMEOUT)


def route_servers(juju: Any) -> list[str]:
    unit = next(iter(juju.status().apps[TRAEFIK].units))
    info = json.loads(juju.cli("show-unit", unit, "--format=json"))[unit]
    for relation in info["relation-info"]:
        if relation["endpoint"] == "traefik-route":
            config = yaml.safe_load(relation["application-data"]["config"])
            service = config["tcp"]["services"][f"juju-{juju.model}-{APP}-connector"]
            return [server["address"] for server in service["loadBalancer"]["servers"]]
    return []


def test_deploy_alone_blocks_asking_for_a_database(juju: Any, charm_path: Path, workload_image):
    juju.deploy(
        charm_path,
        APP,
        resources={"cluster-manager-image": workload_image},
        config=CONFIG,
    )

    juju.wait(
        lambda status: (
            status.apps[APP].units
            and all(
                u.workload_status.current == "blocked" for u in status.apps[APP].units.values()
            )
        ),
        timeout=TIMEOUT,
    )
    assert app_status(juju) == [
        ("blocked", f"integrate with PostgreSQL (juju integrate {APP}:database postgresql-k8s)")
    ]


def test_integrated_charm_becomes_active(juju: Any):
    juju.deploy(DATABASE, channel="16/stable", trust=True)
    juju.deploy(CERTIFICATES)
    juju.deploy(TRAEFIK, trust=True)
    juju.integrate(APP, DATABASE)
    juju.integrate(f"{APP}:certificates", CERTIFICATES)
    juju.integrate(f"{APP}:receive-ca-cert", f"{CERTIFICATES}:send-ca-cert")
    juju.integrate(APP, f"{TRAEFIK}:traefik-route")

    wait_active(juju, units=1)


def test_enroll_cluster_prints_the_token_and_join_command(juju: Any):
    task = juju.run(f"{APP}/leader", "enroll-cluster", {"cluster": "mc-01"})

    token = task.results["token"]
    assert task.results["join-command"] == f"microcloud cluster-manager join {token}"
    assert task.results["cluster"] == "mc-01"


def test_list_tokens_shows_the_pending_enrollment(juju: Any):
    task = juju.run(f"{APP}/leader", "list-tokens")

    assert [t["cluster_name"] for t in json.loads(task.results["tokens"])] == ["mc-01"]


def test_revoking_an_unknown_token_fails_clearly(juju: Any):
    import jubilant  # pyright: ignore[reportMissingImports] (optional dependency)

    with pytest.raises(jubilant.TaskError) as failure:
        juju.run(f"{APP}/leader", "revoke-token", {"cluster": "no-such-cluster"})

    assert failure.value.task.message


def test_rotation_without_confirm_is_refused(juju: Any):
    import jubilant  # pyright: ignore[reportMissingImports] (optional dependency)

    with pytest.raises(jubilant.TaskError) as failure:
        juju.run(f"{APP}/leader", "rotate-connector-certificate")

    assert "confirm=true" in failure.value.task.message


def test_scale_out_routes_every_unit_and_keeps_the_fingerprint(juju: Any):
    before = juju.run(f"{APP}/leader", "show-connector-fingerprint").results["fingerprint"]

    juju.cli("scale-application", APP, "3")
    wait_active(juju, units=3)

    assert len(route_servers(juju)) == 3
    for unit in juju.status().apps[APP].units:
        fingerprint = juju.run(unit, "show-connector-fingerprint").results["fingerprint"]
        assert fingerprint == before


def test_every_unit_runs_the_tunnel_process_and_the_route_leaves_its_port_out(juju: Any):
    # e2e: tests/e2e/test_deployment.py (a tunnel on one unit answers through the other).
    for unit in juju.status().apps[APP].units:
        services = juju.ssh(unit, "pebble services tunnel", container="cluster-manager")
        assert "active" in services, services

    unit = next(iter(juju.status().apps[TRAEFIK].units))
    route = json.loads(juju.cli("show-unit", unit, "--format=json"))[unit]
    assert ":9445" not in json.dumps(route)


def test_scale_in_removes_the_unit_from_the_route(juju: Any):
    juju.cli("scale-application", APP, "2")
    wait_active(juju, units=2)

    assert len(route_servers(juju)) == 2
