"""Logging in through the real provider's development form with `requests`.

The provider's pages are plain HTML forms: the login form (`login`, `password`) and the
consent form, each posted back to the action they name. The browser tests fill the same
forms with Playwright.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import requests

from tools.oidc import OIDCProvider
from tools.stack import Stack

SESSION_COOKIE = "__Host-mcm-session"
_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
_INPUT = re.compile(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.S)


def browser(stack: Stack) -> requests.Session:
    """A session that trusts the stack's certificate and sends what a browser sends."""
    session = requests.Session()
    session.trust_env = False
    session.verify = stack.management_ca
    session.headers["Sec-Fetch-Site"] = "same-origin"
    return session


def _submit(
    session: requests.Session, page: requests.Response, **fields: str
) -> requests.Response:
    match = _FORM.search(page.text)
    assert match, f"no form on {page.url}: {page.text[:500]}"
    action, body = urljoin(page.url, unescape(match[1])), match[2]
    data = {name: unescape(value) for name, value in _INPUT.findall(body)}
    data.update(fields)
    return session.post(action, data=data, allow_redirects=False, timeout=10)


def follow_to_provider(
    session: requests.Session, stack: Stack, query: str = ""
) -> requests.Response:
    """GET /oidc/login (`?query` as given, unencoded) and follow up to the provider's form."""
    url = f"{stack.management_url}/oidc/login" + (f"?{query}" if query else "")
    response = session.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:500]
    return session.get(response.headers["Location"], timeout=10)


def authorize(session: requests.Session, stack: Stack, user: str, query: str = "") -> str:
    """Log in at the provider as `user` and consent; return the callback URL it sends back."""
    page = follow_to_provider(session, stack, query)
    response = _submit(session, page, login=user, password="any")
    while response.is_redirect:
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(stack.management_url):
            return location
        page = session.get(location, allow_redirects=False, timeout=10)
        if page.is_redirect:
            response = page
            continue
        response = _submit(session, page)  # the consent form
    raise AssertionError(
        f"the provider did not redirect back: {response.status_code} {response.text[:300]}"
    )


def log_in(
    session: requests.Session, stack: Stack, user: str, query: str = ""
) -> requests.Response:
    """A whole login as `user`; returns the callback's response (the session cookie is set)."""
    callback = authorize(session, stack, user, query)
    return session.get(callback, allow_redirects=False, timeout=10)


def session_cookie(session: requests.Session) -> str:
    """The session cookie's value."""
    return session.cookies.get(SESSION_COOKIE) or ""


@contextmanager
def oidc_stack(root: Path, database_url: str, **env: str) -> Iterator[tuple[Stack, OIDCProvider]]:
    """A stack configured for a real provider that knows its redirect URI; both running.

    Both are stopped on leaving the block, also when starting them failed.
    """
    stack = Stack(root / "stack", database_url)
    provider = OIDCProvider(root / "provider", [f"{stack.management_url}/oidc/callback"])
    try:
        provider.start()
        stack.env.update({**provider.env, "MCM_PUBLIC_URL": stack.management_url, **env})
        stack.start()
        yield stack, provider
    finally:
        stack.stop()
        provider.stop()
