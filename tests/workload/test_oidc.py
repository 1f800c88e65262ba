"""OpenID Connect login and browser sessions against a real provider (panva oidc-provider).

Every failure mode of design D7 has its own test: bad state, a login finished in another
browser, a reused code, a wrong PKCE verifier (refused by the provider itself), refresh,
tampering, logout, a user outside the admin group and cross-site requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests

from tests.support.oidc import (
    SESSION_COOKIE,
    authorize,
    browser,
    follow_to_provider,
    log_in,
    oidc_stack,
    session_cookie,
)
from tools.oidc import OIDCProvider
from tools.postgres import PostgresServer
from tools.stack import Stack


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, OIDCProvider]]:
    url = postgres.create_database("oidc_stack")
    with oidc_stack(Path(tmp_path_factory.mktemp("oidc")), url) as running:
        yield running


@pytest.fixture(scope="module")
def stack(deployment: tuple[Stack, OIDCProvider]) -> Stack:
    return deployment[0]


@pytest.fixture
def admin(stack: Stack) -> requests.Session:
    """A browser logged in as a member of `admins`."""
    session = browser(stack)
    assert log_in(session, stack, "admin").status_code == 200
    return session


def sql(stack: Stack, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        cursor = conn.execute(query.encode(), params)
        return cursor.fetchall() if cursor.description else []


def api(session: requests.Session, stack: Stack, path: str = "/1.0/remote-cluster") -> int:
    return session.get(f"{stack.management_url}{path}", timeout=10).status_code


def test_login_sets_a_secure_httponly_strict_session_cookie(stack: Stack):
    session = browser(stack)

    response = log_in(session, stack, "admin")

    cookie = response.headers["Set-Cookie"]
    assert response.status_code == 200
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


def test_session_is_stored_only_as_a_hash(stack: Stack, admin: requests.Session):
    cookie = session_cookie(admin)

    rows = sql(
        stack, "SELECT count(*) FROM sessions WHERE token_hash = sha256(%s)", cookie.encode()
    )
    clear = sql(stack, "SELECT count(*) FROM sessions WHERE token_hash = %s", cookie.encode())

    assert rows == [(1,)]
    assert clear == [(0,)]


def test_management_api_accepts_the_session_cookie(stack: Stack, admin: requests.Session):
    whoami = admin.get(f"{stack.management_url}/1.0", timeout=10).json()["metadata"]

    assert api(admin, stack) == 200
    assert whoami["auth_method"] == "oidc-session"
    assert whoami["groups"] == ["admins"]
    assert whoami["email"] == "admin@example.test"


def test_user_outside_the_admin_group_gets_403(stack: Stack):
    session = browser(stack)
    log_in(session, stack, "viewer")

    page = session.get(f"{stack.management_url}/ui/", timeout=10)

    assert page.status_code == 403
    assert "Not authorized" in page.text
    assert api(session, stack) == 403
    assert api(session, stack, "/1.0") == 200


def test_callback_with_an_unknown_state_is_refused(stack: Stack):
    session = browser(stack)
    callback = authorize(session, stack, "admin")
    forged = callback.replace("state=", "state=forged")

    response = session.get(forged, timeout=10)

    assert response.status_code == 400
    assert "expired or was already used" in response.text
    assert not session_cookie(session)


def test_callback_in_another_browser_is_refused(stack: Stack):
    callback = authorize(browser(stack), stack, "admin")
    other = browser(stack)

    response = other.get(callback, timeout=10)

    assert response.status_code == 400
    assert "another browser" in response.text


def test_reused_authorization_code_is_refused(stack: Stack):
    session = browser(stack)
    first = authorize(session, stack, "admin")
    assert session.get(first, timeout=10).status_code == 200
    old_code = first.split("code=")[1].split("&")[0]
    second = authorize(session, stack, "admin")
    replay = second.replace(second.split("code=")[1].split("&")[0], old_code)

    response = session.get(replay, timeout=10)

    assert response.status_code == 400
    assert "invalid_grant" in response.text


def test_wrong_pkce_verifier_is_refused_by_the_provider(stack: Stack):
    session = browser(stack)
    callback = authorize(session, stack, "admin")
    sql(stack, "UPDATE oidc_logins SET code_verifier = %s", "x" * 64)

    response = session.get(callback, timeout=10)

    assert response.status_code == 400
    assert "invalid_grant" in response.text
    assert not session_cookie(session)


def test_provider_refusal_is_shown_on_the_callback(stack: Stack):
    session = browser(stack)
    follow_to_provider(session, stack)

    response = session.get(
        f"{stack.management_url}/oidc/callback?error=access_denied&state=x", timeout=10
    )

    assert response.status_code == 400
    assert "access_denied" in response.text


# `next` values as they appear in the query string of /oidc/login.
BAD_NEXT = {
    "crlf": "/ui/%0D%0ASet-Cookie:%20x=1",
    "line-separator": "/ui/%E2%80%A8",
    "control-character": "/ui/%09clusters",
    "over-long": "/ui/" + "a" * 2100,
    "absolute": "https%3A%2F%2Fevil.example%2Fui%2F",
    "scheme-relative": "%2F%2Fevil.example%2Fui%2F",
    "backslash": "/ui/%5C%5Cevil.example",
    "dot-segments": "/ui/..%2F..%2Foidc%2Flogout",
    "outside-the-ui": "/1.0/remote-cluster",
}


@pytest.mark.parametrize("raw_next", BAD_NEXT.values(), ids=BAD_NEXT.keys())
def test_login_with_a_bad_next_returns_home(stack: Stack, raw_next: str):
    response = log_in(browser(stack), stack, "admin", query=f"next={raw_next}")

    assert response.status_code == 200
    assert response.headers["Refresh"] == "0; url=/ui/"


def test_login_returns_to_a_safe_next_with_its_query(stack: Stack):
    query = "next=/ui/clusters%3Fstatus%3Doffline%26q%3Da%2520b"

    response = log_in(browser(stack), stack, "admin", query=query)

    assert response.headers["Refresh"] == "0; url=/ui/clusters?status=offline&q=a%20b"


def test_callback_with_a_bad_stored_next_returns_home(stack: Stack):
    session = browser(stack)
    callback = authorize(session, stack, "admin")
    sql(stack, "UPDATE oidc_logins SET return_to = %s", "/ui/\r\nX-Injected: 1")

    response = session.get(callback, allow_redirects=False, timeout=10)

    assert response.status_code == 200
    assert response.headers["Refresh"] == "0; url=/ui/"
    assert "X-Injected" not in response.headers


def test_login_page_leaves_a_bad_next_out_of_its_sign_in_link(stack: Stack):
    page = browser(stack).get(
        f"{stack.management_url}/ui/login?next=%2F%2Fevil.example%2Fui%2F", timeout=10
    )

    assert 'href="/oidc/login"' in page.text
    assert "evil.example" not in page.text


def test_slash_redirect_with_a_forged_host_goes_to_the_public_url(stack: Stack):
    response = browser(stack).get(
        f"{stack.management_url}/ui//clusters",
        headers={"Host": "evil.example"},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 308
    assert response.headers["Location"] == f"{stack.management_url}/ui/clusters"


def test_login_with_a_forged_host_sends_the_public_redirect_uri(stack: Stack):
    response = browser(stack).get(
        f"{stack.management_url}/oidc/login",
        headers={"Host": "evil.example"},
        allow_redirects=False,
        timeout=10,
    )

    sent = parse_qs(urlsplit(response.headers["Location"]).query)["redirect_uri"]
    assert sent == [f"{stack.management_url}/oidc/callback"]


def test_expired_tokens_are_refreshed_with_the_refresh_token(
    stack: Stack, admin: requests.Session
):
    cookie = session_cookie(admin)
    sql(
        stack,
        "UPDATE sessions SET tokens_expire_at = now() - interval '1 minute'"
        " WHERE token_hash = sha256(%s)",
        cookie.encode(),
    )

    status = api(admin, stack)

    fresh = sql(
        stack,
        "SELECT tokens_expire_at > now() FROM sessions WHERE token_hash = sha256(%s)",
        cookie.encode(),
    )
    assert status == 200
    assert fresh == [(True,)]


def test_unrefreshable_session_is_ended(stack: Stack, admin: requests.Session):
    cookie = session_cookie(admin)
    sql(
        stack,
        "UPDATE sessions SET tokens_expire_at = now() - interval '1 minute',"
        " sealed_refresh = '\\x00'::bytea WHERE token_hash = sha256(%s)",
        cookie.encode(),
    )

    status = api(admin, stack)

    remaining = sql(
        stack, "SELECT count(*) FROM sessions WHERE token_hash = sha256(%s)", cookie.encode()
    )
    assert status == 401
    assert remaining == [(0,)]


def test_session_past_its_lifetime_is_rejected(stack: Stack, admin: requests.Session):
    sql(
        stack,
        "UPDATE sessions SET expires_at = now() - interval '1 second'"
        " WHERE token_hash = sha256(%s)",
        session_cookie(admin).encode(),
    )

    assert api(admin, stack) == 401


def test_tampered_cookie_is_rejected(stack: Stack, admin: requests.Session):
    cookie = session_cookie(admin)
    tampered = ("A" if cookie[0] != "A" else "B") + cookie[1:]
    admin.cookies.set(SESSION_COOKIE, tampered, domain="127.0.0.1", path="/")

    assert api(admin, stack) == 401
    page = admin.get(f"{stack.management_url}/ui/clusters", allow_redirects=False, timeout=10)
    assert page.status_code == 302
    assert "/ui/login" in page.headers["Location"]


def test_logout_deletes_the_session_so_the_old_cookie_is_rejected(
    stack: Stack, admin: requests.Session
):
    cookie = session_cookie(admin)

    response = admin.post(f"{stack.management_url}/oidc/logout", allow_redirects=False, timeout=10)

    replay = browser(stack)
    replay.cookies.set(SESSION_COOKIE, cookie, domain="127.0.0.1", path="/")
    assert response.status_code == 303
    assert api(replay, stack) == 401


def test_cross_site_get_of_logout_keeps_the_session(stack: Stack, admin: requests.Session):
    # What an <img src> or a link on another site makes the browser send.
    admin.get(
        f"{stack.management_url}/oidc/logout",
        headers={"Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
        timeout=10,
    )

    assert api(admin, stack) == 200


def test_get_of_logout_answers_405_with_a_log_out_form(stack: Stack, admin: requests.Session):
    response = admin.get(f"{stack.management_url}/oidc/logout", allow_redirects=False, timeout=10)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.headers["Content-Type"].startswith("text/html")
    assert '<form method="post" action="/oidc/logout"' in response.text
    assert api(admin, stack) == 200


def test_cross_site_post_of_logout_is_refused(stack: Stack, admin: requests.Session):
    response = admin.post(
        f"{stack.management_url}/oidc/logout",
        headers={"Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 403
    assert api(admin, stack) == 200


def test_cross_site_request_with_the_session_cookie_is_refused(
    stack: Stack, admin: requests.Session
):
    response = admin.post(
        f"{stack.management_url}/1.0/remote-cluster-join-token",
        json={"cluster_name": "csrf-victim"},
        headers={"Sec-Fetch-Site": "cross-site"},
        timeout=10,
    )

    assert response.status_code == 403
    assert api(admin, stack, "/1.0/remote-cluster-join-token") == 200


def test_foreign_origin_without_fetch_metadata_is_refused(stack: Stack, admin: requests.Session):
    del admin.headers["Sec-Fetch-Site"]

    response = admin.post(
        f"{stack.management_url}/ui/tokens",
        data={"cluster_name": "csrf-form"},
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )

    assert response.status_code == 403


def test_pages_carry_a_strict_content_security_policy(stack: Stack, admin: requests.Session):
    response = admin.get(f"{stack.management_url}/ui/", timeout=10)

    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_never_show_the_client_secret(
    deployment: tuple[Stack, OIDCProvider], admin: requests.Session
):
    stack, provider = deployment

    pages = [
        admin.get(f"{stack.management_url}{p}", timeout=10).text for p in ("/ui/settings", "/ui/")
    ]

    assert all(provider.client_secret not in page for page in pages)
    assert provider.issuer in pages[0]
