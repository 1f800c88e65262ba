"""The two app factories.

Each app registers only its own routes, so a route can be reached only through the nginx
listener that guards it.
"""

from __future__ import annotations

from flask import Flask

from . import remote_write
from .connector.identity import request_fingerprint
from .connector.routes import bp as connector_blueprint
from .db.pool import Database
from .management.auth import api_token_authenticator, install_authenticators
from .management.routes import bp as management_blueprint
from .management.sessions import session_authenticator
from .settings import Settings
from .ui import install as install_ui
from .webapp import client_address, create_app

MANAGEMENT_MAX_BODY = 1024 * 1024


def _connector_limit_key() -> str:
    # Enrolled clusters are counted by certificate, so many behind one NAT do not collide.
    fingerprint = request_fingerprint()
    return f"cert:{fingerprint}" if fingerprint else f"addr:{client_address()}"


def create_connector_app(settings: Settings | None = None, db: Database | None = None) -> Flask:
    """The MicroCloud-facing app (behind nginx's connector listener)."""
    settings = settings or Settings.from_env()
    app = create_app(
        "cluster_manager.connector",
        settings,
        [connector_blueprint],
        rate_limit=settings.rate_limit_connector,
        rate_limit_key=_connector_limit_key,
        max_body_bytes=settings.connector_max_body_bytes,
        db=db,
    )
    remote_write.install(
        app,
        settings.remote_write_targets,
        settings.ca_bundle_file,
        settings.remote_write_queue_size,
    )
    return app


def create_management_app(settings: Settings | None = None, db: Database | None = None) -> Flask:
    """The operator-facing JSON API and web UI (behind nginx's management listener)."""
    settings = settings or Settings.from_env()
    app = create_app(
        "cluster_manager.management",
        settings,
        [management_blueprint],
        rate_limit=settings.rate_limit_management,
        rate_limit_key=client_address,
        max_body_bytes=MANAGEMENT_MAX_BODY,
        db=db,
        serve_metrics=True,
    )
    install_authenticators(app, [api_token_authenticator, session_authenticator])
    install_ui(app)
    return app
