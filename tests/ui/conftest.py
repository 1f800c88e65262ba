"""Browser tests: real headless Chromium through Playwright, against the real stack.

Debian's /usr/bin/chromium (never a downloaded browser) drives the pages served by the HAProxy
front, gunicorn and PostgreSQL, logging in at a real OIDC provider.

One browser for the whole session and one stack per module keep the suite fast; every test
gets a fresh browser context (its own cookies) and saves a screenshot of the page it checks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.oidc import oidc_stack
from tools.oidc import OIDCProvider
from tools.postgres import PostgresServer
from tools.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("MCM_CHROMIUM", "/usr/bin/chromium")
# Flags that keep Chromium off the network except for the pages we open.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap (apt package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Stack, OIDCProvider]]:
    name = re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])
    url = postgres.create_database(f"ui_{name}")
    # A fast heartbeat so that a new cluster shows up within one interval.
    with oidc_stack(
        Path(tmp_path_factory.mktemp("ui")), url, MCM_HEARTBEAT_INTERVAL="10"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def stack(deployment: tuple[Stack, OIDCProvider]) -> Stack:
    return deployment[0]


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    context = chromium.new_context(
        ignore_https_errors=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.csp_violations = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda message: (
            page.csp_violations.append(message.text)  # type: ignore[attr-defined]
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return page


def screenshot(page: Page, name: str) -> Path:
    """Save what the test checked; the file name says which test."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, stack: Stack, user: str = "admin", start: str = "/ui/") -> None:
    """Sign in through the provider's login and consent forms, as a person would."""
    page.goto(f"{stack.management_url}{start}")
    page.get_by_role("link", name="Sign in").click()
    page.locator("input[name=login]").fill(user)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    # The consent form (devInteractions) asks once per login.
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(re.escape(stack.management_url) + r"/ui/.*"))
    page.wait_for_load_state("load")
