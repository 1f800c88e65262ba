"""What the workload container should hold, planned from one hook's facts (pure functions).

The charm reads the facts once per hook (`readiness.Facts`), plans the files and the service
operations here, and applies them; nothing in this module talks to Juju or Pebble.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence, Set

from constants import (
    APP_SERVICES,
    CA_BUNDLE,
    CONNECTOR_CERT,
    CONNECTOR_KEY,
    DATABASE_CA,
    ENV_FILE,
    FRONT_CONFIG,
    FRONT_SERVICE,
    MANAGEMENT_CERT,
    MANAGEMENT_KEY,
)
from readiness import Facts
from workload import WorkloadFile, format_env_file, render_env, render_front, tunnel_env

RESTART_APPS_ON = frozenset({ENV_FILE, CONNECTOR_CERT, CONNECTOR_KEY, CA_BUNDLE, DATABASE_CA})
"""Files the management, connector and tunnel processes read at start (the CA bundle: remote
write, OIDC).

libpq reads the database CA at every new connection; the restart makes the pooled ones,
verified with the previous CA, go too."""
RELOAD_FRONT_ON = frozenset(
    {FRONT_CONFIG, MANAGEMENT_CERT, MANAGEMENT_KEY, CONNECTOR_CERT, CONNECTOR_KEY}
)
"""Files HAProxy rereads on SIGUSR2, without dropping connections."""


def plans_tunnel(facts: Facts) -> bool:
    """Whether the layer holds the tunnel service: once the unit has the units' shared secret.

    Until then (a unit refreshed before the leader created it) everything else runs.
    """
    return facts.tunnel_secret is not None


def workload_files(facts: Facts) -> list[WorkloadFile]:
    """Every file of the container, as the facts want it (the prerequisites have passed)."""
    config, tls, identity = facts.config, facts.management_tls, facts.connector_identity
    url = facts.database_url
    assert config and url and tls and identity  # noqa: S101 (PREREQUISITES)
    env = render_env(config, url, facts.remote_write_urls)
    env.update(tunnel_env(facts.tunnel_secret, facts.unit_address))
    if facts.oidc is not None:
        env.update(facts.oidc.to_env(config.management_api_domain))
    trust = facts.ca_bundle + (facts.oidc.ca_chain if facts.oidc else "")
    return [
        WorkloadFile(ENV_FILE, format_env_file(env), 0o600),
        WorkloadFile(FRONT_CONFIG, render_front(config, facts.ingress_provider is not None)),
        WorkloadFile(MANAGEMENT_CERT, tls.chain),
        WorkloadFile(MANAGEMENT_KEY, tls.private_key, 0o600),
        WorkloadFile(CONNECTOR_CERT, identity.certificate),
        WorkloadFile(CONNECTOR_KEY, identity.private_key, 0o600),
        WorkloadFile(CA_BUNDLE, trust),
        WorkloadFile(DATABASE_CA, facts.database_ca if facts.database_tls else None),
    ]


@dataclasses.dataclass(frozen=True)
class ServiceChanges:
    """What to do with the planned services after files changed."""

    reload_front: bool = False
    restart: tuple[str, ...] = ()
    start: tuple[str, ...] = ()


def service_changes(
    changed: Set[str], running: Set[str], planned: Sequence[str]
) -> ServiceChanges:
    """Restart or reload only what runs and depends on the changed files; start what does not.

    `planned` names the layer's services (`layer_services`), the front first.
    """
    stale = bool(changed & RESTART_APPS_ON)
    return ServiceChanges(
        reload_front=bool(changed & RELOAD_FRONT_ON) and FRONT_SERVICE in running,
        restart=tuple(n for n in planned if stale and n in APP_SERVICES and n in running),
        start=tuple(n for n in planned if n not in running),
    )
