#!/usr/bin/env python3
"""Juju charm for the MicroCloud Cluster Manager on Kubernetes.

Every event funnels into `_reconcile`, which reads the desired state (config, relations,
secrets), writes the files and the Pebble layer of the workload container and publishes the
relation data; the unit status is computed only in `_on_collect_status`, from the same named
readiness checks (readiness.py) the reconcile uses.
"""

from __future__ import annotations

import logging

import ops
from charms.microcloud_cluster_manager_k8s.v0.postgresql_client import (
    DatabaseCredentials,
    DatabaseRequirer,
)
from charms.microcloud_cluster_manager_k8s.v0.traefik_route import TraefikRouteRequirer

import readiness
from actions import ClusterManagerActions
from charm_config import CharmConfig, InvalidOption
from connector_identity import ConnectorIdentityStore
from constants import (
    APP_SERVICES,
    CA_BUNDLE,
    CA_RELATION,
    CERTIFICATES_RELATION,
    CONNECTOR_CERT,
    CONNECTOR_KEY,
    CONNECTOR_PORT,
    CONTAINER,
    DATABASE_CA,
    DATABASE_NAME,
    DATABASE_RELATION,
    ENV_FILE,
    FRONT_CONFIG,
    FRONT_SERVICE,
    INGRESS_RELATION,
    MANAGEMENT_CERT,
    MANAGEMENT_KEY,
    MANAGEMENT_PORT,
    MANAGEMENT_SERVICE,
    METRICS_PORT,
    PEER_RELATION,
    SCHEMA_DATABASE_KEY,
    SCHEMA_VERSION_KEY,
    UNIT_ADDRESS_KEY,
)
from ingress import build_route_config, unit_address
from observability import RELATIONS as OBSERVABILITY_RELATIONS
from observability import Observability
from oidc import OAUTH_RELATION, OIDCLogin
from pebble_layer import LAYER_NAME, build_layer, is_planned, retirement
from tls import ManagementTLS
from workload import (
    CommandError,
    Workload,
    WorkloadFile,
    format_env_file,
    render_env,
    render_front,
)

logger = logging.getLogger(__name__)

RESTART_APPS_ON = frozenset({ENV_FILE, CONNECTOR_CERT, CONNECTOR_KEY, CA_BUNDLE, DATABASE_CA})
"""Files the management and connector apps read at start (the CA bundle: remote write, OIDC).

libpq reads the database CA at every new connection; the restart makes the pooled ones,
verified with the previous CA, go too."""
RELOAD_FRONT_ON = frozenset(
    {FRONT_CONFIG, MANAGEMENT_CERT, MANAGEMENT_KEY, CONNECTOR_CERT, CONNECTOR_KEY}
)
"""Files HAProxy rereads on SIGUSR2, without dropping connections."""


