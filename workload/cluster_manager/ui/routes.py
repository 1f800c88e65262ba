"""The pages: overview, clusters, cluster detail, join tokens and settings.

Every page reads and writes through `service`, as the JSON API does, so a cluster looks
the same in both (the pages never read `db/` themselves); every form posts back here and is
answered with a redirect (or, for a new join token, with the one page that will ever show it).

`install` adds the pages, the OIDC login routes, the static files and the security headers
to the management app. The stylesheet is compiled at build time (scripts/build-ui, or the
image build); without it the app refuses to start instead of serving unstyled pages.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from .. import service
from ..auth.identity import Unauthorized, current_identity
from ..auth.same_origin import require_same_origin
from ..envelope import APIError
from ..grafana import cluster_dashboard_url
from ..plumbing import database, describe_validation_error, install_error_pages, settings
from ..protocol.management import JoinTokenCreate, RemoteClusterPatch
from ..protocol.rules import MAX_NAME_LENGTH, NAME_PATTERN
from ..service import configuration
from . import charts
from .errors import BROWSER_PATHS, error_page
from .headers import SECURITY_HEADERS
from .login import bp as login_blueprint
from .login import safe_return_path
from .warnings import cluster_warnings

logger = logging.getLogger(__name__)
bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates")
root = Blueprint("ui_root", __name__)

PAGE_SIZES = (25, 50, 100)
MAX_PAGE = 1_000_000
"""Past any fleet's last page: a bigger number shows the same empty page."""
_PUBLIC = {"ui.login_page"}

STATIC_DIR = Path(__file__).parent / "static"
STYLESHEET = STATIC_DIR / "css" / "ui.css"


class StylesheetMissing(RuntimeError):
    """The compiled CSS is not in the package: the UI was not built."""


def install(app: Flask) -> None:
    """Add the UI, the login routes, the error pages and the security headers to the app."""
    if not STYLESHEET.is_file():
        raise StylesheetMissing(
            f"the UI stylesheet {STYLESHEET} is missing: run scripts/build-ui "
            "(needs `npm ci`) before starting the management app"
        )
    static = Blueprint("ui_static", __name__, static_folder="static", static_url_path="/ui/static")
    for blueprint in (root, bp, login_blueprint, static):
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


@root.get("/")
def _home() -> ResponseReturnValue:
    return redirect(url_for("ui.overview"), 308)


@root.get("/ui")
def _ui() -> ResponseReturnValue:
    return redirect(url_for("ui.overview"), 308)


@bp.before_request
def _require_admin() -> ResponseReturnValue | None:
    if request.endpoint in _PUBLIC:
        return None
    if not settings().oidc_enabled:
        return render_template("ui/login_not_configured.html"), 503
    try:
        identity = current_identity()
    except Unauthorized:
        wanted = request.full_path if request.query_string else request.path
        return redirect(url_for("ui.login_page", next=wanted))
    g.user = identity
    if not identity.is_admin:
        return render_template("ui/not_authorized.html", identity=identity), 403
    require_same_origin(request)
    return None


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "human_bytes": charts.human_bytes,
        "human_age": charts.human_age,
        "percent": charts.percent,
        "distribution": charts.distribution,
        "tone": charts.tone,
        "age_seconds": _age_seconds,
        "grafana_link": _grafana_link,
        "now": datetime.now(UTC),
    }


def _grafana_link(name: str) -> str:
    """The charm's fleet dashboard filtered to this cluster; empty without `grafana-url`."""
    return cluster_dashboard_url(settings().grafana_url, name) or ""


def _age_seconds(moment: datetime | None) -> float | None:
    return None if moment is None else (datetime.now(UTC) - moment).total_seconds()


# -- login pages -----------------------------------------------------------------------------


@bp.get("/login")
def login_page() -> ResponseReturnValue:
    """The sign-in page (also where logging out lands)."""
    if not settings().oidc_enabled:
        return render_template("ui/login_not_configured.html"), 503
    wanted = request.args.get("next")
    return render_template(
        "ui/login.html",
        next=wanted if wanted and safe_return_path(wanted) == wanted else "",
        signed_out="signed_out" in request.args,
    )


# -- overview --------------------------------------------------------------------------------


@bp.get("/")
def overview() -> ResponseReturnValue:
    """Fleet totals, status distributions and the clusters that need attention."""
    config = settings()
    shown = database().run(lambda conn: service.fleet_overview(conn, config), idempotent=True)
    needing = [{"row": row, "warnings": cluster_warnings(row)} for row in shown.needing_attention]
    return render_template("ui/overview.html", summary=shown.summary, needing=needing)


