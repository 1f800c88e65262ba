"""Named readiness checks, shared by the reconcile (what may run) and the unit status.

Every check reads the `Facts` gathered once per hook and returns None when it passes, or the
status that tells the operator what is missing: Blocked when they must act, Waiting when a
related application (or our leader) must act, Maintenance while the unit works on its own.
Every Blocked and Waiting message ends with the command to type, in parentheses: the
`juju integrate` or `juju config` that fixes it, or where to look when another party acts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import ops

from charm_config import CharmConfig
from connector_identity import ConnectorIdentity
from oidc import OIDCSettings
from tls import TLSMaterial

MAX_ERROR_LENGTH = 200


@dataclasses.dataclass(frozen=True)
class Facts:
    """Everything the checks decide on, read once per hook."""

    app_name: str
    unit_name: str
    is_leader: bool
    config: CharmConfig | None
    config_error: str
    config_fix: str
    """`option=example` for `juju config`, when the error names one option."""
    container_connected: bool
    database_provider: str | None
    """Application name of the database provider, None when not related."""
    database_url: str | None
    """Connection URI once the provider created the database and user."""
    database_identity: str | None
    """The database's name and primary endpoint, which the schema record names."""
    certificates_provider: str | None
    management_tls: TLSMaterial | None
    ca_bundle: str
    """The CA certificates received over `receive-ca-cert` (PEM), trusted for outgoing TLS."""
    connector_identity: ConnectorIdentity | None
    tunnel_secret: str | None = dataclasses.field(repr=False)
    """The secret the units' tunnel processes share, None until the leader created it (the
    unit then serves without its tunnel service)."""
    unit_address: str
    """This unit's address as the peer relation publishes it; the other units reach its
    tunnel process there."""
    ingress_provider: str | None
    remote_write_urls: tuple[str, ...]
    schema_migrated: bool
    """The leader migrated the current database (recorded in the peer app data)."""
    database_tls: bool = False
    """The provider's server requires TLS; the URI then verifies it against `database_ca`."""
    database_ca: str = ""
    """The provider's CA (PEM), empty while TLS is off or the provider published none."""
    migration_error: str = ""
    stopped_services: tuple[str, ...] = ()
    failing_checks: tuple[str, ...] = ()
    oidc: OIDCSettings | None = None
    """The web UI's login settings, None when not configured."""
    oidc_problem: ops.StatusBase | None = None
    """Why there are no login settings (an Active message when simply not configured)."""


Check = Callable[[Facts], ops.StatusBase | None]


def config_valid(facts: Facts) -> ops.StatusBase | None:
    """The config options are valid."""
    if facts.config is None:
        fix = f"juju config {facts.app_name} {facts.config_fix or '…'}"
        return ops.BlockedStatus(f"invalid config: {facts.config_error} ({fix})")
    return None


def container_connected(facts: Facts) -> ops.StatusBase | None:
    """Pebble in the workload container answers."""
    if not facts.container_connected:
        return ops.WaitingStatus(
            f"waiting for the cluster-manager container to start ({_logs(facts)})"
        )
    return None


def database_related(facts: Facts) -> ops.StatusBase | None:
    """The `database` endpoint is integrated."""
    if facts.database_provider is None:
        return ops.BlockedStatus(
            f"integrate with PostgreSQL (juju integrate {facts.app_name}:database postgresql-k8s)"
        )
    return None


def database_ready(facts: Facts) -> ops.StatusBase | None:
    """The provider created our database and user."""
    if facts.database_provider is not None and facts.database_url is None:
        provider = facts.database_provider
        return ops.WaitingStatus(
            f"waiting for a database from {provider} (juju status {provider})"
        )
    return None


def database_ca_published(facts: Facts) -> ops.StatusBase | None:
    """With TLS on, the provider published the CA that verifies its server."""
    if facts.database_url is not None and facts.database_tls and not facts.database_ca:
        provider = facts.database_provider
        return ops.WaitingStatus(
            f"waiting for {provider} to publish the CA of its TLS certificate (tls-ca)"
            f" (juju status {provider})"
        )
    return None


def certificates_related(facts: Facts) -> ops.StatusBase | None:
    """The `certificates` endpoint is integrated."""
    if facts.certificates_provider is None:
        return ops.BlockedStatus(
            "integrate with a TLS certificates provider "
            f"(juju integrate {facts.app_name}:certificates self-signed-certificates)"
        )
    return None


def certificate_issued(facts: Facts) -> ops.StatusBase | None:
    """The management API certificate for the configured domain has been issued."""
    if facts.certificates_provider is not None and facts.management_tls is None:
        provider = facts.certificates_provider
        return ops.WaitingStatus(f"certificate requested from {provider} (juju status {provider})")
    return None


def connector_identity_ready(facts: Facts) -> ops.StatusBase | None:
    """The connector key and certificate exist."""
    if facts.connector_identity is None:
        return _created_by_leader(facts, "connector identity")
    return None


