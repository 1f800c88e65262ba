"""Signing in and out in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.ui.conftest import screenshot, sign_in
from tools.stack import Stack

SESSION_COOKIE = "__Host-mcm-session"


def test_admin_login_lands_on_the_overview(page: Page, stack: Stack):
    sign_in(page, stack, "admin")

    expect(page.get_by_role("heading", name="Fleet overview")).to_be_visible()
    expect(page.get_by_text("Ada Admin")).to_be_visible()
    screenshot(page, "login-admin-overview")
    assert page.csp_violations == []  # type: ignore[attr-defined]


def test_login_returns_to_the_page_asked_for(page: Page, stack: Stack):
    sign_in(page, stack, "admin", start="/ui/settings")

    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    screenshot(page, "login-returns-to-settings")


def test_user_outside_the_admin_group_is_not_authorized(page: Page, stack: Stack):
    sign_in(page, stack, "viewer")

    expect(page.get_by_role("heading", name="Not authorized")).to_be_visible()
    expect(page.get_by_text("admins", exact=True)).to_be_visible()
    screenshot(page, "login-viewer-not-authorized")


def test_logout_ends_the_session_and_the_old_cookie_is_rejected(
    page: Page, context: BrowserContext, stack: Stack
):
    sign_in(page, stack, "admin")
    old = [c for c in context.cookies() if c.get("name") == SESSION_COOKIE]

    page.get_by_role("button", name="Log out").click()

    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    context.add_cookies(old)  # type: ignore[arg-type]
    page.goto(f"{stack.management_url}/ui/clusters")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    screenshot(page, "logout-old-cookie-rejected")


def test_opening_the_logout_address_does_not_sign_out(page: Page, stack: Stack):
    sign_in(page, stack, "admin")

    page.goto(f"{stack.management_url}/oidc/logout")

    expect(page.get_by_role("heading", name="Log out")).to_be_visible()
    screenshot(page, "logout-address-asks")
    page.goto(f"{stack.management_url}/ui/")
    expect(page.get_by_role("heading", name="Fleet overview")).to_be_visible()


def test_the_logout_address_signs_out_with_its_button(page: Page, stack: Stack):
    sign_in(page, stack, "admin")
    page.goto(f"{stack.management_url}/oidc/logout")

    page.get_by_role("main").get_by_role("button", name="Log out").click()

    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    assert page.csp_violations == []  # type: ignore[attr-defined]
