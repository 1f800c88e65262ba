"""What both Flask apps share: settings, the pool and the answers to errors.

The apps themselves are built in `factories`.
Rate limits are not here: the TLS front counts them per unit (design D8, `front`).

Who answers an error, and in which form:

- The front (HAProxy, `front.config`) refuses some requests before any app sees them, on every
  path (`/ui` and `/oidc` included), with the LXD error envelope and the front's
  `SECURITY_HEADERS`: 405 for CONNECT, 414 (URL too long), 431 (headers too large), 413 (a
  `Content-Length` over the listener's limit), 429 (rate limit, with `Retry-After`), 404 for
  `/metrics` on the management listener and for anything else on the metrics and health
  listeners, and 502/503/504 when the app is down, answers badly or too late (`http-error`).
  A request HAProxy's parser cannot read, or whose headers never arrive, gets HAProxy's own
  short 400/408 page before 3.2 (docs/workload-contract.md).
- The apps answer every other error here: the envelope (`envelope.error`) for the API
  (`/1.0/*`), the connector app, `/metrics`, `/healthz` and everything else; an HTML page in
  the UI's layout for the browser's paths (`/ui`, `/oidc`) of the management app, which the UI
  installs with `install_error_pages`. An OPTIONS request keeps the envelope everywhere: it is
  never a page a person looks at (the API is not meant for CORS).
- Some routes render their own refusals as pages: the UI's form errors, its 403 (not an
  admin) and 503 (no identity provider configured), and the login's `LoginError`
  (`ui.login`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from flask import Blueprint, Flask, Response, current_app, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from .db.pool import Database, DatabaseUnavailable
from .envelope import APIError, BadRequest, error, sync
from .front.config import CLIENT_ADDRESS_HEADER
from .memory import release_free_memory
from .metrics import install_request_metrics, metrics_response
from .settings import Settings

logger = logging.getLogger(__name__)

_EXTENSION = "cluster_manager"
Body = TypeVar("Body", bound=BaseModel)

ErrorPage = Callable[[int, "str | None", Mapping[str, str]], Response]
"""Renders an error for a person: the status, the specific message when there is one (None
for a status's generic error), and the headers the answer must carry."""


def create_app(
    name: str,
    settings: Settings,
    blueprints: Iterable[Blueprint],
    *,
    max_body_bytes: int,
    db: Database | None = None,
    serve_metrics: bool = False,
) -> Flask:
    """A Flask app with the shared plumbing; each app brings its own blueprints.

    With `serve_metrics`, the app also answers `/metrics` for the whole unit (the front sends
    only its plain-HTTP metrics listener there).
    """
    app = Flask(name)
    # No automatic OPTIONS (an empty text/html 200): it answers the 405 envelope like any
    # method a route lacks. The API is not meant for CORS.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[_EXTENSION] = {
        "settings": settings,
        "db": db or Database(settings.database_url, max_size=settings.db_pool_size),
    }
    app.before_request(_refuse_nul_in_url)
    app.after_request(_release_memory_after_large_answers)
    app.register_blueprint(_health)
    if serve_metrics:
        app.register_blueprint(_metrics)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    install_request_metrics(app, name.rpartition(".")[2])
    app.register_error_handler(APIError, _api_error)
    app.register_error_handler(DatabaseUnavailable, _database_unavailable)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


LARGE_ANSWER_BYTES = 1024 * 1024
"""An answer this large (a listing of thousands of clusters) was built from many times its size
in Python objects: once it is sent, that memory goes back to the system."""


def _release_memory_after_large_answers(response: Response) -> Response:
    if (response.content_length or 0) >= LARGE_ANSWER_BYTES:
        response.call_on_close(release_free_memory)
    return response


def settings() -> Settings:
    """The settings of the app handling the current request."""
    return current_app.extensions[_EXTENSION]["settings"]


def database() -> Database:
    """The connection pool of the app handling the current request."""
    return current_app.extensions[_EXTENSION]["db"]


