"""axe-core (from npm) on every page: no serious or critical violation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.ui.conftest import ROOT, screenshot, sign_in
from tools.microcloud import MicroCloudClient
from tools.stack import Stack

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SEVERE = {"serious", "critical"}


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    # axe is injected as an inline script, which our CSP (rightly) forbids.
    context = chromium.new_context(ignore_https_errors=True, bypass_csp=True)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def cluster_name(stack: Stack) -> str:
    name = f"a11y-{time.monotonic_ns() % 10**6}"
    client = MicroCloudClient(stack.mint_token(name), resolve=stack.resolve)
    assert client.join().ok
    payload = {
        "cpu_total_count": 4,
        "cpu_load_1": "1.5",
        "cpu_load_5": "1",
        "cpu_load_15": "0.5",
        "memory_total_amount": 1000,
        "memory_usage": 900,
        "instance_statuses": [{"status": "Running", "count": 2}, {"status": "Error", "count": 1}],
        "member_statuses": [{"status": "Online", "count": 2}, {"status": "Offline", "count": 1}],
        "storage_pool_usages": [{"name": "p", "member": "m", "total": 10, "usage": 9}],
    }
    assert client.heartbeat(payload).ok
    client.close()
    return name


def severe_violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in SEVERE
    ]


PAGES = {
    "overview": "/ui/",
    "clusters": "/ui/clusters",
    "cluster": "/ui/clusters/{name}",
    "cluster-remove-dialog": "/ui/clusters/{name}?confirm=remove",
    "tokens": "/ui/tokens",
    "settings": "/ui/settings",
    "logout": "/oidc/logout",
    "error": "/ui/no-such-page",  # the one template of every error page (404, 500, 503 …)
}


@pytest.mark.parametrize("page_name", list(PAGES))
def test_page_has_no_serious_accessibility_violation(
    page: Page, stack: Stack, cluster_name: str, page_name: str
):
    sign_in(page, stack)
    page.goto(stack.management_url + PAGES[page_name].format(name=cluster_name))

    violations = severe_violations(page)

    screenshot(page, f"a11y-{page_name}")
    assert violations == []


def test_enroll_dialog_has_no_serious_accessibility_violation(page: Page, stack: Stack):
    sign_in(page, stack)
    page.goto(f"{stack.management_url}/ui/tokens")
    page.get_by_label("Cluster name").fill("a11y-dialog")
    page.get_by_role("button", name="Create join token").click()

    violations = severe_violations(page)

    screenshot(page, "a11y-enroll-dialog")
    assert violations == []


def test_login_and_not_authorized_pages_have_no_serious_violation(page: Page, stack: Stack):
    page.goto(f"{stack.management_url}/ui/login")
    login_violations = severe_violations(page)
    screenshot(page, "a11y-login")
    sign_in(page, stack, "viewer")

    violations = severe_violations(page)

    screenshot(page, "a11y-not-authorized")
    assert login_violations == []
    assert violations == []


def test_axe_is_installed():
    assert Path(AXE).is_file(), "node_modules/axe-core is missing: run scripts/bootstrap"
