"""Requirer side of the `postgresql_client` interface, version 0 of the protocol.

This is the protocol that postgresql-k8s (tracks 14 and 16) speaks on its `database`
endpoint. Everything travels in the *application* databags; only the leader writes ours.

Requirer application databag (written by `DatabaseRequirer.request`):

- `database`: the name of the database to create.
- `requested-secrets`: a JSON list of the secret fields the requirer wants as Juju secrets
  instead of plain databag values, e.g. `["username", "password", "tls", "tls-ca", "uris"]`.
  Without it the provider puts the credentials in plain text in its databag.
- `extra-user-roles` (optional): extra roles for the created user, e.g. `CREATEDB`.

Provider application databag (read by `DatabaseRequirer.fetch`):

- `database`: the database actually created.
- `endpoints`: comma-separated `host:port` of the primary, e.g.
  `postgresql-k8s-primary.<model>.svc.cluster.local:5432`.
- `read-only-endpoints`: comma-separated `host:port` of the replicas.
- `version`: the PostgreSQL server version, e.g. `16.9`.
- `secret-user`: URI of a Juju secret granted to the relation, with the content keys
  `username`, `password` and (when requested) `uris`.
- `secret-tls`: URI of a Juju secret with `tls` (`"True"`/`"False"`) and `tls-ca` (when
  requested).
- `username`/`password`/`tls`/`tls-ca`: the plain-text fallback of old providers.

The database counts as ready once the provider published `endpoints` and the user
credentials. When the provider rotates the password it publishes a new secret revision
(`secret_changed`); `fetch` always reads the latest revision.

The library keeps no state and emits no events of its own: it is meant for charms that
reconcile on every event. Observe the relation's events and `secret_changed`, then call
`request()` (harmless on non-leaders and when nothing changed) and `fetch()`:

    self.database = DatabaseRequirer(self, "database", database_name="my_db")
    framework.observe(self.on["database"].relation_changed, self._reconcile)
    framework.observe(self.on.secret_changed, self._reconcile)

    def _reconcile(self, _: ops.EventBase) -> None:
        self.database.request()
        credentials = self.database.fetch()
        if credentials is None:
            return  # not related yet, or the provider has not answered
        connect(credentials.uri)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import urllib.parse

import ops

# The unique Charmhub library identifier, never change it.
LIBID = "7aa787db34034b75a409f2225296211b"

# Increment this major API version when introducing breaking changes.
LIBAPI = 0

# Increment this PATCH version before using `charmcraft publish-lib` or reset
# to 0 if you are raising the major API version.
LIBPATCH = 1

logger = logging.getLogger(__name__)

DEFAULT_REQUESTED_SECRETS = ("username", "password", "tls", "tls-ca", "uris")


@dataclasses.dataclass(frozen=True)
class DatabaseCredentials:
    """What the provider published for our database."""

    database: str
    """Name of the created database."""
    endpoints: tuple[str, ...]
    """`host:port` of the primary (read-write) server(s)."""
    username: str
    password: str
    tls: bool = False
    """Whether the server requires TLS."""
    tls_ca: str = ""
    """CA certificate (PEM) of the server when TLS is on."""
    version: str = ""
    """PostgreSQL server version as reported by the provider."""
    read_only_endpoints: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """Return a libpq connection URI for the primary, credentials percent-encoded."""
        user = urllib.parse.quote(self.username, safe="")
        password = urllib.parse.quote(self.password, safe="")
        database = urllib.parse.quote(self.database, safe="")
        uri = f"postgresql://{user}:{password}@{self.endpoints[0]}/{database}"
        return f"{uri}?sslmode=require" if self.tls else uri


class DatabaseRequirer(ops.Object):
    """Ask a `postgresql_client` provider for a database and read its answer."""

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str,
        database_name: str,
        requested_secrets: tuple[str, ...] = DEFAULT_REQUESTED_SECRETS,
        extra_user_roles: str = "",
    ):
        """Set up the requirer.

        Args:
            charm: the charm that owns the endpoint.
            relation_name: name of the `postgresql_client` endpoint in the charm's metadata.
            database_name: the database to request.
            requested_secrets: secret fields to receive as Juju secrets.
            extra_user_roles: extra roles for the user, empty for none.
        """
        super().__init__(charm, f"postgresql-client-{relation_name}")
        self._charm = charm
        self.relation_name = relation_name
        self.database_name = database_name
        self.requested_secrets = requested_secrets
        self.extra_user_roles = extra_user_roles

    @property
    def relation(self) -> ops.Relation | None:
        """Return the relation to the provider, if there is one."""
        return self.model.get_relation(self.relation_name)

    @property
    def provider_name(self) -> str | None:
        """Return the provider's application name, if related."""
        relation = self.relation
        return relation.app.name if relation is not None and relation.app else None

    def request(self) -> None:
        """Publish the database request (leader only; a no-op when already published)."""
        relation = self.relation
        if relation is None or not self._charm.unit.is_leader():
            return
        wanted = {
            "database": self.database_name,
            "requested-secrets": json.dumps(list(self.requested_secrets)),
        }
        if self.extra_user_roles:
            wanted["extra-user-roles"] = self.extra_user_roles
        databag = relation.data[self._charm.app]
        for key, value in wanted.items():
            if databag.get(key) != value:
                databag[key] = value

    def fetch(self) -> DatabaseCredentials | None:
        """Return the provider's answer, or None while the database is not ready."""
        relation = self.relation
        if relation is None or relation.app is None:
            return None
        data = relation.data[relation.app]
        endpoints = _split(data.get("endpoints", ""))
        user = self._secret_content(data.get("secret-user")) or {
            key: data[key] for key in ("username", "password") if key in data
        }
        if not endpoints or not user.get("username") or not user.get("password"):
            return None
        tls = self._secret_content(data.get("secret-tls")) or {
            key: data[key] for key in ("tls", "tls-ca") if key in data
        }
        return DatabaseCredentials(
            database=data.get("database") or self.database_name,
            endpoints=endpoints,
            username=user["username"],
            password=user["password"],
            tls=tls.get("tls", "").lower() == "true",
            tls_ca=tls.get("tls-ca", ""),
            version=data.get("version", ""),
            read_only_endpoints=_split(data.get("read-only-endpoints", "")),
        )

    def _secret_content(self, uri: str | None) -> dict[str, str]:
        if not uri:
            return {}
        try:
            return self.model.get_secret(id=uri).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError) as error:
            # The provider publishes the URI before Juju has granted us the secret.
            logger.info("secret %s of %s is not readable yet: %s", uri, self.relation_name, error)
            return {}


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())