def tunnel_secret_ready(facts: Facts) -> ops.StatusBase | None:
    """The secret the units' tunnel processes share exists; until then no tunnel service runs.

    Not Active, as clusters cannot open a tunnel to the unit nor can it forward to the other
    units' tunnels, but saying that the rest serves: a non-leader refreshed before the leader
    shows it until the leader's own refresh creates the secret.
    """
    if facts.tunnel_secret is not None:
        return None
    if facts.is_leader:
        return ops.MaintenanceStatus("creating the tunnel secret; serving without reverse tunnels")
    return ops.WaitingStatus(
        "waiting for the leader to create the tunnel secret; serving without reverse tunnels"
        f" (juju status {facts.app_name})"
    )


def _created_by_leader(facts: Facts, what: str) -> ops.StatusBase:
    if facts.is_leader:
        return ops.MaintenanceStatus(f"creating the {what}")
    return ops.WaitingStatus(
        f"waiting for the leader to create the {what} (juju status {facts.app_name})"
    )


def connector_domain_matches(facts: Facts) -> ops.StatusBase | None:
    """The connector certificate is valid for the configured connector domain."""
    identity, config = facts.connector_identity, facts.config
    if identity is None or config is None or identity.matches(config.cluster_connector_domain):
        return None
    names = ", ".join(identity.dns_names) or "no DNS name"
    return ops.BlockedStatus(
        f"cluster-connector-domain {config.cluster_connector_domain} differs from the connector "
        f"certificate ({names}) "
        f"(juju run {facts.app_name}/leader rotate-connector-certificate confirm=true)"
    )


def schema_migrated(facts: Facts) -> ops.StatusBase | None:
    """The database schema is at the workload's version."""
    if facts.migration_error:
        error = facts.migration_error[:MAX_ERROR_LENGTH]
        return ops.BlockedStatus(f"database migration failed: {error} ({_logs(facts)})")
    if not facts.schema_migrated:
        if facts.is_leader:
            return ops.MaintenanceStatus("migrating the database schema")
        return ops.WaitingStatus(
            f"waiting for the leader to migrate the database schema (juju status {facts.app_name})"
        )
    return None


def ingress_related(facts: Facts) -> ops.StatusBase | None:
    """Traefik routes the two domains to the units."""
    if facts.ingress_provider is None:
        domains = ""
        if facts.config is not None:
            config = facts.config
            domains = f" {config.management_api_domain} and {config.cluster_connector_domain}"
        return ops.BlockedStatus(
            f"integrate with traefik-k8s to expose{domains} "
            f"(juju integrate {facts.app_name}:traefik-route traefik-k8s)"
        )
    return None


def services_running(facts: Facts) -> ops.StatusBase | None:
    """Every Pebble service runs and passes its checks."""
    if facts.stopped_services:
        return ops.MaintenanceStatus(f"starting {', '.join(facts.stopped_services)}")
    if facts.failing_checks:
        checks = ", ".join(facts.failing_checks)
        return ops.WaitingStatus(f"failing health checks: {checks} ({_logs(facts)})")
    return None


def _logs(facts: Facts) -> str:
    return f"juju debug-log --include {facts.unit_name}"


def login_configured(facts: Facts) -> ops.StatusBase | None:
    """The web UI can log users in (the management API works without it)."""
    return facts.oidc_problem


PREREQUISITES: tuple[Check, ...] = (
    config_valid,
    container_connected,
    database_related,
    database_ready,
    database_ca_published,
    certificates_related,
    certificate_issued,
    connector_identity_ready,
)
"""What the workload files need; the reconcile writes nothing until all pass."""

SERVING: tuple[Check, ...] = (schema_migrated,)
"""What the services need on top of the prerequisites before they start."""

ADVISORY: tuple[Check, ...] = (
    connector_domain_matches,
    ingress_related,
    tunnel_secret_ready,
    login_configured,
)
"""What the unit serves (or will serve) without, until the operator (or the leader) fixes it."""


def failures(checks: Sequence[Check], facts: Facts) -> list[ops.StatusBase]:
    """Return the statuses of the checks that fail, in order."""
    return [status for check in checks if (status := check(facts)) is not None]


def passes(checks: Sequence[Check], facts: Facts) -> bool:
    """Return whether every check passes."""
    return not failures(checks, facts)


def cli_blocker(facts: Facts) -> str | None:
    """Why the workload CLI cannot run yet (the first failing check's message), or None."""
    blocking = failures((*PREREQUISITES, *SERVING), facts)
    return blocking[0].message if blocking else None


def unit_statuses(facts: Facts) -> list[ops.StatusBase]:
    """Return every status the unit should report; empty when it is fully active.

    Later stages are only judged once the earlier ones pass, so a unit that waits for its
    certificate never claims to be migrating or starting services.
    """
    statuses = failures(PREREQUISITES, facts)
    if not statuses:
        statuses = failures(SERVING, facts) or failures((services_running,), facts)
    return statuses + failures(ADVISORY, facts)
