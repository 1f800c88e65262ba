"""The CSRF check: a state-changing browser request must come from our own origin.

The session cookie is SameSite=Strict; on top of it, `Sec-Fetch-Site` (or, from older
browsers, `Origin`) is checked for every request the cookie authenticates.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Request

from ..envelope import Forbidden
from ..plumbing import settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