def client_address() -> str:
    """The caller's address as the front saw it (after the PROXY protocol, when enabled)."""
    return request.headers.get(CLIENT_ADDRESS_HEADER) or request.remote_addr or "unknown"


def install_error_pages(app: Flask, prefixes: Iterable[str], render: ErrorPage) -> None:
    """Answer errors under the paths `prefixes` with `render`'s pages instead of envelopes."""
    app.extensions[_EXTENSION]["error_pages"] = (tuple(prefixes), render)


def describe_validation_error(validation_error: ValidationError) -> str:
    """One readable line naming each bad field, without echoing the values back."""
    problems = []
    for item in validation_error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "body"
        problems.append(f"{where}: {item['msg']}")
    return "invalid request: " + "; ".join(problems)


def json_body(model: type[Body]) -> Body:
    """The request body validated as `model`, or a 400 naming what is wrong with it.

    An empty or all-whitespace body is refused as such; the body is read once, uncached.
    """
    data = request.get_data(cache=False)
    if not data or data.isspace():
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        return model.model_validate_json(data)
    except ValidationError as validation_error:
        raise BadRequest(describe_validation_error(validation_error)) from None


def _refuse_nul_in_url() -> None:
    """400 for a NUL character anywhere in the path or the query, before any route runs.

    PostgreSQL text cannot hold it, so a route passing a path segment or a query parameter
    to a query would fail with a 500; request bodies are checked by the protocol models.
    """
    if "\x00" in request.path:
        raise BadRequest("invalid request: the path must not contain NUL characters")
    for name, values in request.args.lists():
        if "\x00" in name:
            raise BadRequest("invalid request: query parameter names must not contain NUL")
        if any("\x00" in value for value in values):
            raise BadRequest(f"invalid request: {name}: must not contain NUL characters")


_health = Blueprint("health", __name__)


@_health.get("/healthz")
def _alive() -> Response:
    """Liveness for Pebble: the process serves requests; the database is not consulted."""
    return Response("ok\n", mimetype="text/plain")


@_health.get("/1.0/status")
def _status() -> Response:
    """Readiness: 200 only while PostgreSQL answers."""
    database().ping()
    return sync(None)


_metrics = Blueprint("metrics", __name__)


@_metrics.get("/metrics")
def _scrape() -> Response:
    """This unit's metrics in the Prometheus text format (both apps, every process)."""
    config = settings()
    return metrics_response(
        database(), config.run_dir, config.heartbeat_interval, config.offline_after
    )


def _api_error(api_error: APIError) -> Response:
    return _error(api_error.status, api_error.message, api_error.headers, api_error.message)


def _database_unavailable(_: DatabaseUnavailable) -> Response:
    return _error(503, "database unavailable, try again shortly", {"Retry-After": "5"})


def _http_error(http_error: HTTPException) -> Response:
    status = http_error.code or 500
    headers = {}
    if status == 405:
        allowed = http_error.get_headers()
        headers = {k: v for k, v in allowed if k == "Allow"}
    generic = {
        404: "not found",
        405: f"method {request.method} not allowed",
        413: "request body too large",
    }
    detail = None if status in generic else http_error.description or None
    return _error(status, generic.get(status, detail or ""), headers, detail)


def _unexpected_error(unexpected: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.path, exc_info=unexpected)
    return _error(500, "internal error")


def _error(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    detail: str | None = None,
) -> Response:
    """The envelope with `message`, or the app's error page when a person asked for a page.

    `detail` is what the page says when the error has more to say than its status.
    """
    pages = current_app.extensions[_EXTENSION].get("error_pages")
    if pages is not None and _wants_a_page(pages[0]):
        try:
            return pages[1](status, detail, headers or {})
        except Exception:  # a page that cannot render still gets an answer
            logger.exception("the error page for %s failed; answering the envelope", status)
    return error(status, message, headers)


def _wants_a_page(prefixes: tuple[str, ...]) -> bool:
    if request.method == "OPTIONS":
        return False
    path = request.path
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)
