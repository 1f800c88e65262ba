"""Who is calling the management API: a list of pluggable authenticators.

Each authenticator looks at the request and returns an `Identity`, or None when the request
carries none of its credentials. The first identity found wins. The management app installs
two (`factories.create_management_app`): API tokens (`Authorization: Bearer …`,
`api_tokens.api_token_authenticator`), then the browser's OIDC session cookie
(`sessions.session_authenticator`). Routes and pages only ask `current_identity` or
`require_admin`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from flask import Flask, Request, current_app, g, request

from ..envelope import APIError, Forbidden

ADMIN_GROUP = "admins"
_EXTENSION = "cluster_manager.authenticators"


@dataclasses.dataclass(frozen=True)
class Identity:
    """An authenticated caller."""

    name: str
    email: str
    groups: tuple[str, ...]
    method: str
    admin_group: str = ADMIN_GROUP
    """The group that makes this caller an admin (configurable for OIDC logins)."""
    session_id: int | None = None
    """The browser session, for OIDC logins: what LXD gives it through a tunnel is kept per
    session."""
    access_token: str | None = dataclasses.field(default=None, repr=False)
    """The session's OIDC access token, which a cluster's LXD accepts as a bearer token."""

    @property
    def is_admin(self) -> bool:
        """Whether the caller may use the admin endpoints."""
        return self.admin_group in self.groups


Authenticator = Callable[[Request], "Identity | None"]


class Unauthorized(APIError):
    """No valid credentials: 401 with a challenge naming the scheme we accept."""

    def __init__(self) -> None:
        super().__init__(401, "", {"WWW-Authenticate": 'Bearer realm="cluster-manager"'})


def install_authenticators(app: Flask, authenticators: Sequence[Authenticator]) -> None:
    """Make `authenticators` the ones `current_identity` consults, in this order."""
    app.extensions[_EXTENSION] = tuple(authenticators)


def current_identity() -> Identity:
    """The caller's identity, or raise 401 when no authenticator recognises it."""
    identity = g.get("identity")
    if identity is None:
        for authenticate in current_app.extensions[_EXTENSION]:
            identity = authenticate(request)
            if identity is not None:
                break
        else:
            raise Unauthorized()
        g.identity = identity
    return identity


def require_admin() -> Identity:
    """The caller's identity if it may administer, else 401 (unknown) or 403 (not admin)."""
    identity = current_identity()
    if not identity.is_admin:
        raise Forbidden("permission denied")
    return identity
