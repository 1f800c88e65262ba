"""Typed settings, read once from `MCM_*` environment variables (see docs/workload-contract.md).

A setting that comes from a charm option (`cluster_manager.options`) takes its default and its
rules from the option table, so the workload accepts what the charm accepts; tests compare the
two. The other settings are the workload's own.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from .options import ENV_PREFIX, SETTING_OPTIONS, Options, check_setting, parse_env_file

PREFIX = ENV_PREFIX


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Runtime configuration shared by the CLI and both apps."""

    database_url: str = dataclasses.field(repr=False)
    """libpq URI; it holds the password, so it stays out of reprs (and logs)."""
    connector_domain: str
    connector_port: int = 443
    connector_cert_file: Path = Path("/etc/cluster-manager/tls/connector.crt")
    heartbeat_interval: int = Options.heartbeat_interval
    """Seconds we suggest to clusters (`next_update_in_seconds`); MicroCloud ignores it."""
    offline_after: int = Options.offline_after
    """Seconds without a heartbeat after which a cluster is offline. Independent of
    `heartbeat_interval`: the cadence is the cluster's own `update_interval_seconds`."""
    join_token_expiry: int = Options.join_token_expiry
    history_retention_days: int = 30
    connector_max_body_mib: int = Options.connector_max_body_size
    """Largest connector request body in MiB; heartbeats carry every member's LXD metrics."""
    rate_limit_connector: str = Options.rate_limit_connector
    rate_limit_management: str = Options.rate_limit_management
    log_level: str = Options.log_level
    run_dir: Path = Path("/run/cluster-manager")
    workers: int = 3
    db_pool_size: int = 4
    remote_write_urls: str = ""
    """Comma-separated Prometheus remote-write URLs for the clusters' LXD metrics; empty = off."""
    remote_write_queue_size: int = 16
    """Heartbeats waiting in the forwarder process; beyond it they are dropped and counted."""
    remote_write_outbox_bytes: int = 32 * 1024 * 1024
    """Most bytes of compressed remote-write requests waiting to be sent."""
    remote_write_max_request_bytes: int = 1024 * 1024
    """Most bytes of series in one remote-write request, before compression."""
    ca_bundle_file: Path = Path("/etc/cluster-manager/tls/ca-bundle.crt")
    """Extra CA certificates trusted for outgoing TLS (remote write), besides the system's."""
    metrics_port: int = 9102
    """Plain-HTTP port where the front serves this unit's own /metrics."""
    grafana_url: str = Options.grafana_url
    """Base URL of Grafana; when set, the UI links each cluster to its dashboard."""
    oidc_issuer: str = Options.oidc_issuer
    """OpenID Connect issuer URL; the web UI login is off while it is empty."""
    oidc_client_id: str = Options.oidc_client_id
    oidc_client_secret: str = dataclasses.field(default="", repr=False)
    """Empty for a public client (PKCE only)."""
    oidc_audience: str = Options.oidc_audience
    """Sent as `audience` in the authorization request (Auth0); empty = not sent."""
    oidc_groups_claim: str = Options.oidc_groups_claim
    oidc_admin_group: str = Options.oidc_admin_group
    public_url: str = ""
    """`https://<management domain>`: the OIDC redirect URI and the allowed Origin."""
    session_lifetime: int = 7 * 86400
    """Seconds a browser session lasts at most, however often its tokens are refreshed."""
    tunnel_secret: str = dataclasses.field(default="", repr=False)
    """Shared by the units: authenticates requests forwarded to a unit's tunnel process."""
    internal_address: str = ""
    """This unit's host name or address on the internal network, where the other units reach
    its tunnel process; empty means the host's FQDN."""
    tunnel_port: int = 9445
    """TLS port of the tunnel process's internal listener (the connector certificate)."""
    tunnel_timeout: int = 35
    """Seconds a request through a tunnel may take, queueing included, before it gets 504.
    Above microcloudd's 30 s LXD timeout, so that a slow LXD is reported by the cluster."""
    tunnel_queue_size: int = 16
    """Requests to one cluster waiting for its tunnel; beyond, 503 (the cluster answers one
    request at a time)."""
    tunnel_max_answer_mib: int = 16
    """Largest websocket message a cluster may send (its answer, base64); beyond, the tunnel
    closes."""
    tunnel_check_interval: int = 15
    """Seconds between the tunnel process's checks of its registrations: a socket whose cluster
    was removed (or which a newer socket on another unit replaced) closes within this."""
    tunnel_ping_interval: int = 70
    """Seconds of silence on a tunnel before a keep-alive ping; a peer that does not answer it
    within half as long is dropped. microcloudd answers pings only between requests, and a
    request may take its 30 s LXD timeout, so the half must stay above 30 s."""

    @property
    def connector_address(self) -> str:
        """`host:port` that clusters are told to reach, as put in join tokens."""
        return f"{self.connector_domain}:{self.connector_port}"

    @property
    def connector_key_file(self) -> Path:
        """The connector certificate's private key, beside it."""
        return self.connector_cert_file.with_suffix(".key")

    @property
    def tunnel_holder(self) -> str:
        """`host:port` of this unit's tunnel process, as other units reach it."""
        host = self.internal_address or socket.getfqdn()
        return f"[{host}]:{self.tunnel_port}" if ":" in host else f"{host}:{self.tunnel_port}"

    @property
    def connector_max_body_bytes(self) -> int:
        """`connector_max_body_mib` in bytes: the connector app's MAX_CONTENT_LENGTH."""
        return self.connector_max_body_mib * 1024 * 1024

    @property
    def remote_write_targets(self) -> tuple[str, ...]:
        """The remote-write URLs, in the order given; empty when forwarding is off."""
        return tuple(url.strip() for url in self.remote_write_urls.split(",") if url.strip())

    @property
    def oidc_enabled(self) -> bool:
        """Whether the browser login is configured (issuer and client ID are set)."""
        return bool(self.oidc_issuer and self.oidc_client_id)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment, after the file named by `MCM_ENV_FILE`."""
        env = dict(os.environ if environ is None else environ)
        env_file = env.get(f"{PREFIX}ENV_FILE")
        if env_file:
            env = {**read_env_file(Path(env_file)), **env}
        return cls._from_mapping(env)

    @classmethod
    def _from_mapping(cls, env: Mapping[str, str]) -> Settings:
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is None or raw == "":
                if field.default is dataclasses.MISSING:
                    raise SettingsError(f"{PREFIX}{field.name.upper()} is required")
                continue
            values[field.name] = _convert(field.name, field.type, raw)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise SettingsError on values no deployment should run with.

        Every integer must be positive; a setting that comes from an option obeys the option's
        rules (bounds, choices, syntax: `cluster_manager.options`).
        """
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "int" and value <= 0:
                raise SettingsError(f"{PREFIX}{field.name.upper()} must be positive, got {value}")
        for variable in SETTING_OPTIONS:
            try:
                check_setting(variable, getattr(self, setting_field(variable)))
            except ValueError as error:
                raise SettingsError(str(error)) from None
        if self.connector_port > 65535:
            raise SettingsError(f"{PREFIX}CONNECTOR_PORT out of range: {self.connector_port}")
        if self.tunnel_port > 65535:
            raise SettingsError(f"{PREFIX}TUNNEL_PORT out of range: {self.tunnel_port}")
        if self.metrics_port > 65535:
            raise SettingsError(f"{PREFIX}METRICS_PORT out of range: {self.metrics_port}")
        urls = [("REMOTE_WRITE_URLS", url) for url in self.remote_write_targets]
        for name, url in [*urls, ("PUBLIC_URL", self.public_url)]:
            if url and not url.startswith(("http://", "https://")):
                raise SettingsError(f"{PREFIX}{name} {url!r} is not an http(s) URL")
        if bool(self.oidc_issuer) != bool(self.oidc_client_id):
            raise SettingsError(f"{PREFIX}OIDC_ISSUER and {PREFIX}OIDC_CLIENT_ID go together")


def setting_field(variable: str) -> str:
    """The `Settings` field of an `MCM_*` variable."""
    return variable.removeprefix(PREFIX).lower()


def _convert(name: str, annotation: object, raw: str) -> object:
    kind = str(annotation)
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(
                f"{PREFIX}{name.upper()} must be an integer, got {raw!r}"
            ) from None
    if kind == "Path":
        return Path(raw)
    return raw.strip()


def read_env_file(path: Path) -> dict[str, str]:
    """Parse the env file at `path` (the format of `cluster_manager.options.parse_env_file`)."""
    try:
        return parse_env_file(path.read_text(), str(path))
    except ValueError as error:
        raise SettingsError(str(error)) from None
