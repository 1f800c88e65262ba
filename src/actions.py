"""Operator actions: typed parameters, and handlers that run the workload CLI in the container.

Each handler loads its parameters with `load_params(..., errors="fail")`, refuses clearly when
the unit cannot run the command yet, runs `python3 -m cluster_manager <command> --json` with
the settings of the pushed env file, and maps the CLI's exit codes to `event.fail` messages.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Sequence
from typing import Any

import ops
from cluster_manager.exit_codes import EXIT_DATABASE_UNAVAILABLE

import readiness
from connector_identity import ConnectorIdentityStore
from constants import PUBLIC_CONNECTOR_PORT
from workload import CommandError, Workload

# The key of the pinned fingerprint in `microcloud cluster-manager set`, by MicroCloud release
# (canonical/microcloud cmd/microcloud/cluster_manager.go): dashed in 3.1 and 3.2, where the
# cluster manager first shipped, with underscores from 3.3. `addresses` is the same in all.
FINGERPRINT_KEY = "certificate_fingerprint"
FINGERPRINT_KEY_3_1 = "certificate-fingerprint"


@dataclasses.dataclass(frozen=True)
class EnrollClusterParams:
    """Parameters of enroll-cluster."""

    cluster: str
    description: str = ""
    expiry: str = ""
    """RFC 3339 time; empty for the join-token-expiry config option."""

    def __post_init__(self) -> None:
        """Reject an empty name and an expiry that is malformed or in the past."""
        _require_name("cluster", self.cluster)
        if self.expiry:
            try:
                expiry = datetime.datetime.fromisoformat(self.expiry)
            except ValueError:
                raise ValueError(
                    f"expiry {self.expiry!r} is not an RFC 3339 time like 2030-01-31T12:00:00Z"
                ) from None
            if expiry.tzinfo is None:
                raise ValueError(f"expiry {self.expiry!r} needs a time zone, e.g. a final Z")
            if expiry <= datetime.datetime.now(datetime.UTC):
                raise ValueError(f"expiry {self.expiry} is in the past")


@dataclasses.dataclass(frozen=True)
class ClusterParams:
    """Parameters of revoke-token and remove-cluster."""

    cluster: str

    def __post_init__(self) -> None:
        """Reject an empty name."""
        _require_name("cluster", self.cluster)


@dataclasses.dataclass(frozen=True)
class CreateApiTokenParams:
    """Parameters of create-api-token."""

    name: str

    def __post_init__(self) -> None:
        """Reject an empty name."""
        _require_name("name", self.name)


@dataclasses.dataclass(frozen=True)
class RotateParams:
    """Parameters of rotate-connector-certificate."""

    confirm: bool = False


def _cluster_command(key: str, fingerprint: str, address: str | None) -> str:
    """What an enrolled cluster runs to trust the new connector certificate (and address)."""
    steps = [f"microcloud cluster-manager set addresses {address}"] if address else []
    steps.append(f"microcloud cluster-manager set {key} {fingerprint}")
    return " && ".join(steps)


def _require_name(param: str, value: str) -> None:
    if not value.strip():
        raise ValueError(f"{param} must not be empty")


class ClusterManagerActions(ops.Object):
    """Handlers of every action in actions.yaml."""

    def __init__(
        self,
        charm: ops.CharmBase,
        workload: Workload,
        identity: ConnectorIdentityStore,
        facts: Callable[[], readiness.Facts],
    ):
        """Observe the actions.

        Args:
            charm: the charm; it reconciles after a rotation (it observes that action too).
            workload: the container operations.
            identity: the connector identity store.
            facts: the hook's snapshot of the facts, which status reads too.
        """
        super().__init__(charm, "actions")
        self._charm = charm
        self._workload = workload
        self._identity = identity
        self._facts = facts
        on = charm.on
        observe = self.framework.observe
        observe(on["enroll-cluster"].action, self._on_enroll_cluster)
        observe(on["list-clusters"].action, self._on_list_clusters)
        observe(on["list-tokens"].action, self._on_list_tokens)
        observe(on["revoke-token"].action, self._on_revoke_token)
        observe(on["remove-cluster"].action, self._on_remove_cluster)
        observe(on["show-connector-fingerprint"].action, self._on_show_fingerprint)
        observe(on["rotate-connector-certificate"].action, self._on_rotate)
        observe(on["create-api-token"].action, self._on_create_api_token)

    def _on_enroll_cluster(self, event: ops.ActionEvent) -> None:
        params = event.load_params(EnrollClusterParams, errors="fail")
        args = ["create-join-token", params.cluster]
        if params.description:
            args += ["--description", params.description]
        if params.expiry:
            args += ["--expiry", params.expiry]
        if (result := self._run(event, args)) is None:
            return
        event.set_results(
            {
                "cluster": result["cluster_name"],
                "token": result["token"],
                "expires-at": result["expires_at"],
                "join-command": result["join_command"],
            }
        )

    def _on_list_clusters(self, event: ops.ActionEvent) -> None:
        if (result := self._run(event, ["list-clusters"])) is not None:
            event.set_results({"clusters": json.dumps(result), "count": len(result)})

    def _on_list_tokens(self, event: ops.ActionEvent) -> None:
        if (result := self._run(event, ["list-tokens"])) is not None:
            event.set_results({"tokens": json.dumps(result), "count": len(result)})

    def _on_revoke_token(self, event: ops.ActionEvent) -> None:
        params = event.load_params(ClusterParams, errors="fail")
        if self._run(event, ["revoke-token", params.cluster]) is not None:
            event.set_results({"cluster": params.cluster, "revoked": True})

    def _on_remove_cluster(self, event: ops.ActionEvent) -> None:
        params = event.load_params(ClusterParams, errors="fail")
        if self._run(event, ["remove-cluster", params.cluster]) is not None:
            event.set_results({"cluster": params.cluster, "removed": True})

    def _on_show_fingerprint(self, event: ops.ActionEvent) -> None:
        if (result := self._run(event, ["show-connector-fingerprint"])) is not None:
            event.set_results({"fingerprint": result["fingerprint"]})

    def _on_create_api_token(self, event: ops.ActionEvent) -> None:
        params = event.load_params(CreateApiTokenParams, errors="fail")
        if (result := self._run(event, ["create-api-token", params.name])) is not None:
            event.set_results({"name": result["name"], "token": result["token"]})

    def _on_rotate(self, event: ops.ActionEvent) -> None:
        params = event.load_params(RotateParams, errors="fail")
        if not params.confirm:
            event.fail(
                "rotating the connector certificate cuts off every enrolled cluster until it "
                "updates its certificate fingerprint; run again with confirm=true"
            )
            return
        if not self._charm.unit.is_leader():
            event.fail("run rotate-connector-certificate on the leader unit")
            return
        config = self._facts().config
        if config is None:
            event.fail("fix the configuration first (see juju status)")
            return
        domain = config.cluster_connector_domain
        previous = self._identity.get()
        try:
            identity = self._identity.rotate(domain)
        except RuntimeError as error:
            event.fail(str(error))
            return
        # After a domain change the clusters must also be told where the connector moved.
        moved = previous is not None and not previous.matches(domain)
        address = f"{domain}:{PUBLIC_CONNECTOR_PORT}" if moved else None
        command = _cluster_command(FINGERPRINT_KEY, identity.fingerprint, address)
        command_3_1 = _cluster_command(FINGERPRINT_KEY_3_1, identity.fingerprint, address)
        event.set_results(
            {
                "fingerprint": identity.fingerprint,
                "previous-fingerprint": previous.fingerprint if previous else "",
                "command": command,
                "command-microcloud-3-1-and-3-2": command_3_1,
                "message": (
                    "the connector certificate was replaced; on one member of every enrolled"
                    f" cluster run: {command} (MicroCloud 3.3 and later) or {command_3_1}"
                    " (MicroCloud 3.1 and 3.2)"
                ),
            }
        )

    def _run(self, event: ops.ActionEvent, args: Sequence[str]) -> Any:
        """Run a CLI command; on failure fail the action and return None."""
        reason = readiness.cli_blocker(self._facts())
        settings = self._workload.settings() if reason is None else None
        if settings is None:
            event.fail(f"cannot run {args[0]} yet: {reason or 'the workload is not configured'}")
            return None
        try:
            return self._workload.run_cli(args, settings)
        except CommandError as error:
            if error.exit_code == EXIT_DATABASE_UNAVAILABLE:
                event.fail(f"database unavailable: {error.message}")
            else:
                event.fail(error.message)
            return None
