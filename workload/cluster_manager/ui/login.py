"""`/oidc/login`, `/oidc/callback`, `/oidc/logout`: the browser's way in and out (design D7).

The flow's pages are the UI's (its templates, its error page for `LoginError`), and `ui.routes`
registers it, so it lives here; what it does to sessions, cookies and the provider is
`auth`'s (`auth.sessions`, `auth.cookies`, `auth.oidc_client`).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..auth.cookies import LOGIN_COOKIE, SESSION_COOKIE, clear_cookie, set_cookie
from ..auth.oidc_client import LoginError
from ..auth.same_origin import require_same_origin
from ..auth.sessions import LOGIN_LIFETIME, begin_login, complete_login, end_session
from ..plumbing import settings

logger = logging.getLogger(__name__)
bp = Blueprint("oidc", __name__)

HOME = "/ui/"
MAX_RETURN_PATH = 2048
"""Longest `next` kept; a longer one is no page of ours."""
_SAFE_URL = re.compile(r"(?:[A-Za-z0-9\-._~!$&()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")


def redirect_uri() -> str:
    """Where the identity provider sends the browser back to: under `public_url`.

    Without `public_url` (a local run) it is built from the request's Host, port included,
    but only for a loopback host: any other Host could be anyone's name.
    """
    public = settings().public_url.rstrip("/")
    if public:
        return f"{public}/oidc/callback"
    if not _is_loopback(request.host):
        raise LoginError(
            "this address is not a local one and MCM_PUBLIC_URL is not set: "
            "set it to the cluster manager's https:// URL to log in here"
        )
    return f"https://{request.host}/oidc/callback"


def _is_loopback(host: str) -> bool:
    try:
        name = urlsplit(f"//{host}").hostname or ""
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:  # a port that is not a number, or a name that is no address
        return False


def safe_return_path(value: str | None) -> str:
    """`value` if it is a path of the UI made of safe URL characters, else the home page.

    A bad `next` is not an error: the login goes on and ends on the overview. Only printable
    ASCII without quotes, spaces or backslashes passes (it ends up in a `Refresh` header and
    a `<meta>`), at most `MAX_RETURN_PATH` long, under `/ui`, with no `//` (another host) and
    no dot segments (which a browser would resolve to outside `/ui`).
    """
    if not value or len(value) > MAX_RETURN_PATH or not _SAFE_URL.fullmatch(value):
        return HOME
    path = value.partition("?")[0]
    if (path != "/ui" and not path.startswith("/ui/")) or "//" in value:
        return HOME
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        return HOME
    return value


@bp.errorhandler(LoginError)
def _login_failed(error: LoginError) -> ResponseReturnValue:
    return render_template("ui/login_error.html", message=str(error)), error.status


@bp.get("/oidc/login")
def login() -> ResponseReturnValue:
    """Start a login: remember state, nonce and PKCE verifier, then go to the provider."""
    if not settings().oidc_enabled:
        return render_template("ui/login_not_configured.html"), 503
    started = begin_login(redirect_uri, safe_return_path(request.args.get("next")))
    response = redirect(started.url, 302)
    # Lax, not Strict: the provider's redirect back to us is a cross-site navigation.
    set_cookie(response, LOGIN_COOKIE, started.browser, LOGIN_LIFETIME, "Lax")
    return response


@bp.get("/oidc/callback")
def callback() -> ResponseReturnValue:
    """Finish a login started by this browser, then start a session."""
    config = settings()
    if not config.oidc_enabled:
        return render_template("ui/login_not_configured.html"), 503
    if "error" in request.args:
        reason = request.args.get("error_description") or request.args["error"]
        raise LoginError(f"the identity provider refused the login: {reason[:200]}")
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if not state or not code:
        raise LoginError("the login response lacks its state or code; sign in again")
    browser = request.cookies.get(LOGIN_COOKIE, "")
    session = complete_login(state, code, browser, redirect_uri)
    logger.info("%s logged in", session.claims["email"] or session.claims["subject"])
    # Checked again: the row may come from before this check, and a header must never fail.
    return_to = safe_return_path(session.return_to)
    # A page of ours moves on, not a redirect: the Strict session cookie is then sent with
    # the next request, which a redirect chain started by the provider's site would not do.
    response = Response(
        render_template("ui/signed_in.html", return_to=return_to),
        headers={"Refresh": f"0; url={return_to}"},
    )
    set_cookie(response, SESSION_COOKIE, session.cookie, config.session_lifetime, "Strict")
    clear_cookie(response, LOGIN_COOKIE, "Lax")
    return response


@bp.get("/oidc/logout")
def logout_page() -> ResponseReturnValue:
    """405 with a form posting the log-out: a GET (a link, another site's image) never logs out.

    A person who typed or bookmarked the address gets the button; a script gets the status.
    """
    return render_template("ui/logout.html"), 405, {"Allow": "POST"}


@bp.post("/oidc/logout")
def logout() -> ResponseReturnValue:
    """End the session on the server (the cookie stops working at once) and forget it."""
    require_same_origin(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        end_session(cookie)
    response = redirect(url_for("ui.login_page", signed_out=1), 303)
    clear_cookie(response, SESSION_COOKIE)
    return response
