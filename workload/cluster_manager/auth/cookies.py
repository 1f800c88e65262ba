"""The browser's cookies and what is sealed with them (design D7).

The session cookie holds 32 random bytes; the database holds their SHA-256. The refresh
token is sealed with a key derived from the cookie, so only a request carrying the cookie
can refresh the identity provider's tokens.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from werkzeug.wrappers import Response

SESSION_COOKIE = "__Host-mcm-session"
LOGIN_COOKIE = "__Host-mcm-login"


def secret_hash(value: str) -> bytes:
    """What the database stores for a cookie value or a state."""
    return hashlib.sha256(value.encode()).digest()


def _key(cookie: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mcm refresh token").derive(
        cookie.encode()
    )


def seal(token: str | None, cookie: str) -> bytes | None:
    """Encrypt a provider token with the cookie's key (AES-256-GCM, random nonce first)."""
    if not token:
        return None
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(cookie)).encrypt(nonce, token.encode(), None)


def unseal(sealed: bytes | None, cookie: str) -> str | None:
    """The sealed token, or None when there is none or the cookie does not open it."""
    if not sealed:
        return None
    sealed = bytes(sealed)
    try:
        return AESGCM(_key(cookie)).decrypt(sealed[:12], sealed[12:], None).decode()
    except (InvalidTag, ValueError):
        return None


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