# -- clusters --------------------------------------------------------------------------------


@bp.get("/clusters")
def clusters() -> ResponseReturnValue:
    """Search, filter, sort and page through the fleet."""
    search = request.args.get("q", "").strip()[:100]
    statuses = tuple(s for s in request.args.getlist("status") if s in service.STATUS_FILTERS)
    sort = request.args.get("sort", "name")
    sort = sort if sort in service.SORT_COLUMNS else "name"
    descending = request.args.get("order") == "desc"
    per_page = _int_arg("per_page", 50)
    per_page = per_page if per_page in PAGE_SIZES else 50
    page_number = min(max(1, _int_arg("page", 1)), MAX_PAGE)
    config = settings()
    page = database().run(
        lambda conn: service.cluster_page(
            conn,
            config,
            search=search,
            statuses=statuses,
            sort=sort,
            descending=descending,
            limit=per_page,
            offset=(page_number - 1) * per_page,
        ),
        idempotent=True,
    )
    pages = max(1, math.ceil(page.total / per_page))
    query = {
        "q": search,
        "status": list(statuses),
        "sort": sort,
        "order": "desc" if descending else "asc",
        "per_page": per_page,
    }

    def link(**changes: Any) -> str:
        merged = {**query, **changes}
        merged = {k: v for k, v in merged.items() if v not in ("", [], None)}
        return url_for("ui.clusters") + "?" + urlencode(merged, doseq=True)

    return render_template(
        "ui/clusters.html",
        page=page,
        rows=page.rows,
        search=search,
        statuses=statuses,
        sort=sort,
        descending=descending,
        per_page=per_page,
        page_number=page_number,
        pages=pages,
        link=link,
    )


def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _cluster_context(name: str) -> dict[str, Any]:
    config = settings()
    found = database().run(
        lambda conn: service.cluster_with_history(conn, config, name), idempotent=True
    )
    row, history = found.row, found.history
    # Which pools are over the threshold is the database's call, like every warning.
    over = [entry for kind, entry in row.warnings if kind == "storage"]
    pools = []
    for pool in row.storage_pool_usages or []:
        used = charts.percent(float(pool.get("usage", 0)), float(pool.get("total", 0)))
        pools.append({**pool, "percent": used, "over": pool in over})
    storage_total = sum(float(p.get("total", 0)) for p in pools)
    storage_usage = sum(float(p.get("usage", 0)) for p in pools)
    storage_percent = charts.percent(storage_usage, storage_total)
    memory = [charts.percent(h.memory_usage, h.memory_total) for h in history if h.memory_total]
    storage = [
        charts.percent(h.storage_usage, h.storage_total) for h in history if h.storage_total
    ]
    trends = {
        "CPU load (1 min)": [float(h.cpu_load_1) for h in history],
        "Memory used (%)": memory,
        "Storage used (%)": storage,
        "Instances": [float(h.instance_count) for h in history],
    }
    return {
        "cluster": row,
        "age": _age_seconds(row.last_heartbeat_at),
        "warnings": cluster_warnings(row),
        "memory_over": "memory" in row.warning_kinds,
        "pools": pools,
        "storage_total": storage_total,
        "storage_usage": storage_usage,
        "memory_percent": charts.percent(row.memory_usage, row.memory_total_amount),
        "storage_percent": storage_percent,
        # The bar of all pools together: not a warning (those are per pool, above).
        "storage_over": storage_percent > row.disk_threshold,
        "trends": [
            {"title": title, "values": values, "points": charts.sparkline(values)}
            for title, values in trends.items()
        ],
        "history_points": len(history),
        "instances": _instances(row),
    }


INSTANCES_TIMEOUT = 10
"""Seconds the cluster page waits for a tunnel's instance list before it shows the page
without it."""


def _instances(row: service.ClusterRow) -> service.InstanceList | None:
    """The live instance list, read through the tunnel as the signed-in user; None without one."""
    if row.tunnel_connected_at is None:
        return None
    identity = current_identity()
    return service.list_instances(
        database(),
        settings(),
        row.name,
        access_token=identity.access_token,
        session=identity.session_id,
        timeout=INSTANCES_TIMEOUT,
    )


@bp.get("/clusters/<name>")
def cluster(name: str) -> ResponseReturnValue:
    """Everything about one cluster; `?confirm=remove` asks before removing it."""
    context = _cluster_context(name)
    return render_template(
        "ui/cluster.html",
        confirm_remove=request.args.get("confirm") == "remove",
        edit=request.args.get("edit", ""),
        updated=request.args.get("updated", ""),
        **context,
    )


