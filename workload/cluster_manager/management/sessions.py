"""Browser sessions: the cookie, the authenticator the API and the UI share, and CSRF checks.

The cookie holds 32 random bytes; the database holds their SHA-256 (design D7). The refresh
token is sealed with a key derived from the cookie, so only a request carrying the cookie
can refresh the identity provider's tokens. Requests that change something and are
authenticated by the cookie must come from our own origin: the cookie is SameSite=Strict,
and `Sec-Fetch-Site` (or, from older browsers, `Origin`) is checked on top.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Request, current_app
from werkzeug.wrappers import Response

from ..db import sessions
from ..db.pool import DbConnection
from ..envelope import Forbidden
from ..webapp import database, settings
from .auth import Identity
from .oidc_client import LoginError, OIDCClient

logger = logging.getLogger(__name__)

SESSION_COOKIE = "__Host-mcm-session"
LOGIN_COOKIE = "__Host-mcm-login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CLIENT = "cluster_manager.oidc_client"


def secret_hash(value: str) -> bytes:
    """What the database stores for a cookie value or a state."""
    return hashlib.sha256(value.encode()).digest()


def oidc_client() -> OIDCClient:
    """This process's OIDC client (created on first use)."""
    client = current_app.extensions.get(_CLIENT)
    if client is None:
        client = current_app.extensions[_CLIENT] = OIDCClient(settings())
    return client


def _key(cookie: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mcm refresh token").derive(
        cookie.encode()
    )


def seal(refresh_token: str | None, cookie: str) -> bytes | None:
    """Encrypt a refresh token with the cookie's key (AES-256-GCM, random nonce first)."""
    if not refresh_token:
        return None
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(cookie)).encrypt(nonce, refresh_token.encode(), None)


def unseal(sealed: bytes | None, cookie: str) -> str | None:
    """The refresh token, or None when there is none or the cookie does not open it."""
    if not sealed:
        return None
    sealed = bytes(sealed)
    try:
        return AESGCM(_key(cookie)).decrypt(sealed[:12], sealed[12:], None).decode()
    except (InvalidTag, ValueError):
        return None


def own_origins(req: Request) -> set[str]:
    """The origins this deployment answers on: the public URL's and the request's host."""
    origins = {f"https://{req.host}"}
    public = urlsplit(settings().public_url)
    if public.scheme and public.netloc:
        origins.add(f"{public.scheme}://{public.netloc}")
    return origins


def require_same_origin(req: Request) -> None:
    """Refuse a state-changing browser request that another site could have made."""
    if req.method in SAFE_METHODS:
        return
    site = req.headers.get("Sec-Fetch-Site")
    origin = req.headers.get("Origin")
    if site is not None and site != "same-origin":
        raise Forbidden("cross-site request refused")
    if origin is not None and origin not in own_origins(req):
        raise Forbidden("cross-origin request refused")
    if site is None and origin is None:
        raise Forbidden("request refused: neither Sec-Fetch-Site nor Origin was sent")


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
            sessions.store_refreshed(conn, row["id"], tokens.claims, sealed, tokens.expires_in)
            return dict(tokens.claims)

    return database().run(work)


def set_cookie(response: Response, name: str, value: str, max_age: int, samesite: str) -> None:
    """A `__Host-` cookie: Secure, HttpOnly, Path=/, no Domain."""
    response.set_cookie(
        name, value, max_age=max_age, secure=True, httponly=True, samesite=samesite, path="/"
    )


def clear_cookie(response: Response, name: str, samesite: str = "Strict") -> None:
    """Tell the browser to forget a cookie."""
    response.set_cookie(
        name, "", max_age=0, expires=0, secure=True, httponly=True, samesite=samesite, path="/"
    )
