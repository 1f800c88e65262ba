"""Login settings for the web UI: charm config (a Juju user secret) or the `oauth` relation.

Either the operator configures an external identity provider (`oidc-issuer`,
`oidc-client-id`, `oidc-client-secret` as a user secret, ...) or integrates the charm with
the Canonical Identity Platform over `oauth` (charmlibs-interfaces-oauth), which registers
our client with the redirect URI on the management domain and hands back its credentials.
The relation wins when both are present. Either way the result is a few `MCM_*` entries of
the workload's env file (docs/workload-contract.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable

import ops
from charmlibs.interfaces.oauth import ClientConfig, OAuthRequirer
from cluster_manager.options import DEFAULTS, OIDC_SCOPE, SPECS, Options

logger = logging.getLogger(__name__)

OAUTH_RELATION = "oauth"
SECRET_LABEL = "oidc-client-secret"  # noqa: S105 (a label, not a secret)
SECRET_KEY = "client-secret"  # noqa: S105 (a key name)
NOT_CONFIGURED = (
    "web UI login not configured: set oidc-issuer and oidc-client-id, or integrate oauth"
)


class OIDCConfigError(Exception):
    """The login configuration is unusable; the message tells the operator what to do."""


class OIDCWaiting(OIDCConfigError):
    """The oauth provider has not registered our client yet."""


@dataclasses.dataclass(frozen=True)
class OIDCSettings:
    """Where the web UI sends users to log in, and as which client."""

    issuer: str
    client_id: str
    client_secret: str = dataclasses.field(default="", repr=False)
    audience: str = ""
    groups_claim: str = Options.oidc_groups_claim
    admin_group: str = Options.oidc_admin_group
    ca_chain: str = ""
    """PEM certificates the provider asks us to trust (oauth `ca_chain`)."""

    def to_env(self, management_domain: str) -> dict[str, str]:
        """The workload settings for this login."""
        return {
            "MCM_OIDC_ISSUER": self.issuer,
            "MCM_OIDC_CLIENT_ID": self.client_id,
            "MCM_OIDC_CLIENT_SECRET": self.client_secret,
            "MCM_OIDC_AUDIENCE": self.audience,
            "MCM_OIDC_GROUPS_CLAIM": self.groups_claim,
            "MCM_OIDC_ADMIN_GROUP": self.admin_group,
            "MCM_PUBLIC_URL": public_url(management_domain),
        }


def public_url(management_domain: str) -> str:
    """The UI's own URL (Traefik's websecure entrypoint passes 443 through to the front)."""
    return f"https://{management_domain}"


def redirect_uri(management_domain: str) -> str:
    """Where the identity provider sends the browser back to."""
    return f"{public_url(management_domain)}/oidc/callback"


class OIDCLogin(ops.Object):
    """Reads the login settings and keeps the `oauth` relation's client registration current."""

    def __init__(self, charm: ops.CharmBase, domain: Callable[[], str | None]):
        """Set up the oauth requirer.

        Args:
            charm: the charm.
            domain: returns the management API domain, None while the config is invalid.
        """
        super().__init__(charm, "oidc-login")
        self._charm = charm
        self._domain = domain
        self.oauth = OAuthRequirer(charm, self._client_config(), OAUTH_RELATION)

    @property
    def events(self) -> list[ops.BoundEvent]:
        """The oauth library's events; each one calls for a reconcile."""
        return [self.oauth.on.oauth_info_changed, self.oauth.on.oauth_info_removed]

    def _client_config(self) -> ClientConfig | None:
        domain = self._domain()
        if not domain:
            return None
        return ClientConfig(
            redirect_uri=redirect_uri(domain),
            scope=OIDC_SCOPE,
            grant_types=["authorization_code", "refresh_token"],
        )

    def publish(self) -> None:
        """Send our client registration (leader only); the redirect URI follows the domain."""
        relation = self.model.get_relation(OAUTH_RELATION)
        config = self._client_config()
        if relation is None or config is None or not self.model.unit.is_leader():
            return
        self.oauth.update_client_config(config, relation_id=relation.id)

    def read(self) -> tuple[OIDCSettings | None, ops.StatusBase | None]:
        """The login settings and, when they are missing or unusable, the status to show."""
        try:
            settings = self.load()
        except OIDCWaiting as waiting:
            return None, ops.WaitingStatus(str(waiting))
        except OIDCConfigError as error:
            return None, ops.BlockedStatus(str(error))
        if settings is None:
            return None, ops.ActiveStatus(NOT_CONFIGURED)
        return settings, None

    def load(self) -> OIDCSettings | None:
        """The login settings, None when neither the relation nor the config provides one.

        Raises:
            OIDCConfigError: the operator must fix something (message says what).
        """
        if self.model.get_relation(OAUTH_RELATION) is not None:
            return self._from_relation()
        return self._from_config()

    def _from_relation(self) -> OIDCSettings:
        try:
            info = self.oauth.get_provider_info()
        except (ops.SecretNotFoundError, ops.ModelError) as error:
            raise OIDCConfigError(
                f"cannot read the oauth client secret: {error} ({self._logs()})"
            ) from None
        if info is None or not info.client_id:
            relation = self.model.get_relation(OAUTH_RELATION)
            provider = relation.app.name if relation and relation.app else "the oauth provider"
            raise OIDCWaiting(
                f"waiting for the oauth provider to register our client (juju status {provider})"
            )
        return OIDCSettings(
            issuer=info.issuer_url,
            client_id=info.client_id,
            client_secret=info.client_secret or "",
            groups_claim=self._checked_option("oidc-groups-claim"),
            admin_group=self._checked_option("oidc-admin-group"),
            ca_chain=_pem_chain(info.ca_chain),
        )

    def _from_config(self) -> OIDCSettings | None:
        issuer = self._option("oidc-issuer")
        client_id = self._option("oidc-client-id")
        if not issuer and not client_id:
            return None
        if not issuer or not client_id:
            raise OIDCConfigError(
                "set both oidc-issuer and oidc-client-id (or neither) (juju config "
                f"{self.model.app.name} oidc-issuer=<issuer URL> oidc-client-id=<client ID>)"
            )
        return OIDCSettings(
            issuer=self._checked_option("oidc-issuer"),
            client_id=self._checked_option("oidc-client-id"),
            client_secret=self._client_secret(),
            audience=self._checked_option("oidc-audience"),
            groups_claim=self._checked_option("oidc-groups-claim"),
            admin_group=self._checked_option("oidc-admin-group"),
        )

    def _client_secret(self) -> str:
        secret_id = self._option("oidc-client-secret")
        if not secret_id:
            return ""
        try:
            secret = self.model.get_secret(id=secret_id, label=SECRET_LABEL)
            content = secret.get_content(refresh=True)
        except ops.SecretNotFoundError:
            raise OIDCConfigError(
                f"oidc-client-secret {secret_id} not found "
                f"(juju grant-secret {secret_id} {self.model.app.name})"
            ) from None
        except ops.ModelError as error:
            raise OIDCConfigError(
                f"cannot read oidc-client-secret: {error} ({self._logs()})"
            ) from None
        if SECRET_KEY in content:
            return content[SECRET_KEY]
        if len(content) == 1:
            return next(iter(content.values()))
        raise OIDCConfigError(
            f"oidc-client-secret must hold a `{SECRET_KEY}` key "
            f"(juju update-secret {secret_id} {SECRET_KEY}=<secret>)"
        )

    def _logs(self) -> str:
        return f"juju debug-log --include {self.model.unit.name}"

    def _option(self, name: str) -> str:
        """A login option as text (the secret's ID for oidc-client-secret), stripped.

        Read from the raw config, so that the login is judged even while other options are
        invalid; the default is the option table's.
        """
        value = self._charm.config.get(name)
        if value is None:
            value = DEFAULTS[name]
        return str(value).strip() if value is not None else ""

    def _checked_option(self, name: str) -> str:
        """A login option, checked by the option table's rules (the config's load skips them).

        Raises:
            OIDCConfigError: the value breaks the option's rules; a bad login option blocks
                the login, not the unit.
        """
        value = self._option(name)
        try:
            SPECS[name].check(name, value)
        except ValueError as error:
            raise OIDCConfigError(
                f"{error} (juju config {self.model.app.name} {name}={SPECS[name].example})"
            ) from None
        return value


def _pem_chain(value: object) -> str:
    """The provider's `ca_chain` (a JSON list of PEMs, or one PEM) as PEM text."""
    if not value:
        return ""
    items = value
    if isinstance(value, str):
        try:
            items = json.loads(value)
        except ValueError:
            items = [value]
    if not isinstance(items, list):
        items = [str(items)]
    return "".join(f"{str(pem).strip()}\n" for pem in items if str(pem).strip())
