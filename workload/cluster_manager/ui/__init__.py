"""The browser UI: server-rendered pages styled with Vanilla Framework (design D10).

`install` adds the pages, the OIDC login routes, the static files, the error pages of the
browser's paths and the security headers to the management app. The stylesheet is compiled
at build time (scripts/build-ui, or the image build); without it the app refuses to start
instead of serving unstyled pages.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, request

STATIC_DIR = Path(__file__).parent / "static"
STYLESHEET = STATIC_DIR / "css" / "ui.css"

# No inline script or style anywhere; forms post only to ourselves; no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Strict-Transport-Security": "max-age=63072000",
}


class StylesheetMissing(RuntimeError):
    """The compiled CSS is not in the package: the UI was not built."""


def install(app: Flask) -> None:
    """Add the UI, the login routes, the error pages and the security headers to the app."""
    if not STYLESHEET.is_file():
        raise StylesheetMissing(
            f"the UI stylesheet {STYLESHEET} is missing: run scripts/build-ui "
            "(needs `npm ci`) before starting the management app"
        )
    from ..management.login import bp as login_blueprint
    from ..webapp import install_error_pages
    from .errors import BROWSER_PATHS, error_page
    from .routes import bp as pages
    from .routes import root

    static = Blueprint("ui_static", __name__, static_folder="static", static_url_path="/ui/static")
    for blueprint in (root, pages, login_blueprint, static):
        app.register_blueprint(blueprint)
    install_error_pages(app, BROWSER_PATHS, error_page)
    app.after_request(_security_headers)


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    elif request.path.startswith("/ui/static/"):
        response.headers["Cache-Control"] = "public, max-age=3600"
    return response
