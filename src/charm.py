#!/usr/bin/env python3
"""Juju charm for the MicroCloud Cluster Manager on Kubernetes.

Every event funnels into `_reconcile`: it takes one snapshot of the facts (config, relations,
secrets, the container: `facts()`, read once per hook), plans the container's files and
service operations from it with pure functions (plan.py), applies them and publishes the
relation data. The unit status (`_on_collect_status`), the actions and the scheduled prune
read the same snapshot, judged by the same named readiness checks (readiness.py).
"""

from __future__ import annotations

import dataclasses
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
    CA_RELATION,
    CERTIFICATES_RELATION,
    CONNECTOR_PORT,
    CONTAINER,
    DATABASE_CA,
    DATABASE_NAME,
    DATABASE_RELATION,
    FRONT_SERVICE,
    INGRESS_RELATION,
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
from plan import service_changes, workload_files
from tls import ManagementTLS
from workload import (
    CommandError,
    Workload,
)

logger = logging.getLogger(__name__)


class ClusterManagerCharm(ops.CharmBase):
    """Run the cluster manager's TLS front, management and connector services in one container."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._config_read: tuple[CharmConfig | None, str, str] | None = None
        self._snapshot: readiness.Facts | None = None
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
        self.actions = ClusterManagerActions(self, self.workload, self.identity, self.facts)
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
            # After the action's own handler (observed first): serve the new certificate.
            on["rotate-connector-certificate"].action,
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
        self._snapshot = None  # the writes above (or an action before us) changed facts
        self._reconcile_workload(self.facts())
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
            changed = self.workload.sync_files(workload_files(facts))
            if self._ensure_schema(facts):
                self._apply_layer(changed)
                # The outcome of the plan: what runs now.
                stopped, failing = self._service_health()
                self._snapshot = dataclasses.replace(
                    self.facts(), stopped_services=stopped, failing_checks=failing
                )
        except (ops.pebble.ConnectionError, ops.pebble.APIError, ops.pebble.ChangeError) as e:
            # The container restarted under us; its pebble-ready event reconciles again.
            logger.warning("could not configure the workload container: %s", e)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        for status in readiness.unit_statuses(self.facts()):
            event.add_status(status)
        event.add_status(ops.ActiveStatus())

    def _prune_history(self, _: ops.UpdateStatusEvent) -> None:
        """Drop heartbeat history past its retention: the leader's work, on every update-status.

        After the reconcile (observed first). A failure is logged and the next update-status
        tries again; it never fails the hook.
        """
        if not self.unit.is_leader() or readiness.cli_blocker(self.facts()) is not None:
            return
        try:
            result = self.workload.run_cli(["prune-history"], self.workload.settings() or {})
        except (CommandError, ops.pebble.ConnectionError) as error:
            logger.warning("pruning the heartbeat history failed: %s", error)
            return
        logger.info("pruned %s heartbeat history rows", result["removed"])

    # Inputs

    def facts(self) -> readiness.Facts:
        """This hook's snapshot of everything the charm decides on, read on first use."""
        if self._snapshot is None:
            self._snapshot = self._read_facts()
        return self._snapshot

    def _config(self) -> CharmConfig | None:
        return self._load_config()[0]

    def _load_config(self) -> tuple[CharmConfig | None, str, str]:
        """The config (None when invalid), the error and the `option=example` fix; read once."""
        if self._config_read is None:
            try:
                self._config_read = (self.load_config(CharmConfig), "", "")
            except InvalidOption as error:
                self._config_read = (None, str(error), f"{error.option}={error.example}")
            except ValueError as error:
                self._config_read = (None, str(error), "")
        return self._config_read

    def _management_domain(self) -> str | None:
        config = self._config()
        return config.management_api_domain if config else None

    def _read_facts(self) -> readiness.Facts:
        config, config_error, config_fix = self._load_config()
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
            ca_bundle=self.tls.ca_bundle(),
            connector_identity=self.identity.get(),
            ingress_provider=self.route.provider_name,
            remote_write_urls=tuple(self.observability.remote_write_urls()),
            database_identity=_database_identity(credentials) if credentials else None,
            schema_migrated=self._schema_is_current(credentials),
            oidc=oidc,
            oidc_problem=oidc_problem,
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
            self._snapshot = dataclasses.replace(facts, migration_error=error.message)
            return False
        data = self._peer_app_data
        if data is not None and facts.database_identity is not None:
            data[SCHEMA_VERSION_KEY] = str(result["version"])
            data[SCHEMA_DATABASE_KEY] = facts.database_identity
        logger.info("database schema at version %s", result["version"])
        self._snapshot = dataclasses.replace(facts, schema_migrated=True)
        return True

    def _apply_layer(self, changed: set[str]) -> None:
        """Plan the layer; restart or reload only the services whose files changed."""
        plan = self.container.get_plan()
        if not is_planned(plan):
            self._plan(plan)
            return
        changes = service_changes(changed, self.workload.running_services())
        if changes.reload_front:
            self.container.send_signal("SIGUSR2", FRONT_SERVICE)
        if changes.restart:
            self.container.restart(*changes.restart)
        if changes.start:
            self.container.start(*changes.start)

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
        """Return whether every service runs, so that Traefik may send us traffic."""
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
