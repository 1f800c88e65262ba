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
credentials (and, when it published `secret-tls`, once that secret is readable: a TLS flag we
cannot read is never taken for "off"). When the provider rotates the password or its
certificate it publishes a new secret revision (`secret_changed`); `fetch` always reads the
latest revision.

TLS: with `tls` on, `DatabaseCredentials.uri` always asks libpq to verify the server, never
just to encrypt (`sslmode=require` accepts any certificate). The facts below are from
canonical/postgresql-k8s-operator, branch `main` (track 14) and `16/edge` (track 16):

- `sslrootcert=<tls_ca_file>`: the requirer writes `tls_ca` to the file it named in
  `DatabaseRequirer(tls_ca_file=...)`; libpq reads it on every new connection. The provider
  publishes the CA of the certificate it serves (`src/relations/postgresql_provider.py`,
  `set_tls_ca`): on 16 the issuing CA (`get_client_tls_files` in `src/relations/tls.py`), on
  14 the chain when it has one.
- `sslmode=verify-full` when the endpoint's host is a name, `verify-ca` when it is an IP
  address. postgresql-k8s publishes `<app>-primary.<model>.svc.cluster.local:5432` as
  `endpoints` (`primary_endpoint` in `src/charm.py`) and puts that name in the certificate it
  serves to clients: on 16 in `src/relations/tls.py` (`common_hosts`, part of the `sans_dns`
  of the `client-certificates` request), on 14 in
  `lib/charms/postgresql_k8s/v0/postgresql_tls.py` (`_get_sans`, given
  `[primary_endpoint, replicas_endpoint]` by `src/charm.py`). An IP address cannot be
  expected to match: the 16 client certificate's `sans_ip` only holds a `database-address`
  the K8s charm never sets, and no service IP is in either track's certificate. So for an IP
  host libpq checks the CA's signature but not the name.
- TLS on without a CA (`tls_ca_missing`; postgresql-k8s itself only says `tls` = `"True"`
  once it holds its certificate and CA, see `is_tls_enabled` in `src/charm.py`): there is
  nothing to verify the server with. The container's system trust store does not know the
  private CA of a TLS operator (self-signed-certificates), and `require` would be a silent
  downgrade; the requirer should wait for the provider. The URI still says `verify-*`, so
  a connection attempted anyway fails instead of going unverified.
- TLS off (`tls` absent or `"False"`): no `sslmode` (libpq's default, `prefer`).

The library keeps no state and emits no events of its own: it is meant for charms that
reconcile on every event. Observe the relation's events and `secret_changed`, then call
`request()` (harmless on non-leaders and when nothing changed) and `fetch()`:

    self.database = DatabaseRequirer(
        self, "database", database_name="my_db", tls_ca_file=CA_FILE
    )
    framework.observe(self.on["database"].relation_changed, self._reconcile)
    framework.observe(self.on.secret_changed, self._reconcile)

    def _reconcile(self, _: ops.EventBase) -> None:
        self.database.request()
        credentials = self.database.fetch()
        if credentials is None or credentials.tls_ca_missing:
            return  # not related yet, or the provider has not answered
        write_file(CA_FILE, credentials.tls_ca)  # when credentials.tls
        connect(credentials.uri)
"""

from __future__ import annotations

import dataclasses
import ipaddress
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
LIBPATCH = 2

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
    tls_ca_file: str = ""
    """Where the requirer writes `tls_ca` for libpq (`sslrootcert`); empty for libpq's default
    (`~/.postgresql/root.crt`)."""

    @property
    def tls_ca_missing(self) -> bool:
        """Whether TLS is on but the provider published no CA to verify the server with."""
        return self.tls and not self.tls_ca.strip()

    @property
    def sslmode(self) -> str | None:
        """Return libpq's `sslmode` for the primary, None when TLS is off (see the module doc).

        `verify-full` checks the CA and that the certificate names the endpoint's host;
        `verify-ca`, for an IP address, only the CA.
        """
        if not self.tls:
            return None
        return "verify-ca" if _is_ip_address(_host(self.endpoints[0])) else "verify-full"

    @property
    def uri(self) -> str:
        """Return a libpq connection URI for the primary, credentials percent-encoded."""
        user = urllib.parse.quote(self.username, safe="")
        password = urllib.parse.quote(self.password, safe="")
        database = urllib.parse.quote(self.database, safe="")
        uri = f"postgresql://{user}:{password}@{self.endpoints[0]}/{database}"
        if self.sslmode is None:
            return uri
        query = {"sslmode": self.sslmode}
        if self.tls_ca_file:
            query["sslrootcert"] = self.tls_ca_file
        return f"{uri}?{urllib.parse.urlencode(query, safe='/')}"


class DatabaseRequirer(ops.Object):
    """Ask a `postgresql_client` provider for a database and read its answer."""

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str,
        database_name: str,
        requested_secrets: tuple[str, ...] = DEFAULT_REQUESTED_SECRETS,
        extra_user_roles: str = "",
        tls_ca_file: str = "",
    ):
        """Set up the requirer.

        Args:
            charm: the charm that owns the endpoint.
            relation_name: name of the `postgresql_client` endpoint in the charm's metadata.
            database_name: the database to request.
            requested_secrets: secret fields to receive as Juju secrets.
            extra_user_roles: extra roles for the user, empty for none.
            tls_ca_file: path (where libpq runs) the charm writes the provider's CA to; the
                URI names it as `sslrootcert` when TLS is on.
        """
        super().__init__(charm, f"postgresql-client-{relation_name}")
        self._charm = charm
        self.relation_name = relation_name
        self.database_name = database_name
        self.requested_secrets = requested_secrets
        self.extra_user_roles = extra_user_roles
        self.tls_ca_file = tls_ca_file

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
        if data.get("secret-tls"):
            tls = self._secret_content(data["secret-tls"])
            if not tls:
                return None  # not readable yet: whether TLS is on is unknown
        else:
            tls = {key: data[key] for key in ("tls", "tls-ca") if key in data}
        return DatabaseCredentials(
            database=data.get("database") or self.database_name,
            endpoints=endpoints,
            username=user["username"],
            password=user["password"],
            tls=tls.get("tls", "").lower() == "true",
            tls_ca=tls.get("tls-ca", ""),
            version=data.get("version", ""),
            read_only_endpoints=_split(data.get("read-only-endpoints", "")),
            tls_ca_file=self.tls_ca_file,
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


def _host(endpoint: str) -> str:
    """Return the host of `host:port`, `[v6]:port` or a bare host."""
    if endpoint.startswith("["):
        return endpoint[1:].partition("]")[0]
    host, separator, port = endpoint.rpartition(":")
    if separator and port.isdigit() and ":" not in host:
        return host
    return endpoint


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
