"""Typed settings, read once from `MCM_*` environment variables (see docs/workload-contract.md)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from .front.rate_limits import RateLimitError, parse_rate_limits

PREFIX = "MCM_"
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Runtime configuration shared by the CLI and both apps."""

    database_url: str
    connector_domain: str
    connector_port: int = 443
    connector_cert_file: Path = Path("/etc/cluster-manager/tls/connector.crt")
    heartbeat_interval: int = 60
    """Seconds we suggest to clusters (`next_update_in_seconds`); MicroCloud ignores it."""
    offline_after: int = 180
    """Seconds without a heartbeat after which a cluster is offline. Independent of
    `heartbeat_interval`: the cadence is the cluster's own `update_interval_seconds`."""
    join_token_expiry: int = 86400
    history_retention_days: int = 30
    connector_max_body_mib: int = 64
    """Largest connector request body in MiB; heartbeats carry every member's LXD metrics."""
    rate_limit_connector: str = "60/minute"
    rate_limit_management: str = "600/minute"
    log_level: str = "info"
    run_dir: Path = Path("/run/cluster-manager")
    workers: int = 3
    db_pool_size: int = 4
    remote_write_urls: str = ""
    """Comma-separated Prometheus remote-write URLs for the clusters' LXD metrics; empty = off."""
    remote_write_queue_size: int = 1000
    """Heartbeats waiting to be forwarded, per worker process; beyond it they are dropped."""
    ca_bundle_file: Path = Path("/etc/cluster-manager/tls/ca-bundle.crt")
    """Extra CA certificates trusted for outgoing TLS (remote write), besides the system's."""
    metrics_port: int = 9102
    """Plain-HTTP port where the front serves this unit's own /metrics."""
    grafana_url: str = ""
    """Base URL of Grafana; when set, the UI links each cluster to its dashboard."""
    oidc_issuer: str = ""
    """OpenID Connect issuer URL; the web UI login is off while it is empty."""
    oidc_client_id: str = ""
    oidc_client_secret: str = dataclasses.field(default="", repr=False)
    """Empty for a public client (PKCE only)."""
    oidc_audience: str = ""
    """Sent as `audience` in the authorization request (Auth0); empty = not sent."""
    oidc_groups_claim: str = "mcm-idp-groups"
    oidc_admin_group: str = "admins"
    public_url: str = ""
    """`https://<management domain>`: the OIDC redirect URI and the allowed Origin."""
    session_lifetime: int = 7 * 86400
    """Seconds a browser session lasts at most, however often its tokens are refreshed."""

    @property
    def connector_address(self) -> str:
        """`host:port` that clusters are told to reach, as put in join tokens."""
        return f"{self.connector_domain}:{self.connector_port}"

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
        """Raise SettingsError on values no deployment should run with."""
        positive = {
            "CONNECTOR_PORT": self.connector_port,
            "HEARTBEAT_INTERVAL": self.heartbeat_interval,
            "OFFLINE_AFTER": self.offline_after,
            "JOIN_TOKEN_EXPIRY": self.join_token_expiry,
            "CONNECTOR_MAX_BODY_MIB": self.connector_max_body_mib,
            "HISTORY_RETENTION_DAYS": self.history_retention_days,
            "WORKERS": self.workers,
            "DB_POOL_SIZE": self.db_pool_size,
            "SESSION_LIFETIME": self.session_lifetime,
            "REMOTE_WRITE_QUEUE_SIZE": self.remote_write_queue_size,
        }
        for name, value in positive.items():
            if value <= 0:
                raise SettingsError(f"{PREFIX}{name} must be positive, got {value}")
        if self.connector_port > 65535:
            raise SettingsError(f"{PREFIX}CONNECTOR_PORT out of range: {self.connector_port}")
        self._validate_observability()
        for name, url in (("OIDC_ISSUER", self.oidc_issuer), ("PUBLIC_URL", self.public_url)):
            if url and not url.startswith(("http://", "https://")):
                raise SettingsError(f"{PREFIX}{name}: {url!r} is not an http(s) URL")
        if bool(self.oidc_issuer) != bool(self.oidc_client_id):
            raise SettingsError(f"{PREFIX}OIDC_ISSUER and {PREFIX}OIDC_CLIENT_ID go together")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(f"{PREFIX}LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        for name, limit in (
            ("RATE_LIMIT_CONNECTOR", self.rate_limit_connector),
            ("RATE_LIMIT_MANAGEMENT", self.rate_limit_management),
        ):
            try:
                parse_rate_limits(limit)
            except RateLimitError as error:
                raise SettingsError(f"{PREFIX}{name}: {error}") from None

    def _validate_observability(self) -> None:
        if not 0 < self.metrics_port < 65536:
            raise SettingsError(f"{PREFIX}METRICS_PORT out of range: {self.metrics_port}")
        urls = [("REMOTE_WRITE_URLS", url) for url in self.remote_write_targets]
        for name, url in [*urls, ("GRAFANA_URL", self.grafana_url)]:
            if url and not url.startswith(("http://", "https://")):
                raise SettingsError(f"{PREFIX}{name}: {url!r} is not an http(s) URL")


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
    """Parse `KEY=VALUE` lines; blank lines and `#` comments are skipped, no shell quoting."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value
    return values


def render_env_file(values: Mapping[str, str]) -> str:
    """Inverse of `read_env_file`, for the charm and the local run mode."""
    lines = []
    for key, value in sorted(values.items()):
        if "\n" in value or "\n" in key:
            raise SettingsError(f"{key}: values may not contain newlines")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"
