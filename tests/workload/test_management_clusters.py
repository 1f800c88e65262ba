"""Enrolled clusters through the management API (reference §1.1 and §11.2, design D5 fixes)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.clusters import KNOWN_HEARTBEAT, enroll
from tests.support.openapi import ValidatedSession
from tools.stack import Stack

UPSTREAM_FIELD_ORDER = [
    "name", "description", "cluster_certificate", "disk_threshold", "memory_threshold",
    "status", "ceph_count", "ceph_statuses", "cpu_total_count", "cpu_load_1", "cpu_load_5",
    "cpu_load_15", "memory_total_amount", "memory_usage", "storage_pool_usages",
    "member_count", "member_statuses", "instance_count", "instance_statuses", "ui_url",
    "tunnel_registered", "joined_at", "created_at", "last_status_update_at",
]  # fmt: skip


def _cluster(api: ValidatedSession, stack: Stack, name: str) -> dict:
    response = api.get(f"{stack.management_url}/1.0/remote-cluster/{name}")
    assert response.status_code == 200, response.text
    return response.json()["metadata"]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_list_is_sorted_by_name(management_api: ValidatedSession, stack: Stack) -> None:
    for name in ("sort-c", "sort-a", "sort-b"):
        enroll(stack, name)

    response = management_api.get(f"{stack.management_url}/1.0/remote-cluster")

    names = [cluster["name"] for cluster in response.json()["metadata"]]
    assert response.status_code == 200
    assert names == sorted(names)
    assert {"sort-a", "sort-b", "sort-c"} <= set(names)


def test_get_shows_the_latest_heartbeat(management_api: ValidatedSession, stack: Stack) -> None:
    enroll(stack, "get-known", KNOWN_HEARTBEAT)

    cluster = _cluster(management_api, stack, "get-known")

    assert cluster["status"] == "ACTIVE"
    assert cluster["cpu_total_count"] == 8
    assert (cluster["cpu_load_1"], cluster["cpu_load_5"], cluster["cpu_load_15"]) == (
        "0.10",
        "0.20",
        "0.30",
    )
    assert (cluster["memory_total_amount"], cluster["memory_usage"]) == (1024, 512)
    assert cluster["storage_pool_usages"] == KNOWN_HEARTBEAT["storage_pool_usages"]
    assert cluster["member_statuses"] == KNOWN_HEARTBEAT["member_statuses"]
    assert cluster["instance_statuses"] == KNOWN_HEARTBEAT["instance_statuses"]
    assert (cluster["member_count"], cluster["instance_count"], cluster["ceph_count"]) == (3, 3, 3)
    assert cluster["ui_url"] == "https://10.0.0.1:8443"


def test_cluster_fields_come_in_upstream_order_then_extras(
    management_api: ValidatedSession, stack: Stack
) -> None:
    enroll(stack, "field-order")

    cluster = _cluster(management_api, stack, "field-order")

    assert list(cluster) == [
        *UPSTREAM_FIELD_ORDER,
        "fingerprint",
        "connection_status",
        "last_heartbeat_at",
        "tunnel_connected_at",
    ]


def test_cluster_certificate_and_fingerprint_are_the_enrolled_ones(
    management_api: ValidatedSession, stack: Stack
) -> None:
    client = enroll(stack, "cert-check")

    cluster = _cluster(management_api, stack, "cert-check")

    assert cluster["cluster_certificate"] == client.cluster_cert.cert_pem
    assert len(cluster["fingerprint"]) == 64


def test_joined_at_stays_the_enrollment_time_after_heartbeats(
    management_api: ValidatedSession, stack: Stack
) -> None:
    client = enroll(stack, "joined-stays")
    joined_at = _cluster(management_api, stack, "joined-stays")["joined_at"]

    assert client.heartbeat(KNOWN_HEARTBEAT).ok

    after = _cluster(management_api, stack, "joined-stays")
    assert after["joined_at"] == joined_at
    assert _parse_time(after["last_status_update_at"]) > _parse_time(joined_at)


def test_cluster_without_heartbeat_is_offline_and_never_heard_from(
    management_api: ValidatedSession, stack: Stack
) -> None:
    enroll(stack, "silent")

    cluster = _cluster(management_api, stack, "silent")

    assert cluster["connection_status"] == "offline"
    assert cluster["last_heartbeat_at"] is None
    assert cluster["last_status_update_at"] == cluster["joined_at"]
    assert cluster["member_statuses"] == []


def test_cluster_with_recent_heartbeat_is_online(
    management_api: ValidatedSession, stack: Stack
) -> None:
    before = datetime.now(UTC)
    enroll(stack, "chatty", KNOWN_HEARTBEAT)

    cluster = _cluster(management_api, stack, "chatty")

    assert cluster["connection_status"] == "online"
    assert _parse_time(cluster["last_heartbeat_at"]) >= before
    assert cluster["last_status_update_at"] == cluster["last_heartbeat_at"]


def test_get_missing_cluster_is_404(management_api: ValidatedSession, stack: Stack) -> None:
    response = management_api.get(
        f"{stack.management_url}/1.0/remote-cluster/definitely-does-not-exist-99999"
    )

    assert response.status_code == 404
    assert response.json()["error"] == "remote cluster definitely-does-not-exist-99999 not found"


def test_patch_changes_every_field_sent(management_api: ValidatedSession, stack: Stack) -> None:
    enroll(stack, "patch-all")

    response = management_api.patch(
        f"{stack.management_url}/1.0/remote-cluster/patch-all",
        json={
            "status": "ACTIVE",
            "description": "rack 4",
            "disk_threshold": 75,
            "memory_threshold": 80,
        },
    )

    cluster = _cluster(management_api, stack, "patch-all")
    assert response.status_code == 200
    assert response.json()["metadata"] == {}
    assert (cluster["description"], cluster["disk_threshold"], cluster["memory_threshold"]) == (
        "rack 4",
        75,
        80,
    )


def test_patch_without_description_keeps_it(
    management_api: ValidatedSession, stack: Stack
) -> None:
    enroll(stack, "patch-keep")
    url = f"{stack.management_url}/1.0/remote-cluster/patch-keep"
    management_api.patch(url, json={"description": "keep me"})

    response = management_api.patch(url, json={"disk_threshold": 90})

    cluster = _cluster(management_api, stack, "patch-keep")
    assert response.status_code == 200
    assert cluster["description"] == "keep me"
    assert cluster["disk_threshold"] == 90


def test_patch_accepts_threshold_bounds(management_api: ValidatedSession, stack: Stack) -> None:
    enroll(stack, "patch-bounds")

    response = management_api.patch(
        f"{stack.management_url}/1.0/remote-cluster/patch-bounds",
        json={"disk_threshold": 0, "memory_threshold": 100},
    )

    cluster = _cluster(management_api, stack, "patch-bounds")
    assert response.status_code == 200
    assert (cluster["disk_threshold"], cluster["memory_threshold"]) == (0, 100)


def test_patch_missing_cluster_is_404(management_api: ValidatedSession, stack: Stack) -> None:
    response = management_api.patch(
        f"{stack.management_url}/1.0/remote-cluster/non-existent-cluster",
        json={"description": "x"},
    )

    assert response.status_code == 404


def test_patch_invalid_status_is_400(management_api: ValidatedSession, stack: Stack) -> None:
    enroll(stack, "patch-status")

    response = management_api.patch(
        f"{stack.management_url}/1.0/remote-cluster/patch-status",
        json={"status": "DEFINITELY_INVALID_STATUS"},
    )

    assert response.status_code == 400
    assert "status" in response.json()["error"]
    assert _cluster(management_api, stack, "patch-status")["status"] == "ACTIVE"


def test_delete_forgets_the_cluster(management_api: ValidatedSession, stack: Stack) -> None:
    enroll(stack, "delete-me")

    response = management_api.delete(f"{stack.management_url}/1.0/remote-cluster/delete-me")

    gone = management_api.get(f"{stack.management_url}/1.0/remote-cluster/delete-me")
    assert response.status_code == 200
    assert response.json()["metadata"] == {}
    assert gone.status_code == 404


def test_deleted_cluster_heartbeat_is_refused(
    management_api: ValidatedSession, stack: Stack
) -> None:
    client = enroll(stack, "delete-beat")

    management_api.delete(f"{stack.management_url}/1.0/remote-cluster/delete-beat")

    assert client.heartbeat(KNOWN_HEARTBEAT).status == 403


def test_delete_missing_cluster_is_404(management_api: ValidatedSession, stack: Stack) -> None:
    response = management_api.delete(f"{stack.management_url}/1.0/remote-cluster/never-enrolled")

    assert response.status_code == 404