@bp.post("/clusters/<name>/settings")
def update_cluster(name: str) -> ResponseReturnValue:
    """Change the description and the thresholds (only the fields the form sent)."""
    fields: dict[str, Any] = {}
    if "description" in request.form:
        fields["description"] = request.form["description"].strip()
    try:
        for field in ("disk_threshold", "memory_threshold"):
            if request.form.get(field, "").strip():
                fields[field] = int(request.form[field])
        changes = RemoteClusterPatch.model_validate(fields).changes()
    except (ValueError, ValidationError) as error:
        message = "Thresholds must be whole percentages from 0 to 100"
        if isinstance(error, ValidationError) and _names_field(error, "description"):
            message = describe_validation_error(error)
        context = _cluster_context(name)
        return render_template("ui/cluster.html", form_error=message, **context), 400
    database().run(lambda conn: service.update_cluster(conn, name, changes), idempotent=True)
    logger.info("cluster %s updated by %s: %s", name, g.user.name, sorted(changes))
    return redirect(url_for("ui.cluster", name=name, updated="1"), 303)


def _names_field(error: ValidationError, field: str) -> bool:
    return any(item["loc"][:1] == (field,) for item in error.errors(include_input=False))


@bp.post("/clusters/<name>/remove")
def remove_cluster(name: str) -> ResponseReturnValue:
    """Forget a cluster (after the confirmation dialog)."""
    database().run(lambda conn: service.remove_cluster(conn, name))
    logger.info("cluster %s removed by %s", name, g.user.name)
    return redirect(url_for("ui.clusters", removed=name), 303)


# -- join tokens -----------------------------------------------------------------------------

HTML_NAME_PATTERN = NAME_PATTERN.replace("-]", r"\-]")
"""`rules.NAME_PATTERN` for an HTML `pattern` attribute, which browsers compile with the `v`
flag: there a `-` inside brackets needs its backslash (the rule itself is unchanged)."""


def _tokens_page(status: int = 200, **context: Any) -> tuple[str, int]:
    rows = database().run(service.list_join_tokens, idempotent=True)
    return render_template(
        "ui/tokens.html",
        tokens=rows,
        default_expiry=settings().join_token_expiry // 3600,
        confirm_revoke=request.args.get("revoke", ""),
        revoked=request.args.get("revoked", ""),
        name_pattern=HTML_NAME_PATTERN,
        name_max_length=MAX_NAME_LENGTH,
        **context,
    ), status


@bp.get("/tokens")
def tokens() -> ResponseReturnValue:
    """Pending join tokens and the enroll form."""
    return _tokens_page()


@bp.post("/tokens")
def enroll() -> ResponseReturnValue:
    """Mint a join token; the response is the only place its text ever appears."""
    name = request.form.get("cluster_name", "").strip()
    description = request.form.get("description", "").strip()
    hours = request.form.get("expiry_hours", "").strip()
    form = {"cluster_name": name, "description": description, "expiry_hours": hours}
    try:
        JoinTokenCreate.model_validate({"cluster_name": name, "description": description})
    except ValidationError as error:
        return _tokens_page(400, form=form, form_error=describe_validation_error(error))
    expires_at = None
    if hours:
        try:
            lifetime = float(hours)
            if not 0 < lifetime <= 24 * 365:
                raise ValueError
        except ValueError:
            return _tokens_page(400, form=form, form_error="Expiry must be 1 to 8760 hours")
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=lifetime)
    config = settings()
    try:
        minted = database().run(
            lambda conn: service.create_join_token(conn, config, name, description, expires_at)
        )
    except APIError as error:
        status = error.status if error.status < 500 else 500
        return _tokens_page(status, form=form, form_error=error.message)
    logger.info("join token for %s created by %s", name, g.user.name)
    return _tokens_page(201, minted=minted)


@bp.post("/tokens/<name>/revoke")
def revoke(name: str) -> ResponseReturnValue:
    """Revoke a pending join token (after the confirmation dialog)."""
    database().run(lambda conn: service.revoke_join_token(conn, name))
    logger.info("join token for %s revoked by %s", name, g.user.name)
    return redirect(url_for("ui.tokens", revoked=name), 303)


# -- settings --------------------------------------------------------------------------------


@bp.get("/settings")
def settings_page() -> ResponseReturnValue:
    """The configuration this deployment runs with (never a secret)."""
    return render_template("ui/settings.html", entries=configuration(settings()))
