"""The two app factories: `create_connector_app` and `create_management_app`.

The plumbing both apps share (settings, the pool, error answers) is in `plumbing`.

Each app registers only its own routes, so a route can be reached only through the front's
listener that guards it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask

from .auth.api_tokens import api_token_authenticator
from .auth.identity import install_authenticators
from .auth.sessions import session_authenticator
from .connector.identity import add_enrolled_header
from .connector.routes import bp as connector_blueprint
from .db.pool import Database
from .forwarding import client as forwarding
from .forwarding.wire import SOCKET_NAME
from .management.routes import bp as management_blueprint
from .plumbing import create_app
from .settings import Settings
from .ui.routes import install as install_ui

MANAGEMENT_MAX_BODY = 1024 * 1024


def create_connector_app(settings: Settings | None = None, db: Database | None = None) -> Flask:
    """The MicroCloud-facing app (behind the front's connector listener)."""
    settings = settings or Settings.from_env()
    app = create_app(
        "cluster_manager.connector",
        settings,
        [connector_blueprint],
        max_body_bytes=settings.connector_max_body_bytes,
        db=db,
    )
    # Werkzeug's own redirects (`//` merged, a missing slash) name this host, not the Host header.
    app.config["SERVER_NAME"] = settings.connector_address
    app.after_request(add_enrolled_header)
    forwarding.install(app, settings.run_dir / SOCKET_NAME, bool(settings.remote_write_targets))
    return app


def create_management_app(settings: Settings | None = None, db: Database | None = None) -> Flask:
    """The operator-facing JSON API and web UI (behind the front's management listener)."""
    settings = settings or Settings.from_env()
    app = create_app(
        "cluster_manager.management",
        settings,
        [management_blueprint],
        max_body_bytes=MANAGEMENT_MAX_BODY,
        db=db,
        serve_metrics=True,
    )
    public = urlsplit(settings.public_url).netloc
    if public:
        # Werkzeug's own redirects name the public host, not the Host header; without a public
        # URL (a local run) they keep the request's host and port.
        app.config["SERVER_NAME"] = public
    install_authenticators(app, [api_token_authenticator, session_authenticator])
    install_ui(app)
    return app
