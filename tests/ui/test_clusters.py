"""Managing clusters in a real browser: enroll, join, thresholds, description, remove, revoke."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import screenshot, sign_in
from tools.lxd import EmulatedLXD
from tools.microcloud import MicroCloudClient
from tools.stack import Stack

# Memory 50 % used, one pool 50 % full, everything online: only thresholds can warn.
HEARTBEAT = {
    "cpu_total_count": 8,
    "cpu_load_1": "0.5",
    "cpu_load_5": "0.4",
    "cpu_load_15": "0.3",
    "memory_total_amount": 16 * 1024**3,
    "memory_usage": 8 * 1024**3,
    "instance_statuses": [{"status": "Running", "count": 3}, {"status": "Stopped", "count": 1}],
    "member_statuses": [{"status": "Online", "count": 3}],
    "storage_pool_usages": [
        {"name": "local", "member": "m1", "total": 100 * 1024**3, "usage": 50 * 1024**3}
    ],
}


def enroll(page: Page, stack: Stack, name: str) -> str:
    """Enroll `name` in the UI; return the token from the dialog's command."""
    page.goto(f"{stack.management_url}/ui/tokens")
    page.get_by_label("Cluster name").fill(name)
    page.get_by_label("Description").fill(f"{name} in the lab")
    page.get_by_role("button", name="Create join token").click()
    command = page.locator("#join-command").inner_text().strip()
    assert command.startswith("microcloud cluster-manager join ")
    return command.split()[-1]


@pytest.fixture
def joined(page: Page, stack: Stack) -> Iterator[str]:
    """A cluster enrolled in the UI and joined by the MicroCloud emulator, one heartbeat in."""
    sign_in(page, stack)
    name = f"ui-{time.monotonic_ns() % 10**9}"
    client = MicroCloudClient(enroll(page, stack, name), resolve=stack.resolve)
    assert client.join().ok
    assert client.heartbeat(HEARTBEAT).ok
    try:
        yield name
    finally:
        client.close()


def test_enrolled_cluster_appears_after_one_heartbeat(page: Page, stack: Stack):
    sign_in(page, stack)
    token = enroll(page, stack, "ui-enrolled")
    expect(page.get_by_role("dialog")).to_contain_text(
        "Join token for cluster ui-enrolled created"
    )
    screenshot(page, "enroll-dialog")
    client = MicroCloudClient(token, resolve=stack.resolve)

    assert client.join().ok
    assert client.heartbeat(HEARTBEAT).ok
    page.goto(f"{stack.management_url}/ui/clusters?q=ui-enrolled")

    row = page.get_by_role("row").filter(has_text="ui-enrolled")
    expect(row).to_contain_text("Online")
    expect(row).to_contain_text("3")
    screenshot(page, "enrolled-cluster-listed")
    client.close()


def test_revoked_token_leaves_the_list(page: Page, stack: Stack):
    sign_in(page, stack)
    enroll(page, stack, "ui-revoke-me")
    page.get_by_role("link", name="Done").click()

    page.get_by_role("link", name="Revoke token for ui-revoke-me").click()
    expect(page.get_by_role("dialog")).to_contain_text("Confirm revoke")
    page.get_by_role("button", name="Revoke token").click()

    expect(page.get_by_text("Revoked token ui-revoke-me.")).to_be_visible()
    expect(page.get_by_role("table", name="Join tokens")).to_have_count(0)
    screenshot(page, "token-revoked")


def test_lower_threshold_raises_a_warning_and_higher_clears_it(
    page: Page, stack: Stack, joined: str
):
    page.goto(f"{stack.management_url}/ui/clusters/{joined}")
    expect(page.get_by_test_id("no-warnings")).to_be_visible()

    page.get_by_label("Disk threshold percentage").fill("10")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_test_id("warnings")).to_contain_text("Storage pool local on m1 is 50% full")
    screenshot(page, "threshold-warning-shown")

    page.get_by_label("Disk threshold percentage").fill("90")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_test_id("no-warnings")).to_be_visible()
    screenshot(page, "threshold-warning-cleared")


def test_description_edit_is_saved(page: Page, stack: Stack, joined: str):
    page.goto(f"{stack.management_url}/ui/clusters/{joined}")

    page.get_by_label("Description").fill("Rack 7, second floor")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_text(f"Updated cluster {joined}.")).to_be_visible()
    expect(page.get_by_label("Description")).to_have_value("Rack 7, second floor")
    screenshot(page, "description-edited")


def test_removed_cluster_leaves_the_list(page: Page, stack: Stack, joined: str):
    page.goto(f"{stack.management_url}/ui/clusters/{joined}")

    page.get_by_role("link", name="Remove").click()
    expect(page.get_by_role("dialog")).to_contain_text("Confirm remove")
    page.get_by_role("button", name="Remove cluster").click()

    expect(page.get_by_text(f"Removed cluster {joined}.")).to_be_visible()
    expect(page.get_by_role("link", name=joined, exact=True)).to_have_count(0)
    screenshot(page, "cluster-removed")


def test_cluster_detail_shows_meters_charts_and_heartbeat(page: Page, stack: Stack, joined: str):
    page.goto(f"{stack.management_url}/ui/clusters/{joined}")

    expect(page.get_by_test_id("heartbeat-age")).to_contain_text("ago")
    expect(page.get_by_role("img", name="Memory: 50.0% used, threshold 80%")).to_be_visible()
    expect(page.get_by_text("Members: 3 members")).to_be_visible()
    expect(page.get_by_text("Instances: 4 instances")).to_be_visible()
    screenshot(page, "cluster-detail")
    assert page.csp_violations == []  # type: ignore[attr-defined]


def test_cluster_with_a_tunnel_shows_its_live_instances(page: Page, stack: Stack):
    sign_in(page, stack)
    name = f"ui-tunnel-{time.monotonic_ns() % 10**9}"
    client = MicroCloudClient(enroll(page, stack, name), resolve=stack.resolve)
    assert client.join().ok
    lxd = EmulatedLXD()
    with client.tunnel(lxd, interval=0.2) as tunnel:
        assert tunnel.wait_connected(10), tunnel.errors

        page.goto(f"{stack.management_url}/ui/clusters/{name}")

        expect(page.get_by_test_id("tunnel-state")).to_contain_text("Tunnel registered")
        table = page.get_by_role("table", name="Instances")
        for instance in lxd.instances or []:
            row = table.get_by_role("row").filter(has_text=instance["name"])
            expect(row).to_contain_text(instance["status"])
            expect(row).to_contain_text(instance["location"])
        screenshot(page, "cluster-instances")
    assert page.csp_violations == []  # type: ignore[attr-defined]
