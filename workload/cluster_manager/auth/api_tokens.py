"""The API-token authenticator: `Authorization: Bearer mcm_…` is an admin credential."""

from __future__ import annotations

from flask import Request

from ..plumbing import database
from ..service import API_TOKEN_PREFIX, identify_api_token
from .identity import ADMIN_GROUP, Identity

# Reserved by RFC 2606, so it can never reach a mailbox; the contract requires an email.
API_TOKEN_EMAIL = "api-token@cluster-manager.invalid"  # noqa: S105 - not a secret


def api_token_authenticator(req: Request) -> Identity | None:
    """An API token is an admin credential: the operator who minted it holds the database."""
    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(API_TOKEN_PREFIX):
        return None
    name = database().run(lambda conn: identify_api_token(conn, token), idempotent=True)
    if name is None:
        return None
    return Identity(name=name, email=API_TOKEN_EMAIL, groups=(ADMIN_GROUP,), method="api-token")