class ClusterManagerCharm(ops.CharmBase):
    """Run the cluster manager's TLS front, management and connector services in one container."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.container = self.unit.get_container(CONTAINER)
        self.workload = Workload(self.container)
        self.database = DatabaseRequirer(
            self, DATABASE_RELATION, DATABASE_NAME, tls_ca_file=DATABASE_CA
        )
        self.tls = ManagementTLS(self, self._management_domain)
        self.oidc = OIDCLogin(self, self._management_domain)
        self.route = TraefikRouteRequirer(self, INGRESS_RELATION)
        self.identity = ConnectorIdentityStore(self.model, PEER_RELATION)
        self.observability = Observability(self)
        self.actions = ClusterManagerActions(
            self,
            self.workload,
            self.identity,
            not_ready=self._not_ready_reason,
            connector_domain=self._connector_domain,
            reconcile=self._reconcile,
        )
        self._migration_error = ""
        for event in self._reconcile_events():
            framework.observe(event, self._on_event)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        framework.observe(self.on.update_status, self._prune_history)

    def _reconcile_events(self) -> list[ops.BoundEvent]:
        on = self.on
        events = [
            on.install,
            on.upgrade_charm,
            on.config_changed,
            on.leader_elected,
            on.update_status,
            on.secret_changed,
            on[CONTAINER].pebble_ready,
            on[CONTAINER].pebble_check_failed,
            on[CONTAINER].pebble_check_recovered,
            self.tls.certificates.on.certificate_available,
            self.tls.trust.on.certificate_set_updated,
            self.tls.trust.on.certificates_removed,
            *self.oidc.events,
        ]
        for name in (
            PEER_RELATION,
            DATABASE_RELATION,
            CERTIFICATES_RELATION,
            CA_RELATION,
            INGRESS_RELATION,
            OAUTH_RELATION,
            *OBSERVABILITY_RELATIONS,
        ):
            relation = on[name]
            events += [
                relation.relation_created,
                relation.relation_joined,
                relation.relation_changed,
                relation.relation_departed,
                relation.relation_broken,
            ]
        return events

    def _on_event(self, _: ops.EventBase) -> None:
        self._reconcile()

    def _reconcile(self) -> None:
        """Bring the unit, the workload and the relation data to the desired state."""
        self.unit.set_ports(MANAGEMENT_PORT, CONNECTOR_PORT, METRICS_PORT)
        config = self._config()
        if self.unit.is_leader():
            self.database.request()
            if config is not None:
                self.identity.ensure(config.cluster_connector_domain)
            self.oidc.publish()
        self._reconcile_workload(self._facts())
        self.observability.reconcile(self.container)
        self._publish_unit_address(self._serving())
        if self.unit.is_leader() and config is not None:
            self._publish_route(config)

    def _reconcile_workload(self, facts: readiness.Facts) -> None:
        """Write the files, migrate, then start or refresh the services."""
        if not readiness.passes(readiness.PREREQUISITES, facts):
            return
        try:
            self.workload.prepare_directories()
            changed = self.workload.sync_files(self._files(facts))
            if self._ensure_schema(facts):
                self._apply_layer(changed)
        except (ops.pebble.ConnectionError, ops.pebble.APIError, ops.pebble.ChangeError) as e:
            # The container restarted under us; its pebble-ready event reconciles again.
            logger.warning("could not configure the workload container: %s", e)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        for status in readiness.unit_statuses(self._facts()):
            event.add_status(status)
        event.add_status(ops.ActiveStatus())

    def _prune_history(self, _: ops.UpdateStatusEvent) -> None:
        """Drop heartbeat history past its retention: the leader's work, on every update-status.

        After the reconcile (observed first). A failure is logged and the next update-status
        tries again; it never fails the hook.
        """
        if not self.unit.is_leader() or self._not_ready_reason() is not None:
            return
        try:
            result = self.workload.run_cli(["prune-history"], self.workload.settings() or {})
        except (CommandError, ops.pebble.ConnectionError) as error:
            logger.warning("pruning the heartbeat history failed: %s", error)
            return
        logger.info("pruned %s heartbeat history rows", result["removed"])

    # Inputs

    def _config(self) -> CharmConfig | None:
        try:
            return self.load_config(CharmConfig)
        except ValueError:
            return None

    def _management_domain(self) -> str | None:
        config = self._config()
        return config.management_api_domain if config else None

    def _connector_domain(self) -> str | None:
        config = self._config()
        return config.cluster_connector_domain if config else None

    def _facts(self) -> readiness.Facts:
        """Read everything the readiness checks decide on."""
        config, config_error, config_fix = None, "", ""
        try:
            config = self.load_config(CharmConfig)
        except InvalidOption as error:
            config_error, config_fix = str(error), f"{error.option}={error.example}"
        except ValueError as error:
            config_error = str(error)
        credentials = self.database.fetch()
        connected = self.container.can_connect()
        oidc, oidc_problem = self.oidc.read()
        stopped, failing = self._service_health() if connected else ((), ())
        return readiness.Facts(
            app_name=self.app.name,
            unit_name=self.unit.name,
            is_leader=self.unit.is_leader(),
            config=config,
            config_error=config_error,
            config_fix=config_fix,
            container_connected=connected,
            database_provider=self.database.provider_name,
            database_url=credentials.uri if credentials else None,
            database_tls=credentials.tls if credentials else False,
            database_ca=_pem(credentials.tls_ca) if credentials and credentials.tls else "",
            certificates_provider=self.tls.provider_name,
            management_tls=self.tls.material() if config else None,
            connector_identity=self.identity.get(),
            ingress_provider=self.route.provider_name,
            schema_migrated=self._schema_is_current(credentials),
            oidc=oidc,
            oidc_problem=oidc_problem,
            migration_error=self._migration_error,
            stopped_services=stopped,
            failing_checks=failing,
        )

    def _service_health(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Return the enabled services that do not run and the checks that are down."""
        services = self.container.get_services()
        stopped = tuple(
            name
            for name, info in services.items()
            if info.startup == ops.pebble.ServiceStartup.ENABLED and not info.is_running()
        )
        checks = self.container.get_checks()
        failing = tuple(
            name for name, info in checks.items() if info.status == ops.pebble.CheckStatus.DOWN
        )
        return stopped, failing

    def _not_ready_reason(self) -> str | None:
        """Return why the workload CLI cannot run yet, None when it can."""
        facts = self._facts()
        blocking = readiness.failures((*readiness.PREREQUISITES, *readiness.SERVING), facts)
        return blocking[0].message if blocking else None

    @property
    def _peer_app_data(self) -> ops.RelationDataContent | None:
        peer = self.model.get_relation(PEER_RELATION)
        return peer.data[self.app] if peer else None

    def _schema_is_current(self, credentials: DatabaseCredentials | None) -> bool:
        data = self._peer_app_data
        if credentials is None or data is None or not data.get(SCHEMA_VERSION_KEY):
            return False
        return data.get(SCHEMA_DATABASE_KEY) == _database_identity(credentials)

    # Outputs

    def _files(self, facts: readiness.Facts) -> list[WorkloadFile]:
        """Return every file of the container, as the current facts want it."""
        config, tls, identity = facts.config, facts.management_tls, facts.connector_identity
        assert config and facts.database_url and tls and identity  # noqa: S101 (PREREQUISITES)
        env = render_env(config, facts.database_url, self.observability.remote_write_urls())
        if facts.oidc is not None:
            env.update(facts.oidc.to_env(config.management_api_domain))
        front = render_front(config, facts.ingress_provider is not None)
        return [
            WorkloadFile(ENV_FILE, format_env_file(env), 0o600),
            WorkloadFile(FRONT_CONFIG, front),
            WorkloadFile(MANAGEMENT_CERT, tls.chain),
            WorkloadFile(MANAGEMENT_KEY, tls.private_key, 0o600),
            WorkloadFile(CONNECTOR_CERT, identity.certificate),
            WorkloadFile(CONNECTOR_KEY, identity.private_key, 0o600),
            WorkloadFile(
                CA_BUNDLE, self.tls.ca_bundle() + (facts.oidc.ca_chain if facts.oidc else "")
            ),
            WorkloadFile(DATABASE_CA, facts.database_ca if facts.database_tls else None),
        ]

    def _ensure_schema(self, facts: readiness.Facts) -> bool:
        """Migrate from the leader before the services start; return if the schema is current.

        The leader migrates when the current database has not been migrated yet, whenever
        its own services are not running (first start, and every new image after an upgrade)
        and before it plans a new layer (an upgrade that found an older revision's plan).
        """
        if not self.unit.is_leader():
            return facts.schema_migrated
        if (
            facts.schema_migrated
            and MANAGEMENT_SERVICE in self.workload.running_services()
            and is_planned(self.container.get_plan())
        ):
            return True
        settings = self.workload.settings() or {}
        try:
            result = self.workload.run_cli(["migrate"], settings)
        except CommandError as error:
            logger.error("database migration failed: %s", error.message)
            self._migration_error = error.message
            return False
        credentials = self.database.fetch()
        data = self._peer_app_data
        if data is not None and credentials is not None:
            data[SCHEMA_VERSION_KEY] = str(result["version"])
            data[SCHEMA_DATABASE_KEY] = _database_identity(credentials)
        logger.info("database schema at version %s", result["version"])
        return True

    def _apply_layer(self, changed: set[str]) -> None:
        """Plan the layer; restart or reload only the services whose files changed."""
        plan = self.container.get_plan()
        if not is_planned(plan):
            self._plan(plan)
            return
        running = self.workload.running_services()
        restart: list[str] = []
        if changed & RESTART_APPS_ON:
            restart += APP_SERVICES
        if changed & RELOAD_FRONT_ON and FRONT_SERVICE in running:
            self.container.send_signal("SIGUSR2", FRONT_SERVICE)
        if restart:
            self.container.restart(*restart)
        stopped = [name for name in (FRONT_SERVICE, *APP_SERVICES) if name not in running]
        if stopped := [name for name in stopped if name not in restart]:
            self.container.start(*stopped)

    def _plan(self, plan: ops.pebble.Plan) -> None:
        """Add the layer and start it, retiring what an older revision planned, if anything."""
        self.container.add_layer(LAYER_NAME, build_layer(), combine=True)
        retired = retirement(plan)
        if not retired.services and not retired.checks:
            self.container.replan()
            return
        self.container.add_layer(LAYER_NAME, retired, combine=True)
        if stale := sorted(set(retired.services) & self.workload.running_services()):
            self.container.stop(*stale)
        # Not a replan: Pebble restarts every service whose definition changed, retired ones
        # included, which would run the old front next to HAProxy on the same ports.
        self.container.restart(FRONT_SERVICE, *APP_SERVICES)

    def _serving(self) -> bool:
        """Return whether all three services run, so that Traefik may send us traffic."""
        if not self.container.can_connect():
            return False
        running = self.workload.running_services()
        return all(name in running for name in (FRONT_SERVICE, *APP_SERVICES))

    def _publish_unit_address(self, serving: bool) -> None:
        """Tell the leader, through the peer relation, whether Traefik may send us traffic."""
        peer = self.model.get_relation(PEER_RELATION)
        if peer is None:
            return
        databag = peer.data[self.unit]
        address = unit_address()
        if serving and databag.get(UNIT_ADDRESS_KEY) != address:
            databag[UNIT_ADDRESS_KEY] = address
        elif not serving and UNIT_ADDRESS_KEY in databag:
            del databag[UNIT_ADDRESS_KEY]

    def _publish_route(self, config: CharmConfig) -> None:
        """Route both domains to every serving unit (leader only)."""
        peer = self.model.get_relation(PEER_RELATION)
        if peer is None:
            return
        addresses = [
            address
            for unit in (self.unit, *peer.units)
            if (address := peer.data[unit].get(UNIT_ADDRESS_KEY))
        ]
        if not addresses:
            return
        route = build_route_config(
            self.model.name,
            self.app.name,
            config.management_api_domain,
            config.cluster_connector_domain,
            addresses,
        )
        self.route.submit(route, raw=True)


def _pem(text: str) -> str:
    """Return PEM text with one final newline, empty when there is none."""
    return f"{text.strip()}\n" if text.strip() else ""


def _database_identity(credentials: DatabaseCredentials) -> str:
    """Return what identifies a database across hooks: its name and primary endpoint."""
    return f"{credentials.database}@{credentials.endpoints[0]}"


if __name__ == "__main__":  # pragma: nocover
    ops.main(ClusterManagerCharm)
