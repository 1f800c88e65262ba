"""Error pages for people: what a browser gets instead of an envelope under `/ui` and `/oidc`.

The page keeps the status, the headers of the error (`Retry-After`, `Allow`) and the UI's
security headers, says what happened in plain words and never shows a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from flask import Response, render_template, request

from .headers import SECURITY_HEADERS

BROWSER_PATHS = ("/ui", "/oidc")
"""The paths whose errors are pages (plumbing.install_error_pages)."""

_HEADINGS = {404: "Not found", 503: "Temporarily unavailable"}
_EXPLANATIONS = {
    404: "There is no page at this address.",
    413: "The request was larger than the cluster manager accepts.",
    500: (
        "The cluster manager met an unexpected error. It has been logged: try again, and if it"
        " keeps happening, ask your operator to look at the cluster manager's logs."
    ),
    # The apps answer 503 themselves only when PostgreSQL does not answer.
    503: "The cluster manager's database is unavailable. Retry shortly.",
}


def error_page(status: int, detail: str | None, headers: Mapping[str, str]) -> Response:
    """The error page for `status`: `detail` when given, else the status's own explanation."""
    if status >= 500:
        heading = _HEADINGS.get(status, "Something went wrong")
    else:
        heading = _HEADINGS.get(status, "Request refused")
    message = detail or _explanation(status)
    retry = ""
    if status == 503 and request.method == "GET":
        retry = request.full_path if request.query_string else request.path
    body = render_template(
        "ui/error.html", status=status, heading=heading, message=message, retry=retry
    )
    return Response(
        body,
        status=status,
        mimetype="text/html",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store", **headers},
    )


def _explanation(status: int) -> str:
    if status == 405:
        return f"This address does not accept {request.method} requests."
    try:
        return _EXPLANATIONS.get(status) or HTTPStatus(status).phrase + "."
    except ValueError:
        return f"Error {status}."
