"""The relying party's side of OpenID Connect, through Authlib (design D7).

Authlib does the protocol: the authorization URL with PKCE (S256), the code exchange, the
refresh grant, and the ID token's signature and claims (issuer, audience, expiry, nonce,
`at_hash`). This module only adds what a multi-process server needs around it: the
provider's metadata and keys cached per process, a JWKS refetch when an unknown key ID
shows up (key rotation), and the deployment's CA bundle for every call to the provider.
`oidc_client` is the one client of the app handling the request.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import ssl
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from flask import current_app
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from ..options import OIDC_SCOPE
from ..plumbing import settings as app_settings
from ..settings import Settings

logger = logging.getLogger(__name__)

METADATA_TTL = 300.0
HTTP_TIMEOUT = 10.0
ID_TOKEN_LEEWAY = 30
_CLIENT = "cluster_manager.oidc_client"


class LoginError(Exception):
    """The login cannot go on; the message is safe to show the user."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Authorization:
    """A new authorization request and the secrets the callback needs to finish it."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclasses.dataclass(frozen=True)
class Tokens:
    """What a code exchange or a refresh gave us, after validation."""

    claims: dict[str, Any]
    """`subject`, `name`, `email` and `groups` of the user."""
    refresh_token: str | None
    expires_in: int
    access_token: str | None = dataclasses.field(default=None, repr=False)
    """Sent to a cluster's LXD through its tunnel (`Authorization: Bearer`), which trusts the
    same issuer."""


class OIDCClient:
    """One per process: talks to the issuer configured in the settings."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._verify = trust_store(settings.ca_bundle_file, settings.run_dir)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] = {}
        self._metadata_at = 0.0
        self._keys: KeySet | None = None

    # -- provider metadata -------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document, refetched every few minutes."""
        with self._lock:
            if not self._metadata or time.monotonic() - self._metadata_at > METADATA_TTL:
                url = self.settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
                document = self._get_json(url)
                if document.get("issuer") != self.settings.oidc_issuer:
                    raise LoginError(
                        "the identity provider's discovery document names another issuer", 502
                    )
                self._metadata, self._metadata_at = document, time.monotonic()
                self._keys = None
            return self._metadata

    def _key_set(self, refresh: bool = False) -> KeySet:
        metadata = self.metadata()
        with self._lock:
            if self._keys is None or refresh:
                keys: Any = self._get_json(metadata["jwks_uri"])
                self._keys = KeySet.import_key_set(keys)
            return self._keys

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = requests.get(url, timeout=HTTP_TIMEOUT, verify=self._verify)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as error:
            logger.warning("identity provider unreachable at %s: %s", url, error)
            raise LoginError(
                "the identity provider cannot be reached; try again later", 502
            ) from None

    def _session(self, redirect_uri: str | None = None) -> Any:
        auth_method = "client_secret_basic" if self.settings.oidc_client_secret else "none"
        # Authlib's session is a requests.Session; pyright cannot see through its mixins.
        session: Any = OAuth2Session(
            client_id=self.settings.oidc_client_id,
            client_secret=self.settings.oidc_client_secret or None,
            scope=OIDC_SCOPE,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method=auth_method,
        )
        session.verify = self._verify
        session.trust_env = False
        return session

    # -- the three steps ---------------------------------------------------------------------

    def authorize(self, redirect_uri: str) -> Authorization:
        """A new authorization request (code flow, PKCE S256, state and nonce)."""
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        extra: dict[str, str] = {"nonce": nonce, "prompt": "consent"}
        if self.settings.oidc_audience:
            extra["audience"] = self.settings.oidc_audience
        session = self._session(redirect_uri)
        try:
            url, _ = session.create_authorization_url(
                self.metadata()["authorization_endpoint"],
                state=state,
                code_verifier=verifier,
                **extra,
            )
        finally:
            session.close()
        return Authorization(url, state, nonce, verifier)

    def exchange(self, code: str, code_verifier: str, nonce: str, redirect_uri: str) -> Tokens:
        """Trade the code for tokens (the provider checks the PKCE verifier), then validate."""
        session = self._session(redirect_uri)
        try:
            token = self._token_request(
                lambda: session.fetch_token(
                    self.metadata()["token_endpoint"],
                    code=code,
                    code_verifier=code_verifier,
                    timeout=HTTP_TIMEOUT,
                )
            )
        finally:
            session.close()
        return self._validated(token, nonce)

    def refresh(self, refresh_token: str) -> Tokens:
        """New tokens from the refresh token; the ID token is validated again when present."""
        session = self._session()
        try:
            token = self._token_request(
                lambda: session.refresh_token(
                    self.metadata()["token_endpoint"],
                    refresh_token=refresh_token,
                    timeout=HTTP_TIMEOUT,
                )
            )
        finally:
            session.close()
        return self._validated(token, None)

    def _token_request(self, call: Any) -> Mapping[str, Any]:
        try:
            return call()
        except requests.RequestException as error:
            logger.warning("token request failed: %s", error)
            raise LoginError(
                "the identity provider cannot be reached; try again later", 502
            ) from None
        except Exception as error:  # Authlib's OAuthError and friends carry the provider's error
            description = getattr(error, "error", None) or type(error).__name__
            logger.warning("the identity provider refused the token request: %s", error)
            raise LoginError(f"the identity provider refused the login ({description})") from None

    def _validated(self, token: Mapping[str, Any], nonce: str | None) -> Tokens:
        if "id_token" not in token:
            raise LoginError("the identity provider returned no ID token", 502)
        claims = self._id_token_claims(token["id_token"], nonce, token.get("access_token"))
        missing = {"name", "email", self.settings.oidc_groups_claim} - set(claims)
        if missing and token.get("access_token") and self.metadata().get("userinfo_endpoint"):
            info = self._userinfo(str(token["access_token"]))
            if info.get("sub") == claims["sub"]:
                claims = {**info, **claims}
        expires_in = int(token.get("expires_in") or 300)
        return Tokens(
            self._identity(claims),
            token.get("refresh_token"),
            max(expires_in, 30),
            token.get("access_token"),
        )

    def _id_token_claims(
        self, id_token: str, nonce: str | None, access_token: str | None
    ) -> dict[str, Any]:
        algorithms = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=algorithms)
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(), registry=registry)
            except InvalidKeyIdError:
                decoded = jwt.decode(id_token, self._key_set(refresh=True), registry=registry)
            params: dict[str, Any] = {"client_id": self.settings.oidc_client_id}
            if nonce is not None:
                params["nonce"] = nonce
            if access_token:
                params["access_token"] = access_token
            options = {
                "iss": {"essential": True, "values": [self.settings.oidc_issuer]},
                "aud": {"essential": True, "values": [self.settings.oidc_client_id]},
            }
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(leeway=ID_TOKEN_LEEWAY)
        except Exception as error:  # joserfc's JoseError or ValueError, Authlib's claim errors
            logger.warning("ID token rejected: %s", error)
            raise LoginError("the identity provider's ID token is not valid") from None
        return dict(claims)

    def _userinfo(self, access_token: str) -> dict[str, Any]:
        try:
            response = requests.get(
                self.metadata()["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=HTTP_TIMEOUT,
                verify=self._verify,
            )
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as error:
            logger.warning("userinfo request failed: %s", error)
            return {}

    def _identity(self, claims: Mapping[str, Any]) -> dict[str, Any]:
        groups = claims.get(self.settings.oidc_groups_claim)
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            groups = []
        return {
            "subject": str(claims["sub"]),
            "name": str(claims.get("name") or claims.get("preferred_username") or ""),
            "email": str(claims.get("email") or ""),
            "groups": tuple(groups),
        }


def trust_store(ca_bundle: Path, run_dir: Path) -> str | bool:
    """What to verify the provider with: the system's CAs plus the deployment's bundle.

    Without a bundle (or with an empty one) that is just the system's store; otherwise both
    are written into one file under `run_dir`, because `requests` takes only one.
    """
    try:
        extra = ca_bundle.read_text().strip()
    except OSError:
        extra = ""
    if not extra:
        return True
    system = ""
    default = ssl.get_default_verify_paths().cafile
    try:
        import certifi

        system = Path(certifi.where()).read_text()
    except (ImportError, OSError):
        if default:
            system = Path(default).read_text()
    # Written per process and renamed into place, so no worker ever reads a partial file.
    combined = run_dir / f"oidc-trust-{os.getpid()}.pem"
    combined.parent.mkdir(parents=True, exist_ok=True)
    partial = combined.with_suffix(".tmp")
    partial.write_text(system.rstrip() + "\n" + extra + "\n")
    os.replace(partial, combined)
    return str(combined)


def oidc_client() -> OIDCClient:
    """This process's OIDC client (created on first use)."""
    client = current_app.extensions.get(_CLIENT)
    if client is None:
        client = current_app.extensions[_CLIENT] = OIDCClient(app_settings())
    return client
