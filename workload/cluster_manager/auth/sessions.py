"""Browser sessions: the authenticator the API and the UI share, and the logins behind it.

A login is remembered between the redirect to the identity provider and its callback
(`begin_login`, `complete_login`), then becomes a session row keyed by the cookie's hash
(design D7). `session_authenticator` finds the session of the request's cookie, refreshes
the provider's tokens when they expired, and applies the same-origin check. The cookie's
crypto is in `cookies`, the CSRF check in `same_origin`, the provider in `oidc_client`.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from flask import Request

from ..db import sessions
from ..db.pool import DbConnection
from ..db.sessions import PendingLogin
from ..plumbing import database, settings
from .cookies import SESSION_COOKIE, seal, secret_hash, unseal
from .identity import Identity
from .oidc_client import LoginError, oidc_client
from .same_origin import require_same_origin

logger = logging.getLogger(__name__)

LOGIN_LIFETIME = 600
"""Seconds a user has to finish logging in at the identity provider."""


@dataclasses.dataclass(frozen=True)
class StartedLogin:
    """A login on its way to the identity provider."""

    url: str
    """Where to send the browser: the provider's authorization page."""
    browser: str
    """The login cookie's value, which the callback must bring back."""


@dataclasses.dataclass(frozen=True)
class Session:
    """A session just started: the cookie that opens it and where the browser goes next."""

    cookie: str
    return_to: str
    claims: Mapping[str, Any]


def begin_login(redirect_uri: Callable[[], str], return_to: str) -> StartedLogin:
    """Remember state, nonce and PKCE verifier for `LOGIN_LIFETIME` seconds.

    `redirect_uri` gives the callback's URL (it may raise `LoginError`).
    """
    authorization = oidc_client().authorize(redirect_uri())
    browser = secrets.token_urlsafe(32)
    pending = PendingLogin(
        browser_hash=secret_hash(browser),
        nonce=authorization.nonce,
        code_verifier=authorization.code_verifier,
        return_to=return_to,
    )
    state_hash = secret_hash(authorization.state)
    database().run(lambda conn: sessions.start_login(conn, state_hash, pending, LOGIN_LIFETIME))
    return StartedLogin(authorization.url, browser)


def complete_login(
    state: str, code: str, browser: str, redirect_uri: Callable[[], str]
) -> Session:
    """Finish the login `state` started by the browser with the login cookie `browser`.

    Raises:
        LoginError: the login expired, was used, or was started in another browser, or the
            provider refused the code.
    """
    pending = database().run(lambda conn: sessions.finish_login(conn, secret_hash(state)))
    if pending is None:
        raise LoginError("this login has expired or was already used; sign in again")
    if not hmac.compare_digest(secret_hash(browser), pending.browser_hash):
        raise LoginError("this login was started in another browser; sign in again")
    tokens = oidc_client().exchange(code, pending.code_verifier, pending.nonce, redirect_uri())
    cookie = secrets.token_urlsafe(32)
    sealed = seal(tokens.refresh_token, cookie)
    sealed_access = seal(tokens.access_token, cookie)
    lifetime = settings().session_lifetime
    database().run(
        lambda conn: sessions.create_session(
            conn,
            secret_hash(cookie),
            tokens.claims,
            sealed,
            tokens.expires_in,
            lifetime,
            sealed_access,
        )
    )
    return Session(cookie, pending.return_to, tokens.claims)


def end_session(cookie: str) -> None:
    """Delete the session of `cookie`: the cookie stops working at once."""
    database().run(lambda conn: sessions.delete_session(conn, secret_hash(cookie)))


def session_authenticator(req: Request) -> Identity | None:
    """The browser session's identity, refreshing the provider's tokens when they expired."""
    config = settings()
    cookie = req.cookies.get(SESSION_COOKIE)
    if not cookie or not config.oidc_enabled:
        return None
    hashed = secret_hash(cookie)
    row = database().run(lambda conn: sessions.find_session(conn, hashed), idempotent=True)
    if row is None:
        return None
    if row["tokens_expired"]:
        refreshed = _refresh(row, cookie)
        if refreshed is None:
            return None
        row = {**row, **refreshed}
    require_same_origin(req)
    return Identity(
        name=row["name"] or row["email"] or row["subject"],
        email=row["email"],
        groups=tuple(row["groups"]),
        method="oidc-session",
        admin_group=config.oidc_admin_group,
        session_id=row["id"],
        access_token=unseal(row["sealed_access"], cookie),
    )


def _refresh(row: Mapping[str, Any], cookie: str) -> dict[str, Any] | None:
    """Refresh under a row lock, so concurrent requests refresh once; None = logged out."""
    client = oidc_client()

    def work(conn: DbConnection) -> dict[str, Any] | None:
        with conn.transaction():
            locked = sessions.lock_session(conn, row["id"])
            if locked is None:
                return None
            if not locked["tokens_expired"]:  # another request refreshed meanwhile
                current = sessions.find_session(conn, secret_hash(cookie))
                return dict(current) if current else None
            refresh_token = unseal(locked["sealed_refresh"], cookie)
            if refresh_token is None:
                sessions.delete_session_by_id(conn, row["id"])
                return None
            try:
                tokens = client.refresh(refresh_token)
            except LoginError as error:
                logger.info("session of %s not refreshed: %s", row["subject"], error)
                if error.status < 500:
                    sessions.delete_session_by_id(conn, row["id"])
                return None
            if tokens.claims["subject"] != row["subject"]:
                sessions.delete_session_by_id(conn, row["id"])
                return None
            sealed = seal(tokens.refresh_token, cookie)
            sealed_access = seal(tokens.access_token, cookie)
            sessions.store_refreshed(
                conn, row["id"], tokens.claims, sealed, tokens.expires_in, sealed_access
            )
            return {**tokens.claims, "sealed_access": sealed_access}

    return database().run(work)
