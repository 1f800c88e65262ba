"""Typed charm configuration, mirroring config.yaml and validated on load."""

from __future__ import annotations

import dataclasses
import re

from cluster_manager.front import RateLimitError, parse_rate_limits

LOG_LEVELS = ("debug", "info", "warning", "error")
# The bounds of every integer option; config.yaml states each in its description.
RANGES: dict[str, tuple[int, int]] = {
    "heartbeat-interval": (10, 3600),
    # Seconds. The default spans three of MicroCloud's default 60 s intervals; the low end
    # serves fleets whose clusters were set to beat faster (update_interval_seconds).
    "offline-after": (30, 86400),
    "join-token-expiry": (60, 30 * 24 * 3600),
    # MiB. A heartbeat carries every member's LXD metrics, about 10 KB per instance.
    "connector-max-body-size": (1, 1024),
}

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


@dataclasses.dataclass(frozen=True)
class CharmConfig:
    """The charm's configuration options (dashes in option names become underscores)."""

    management_api_domain: str = ""
    """Host name of the management API and UI; certificate name and Traefik SNI route."""
    cluster_connector_domain: str = ""
    """Host name clusters connect to; in join tokens and the connector certificate."""
    heartbeat_interval: int = 60
    """Seconds we suggest between heartbeats (`next_update_in_seconds`); MicroCloud ignores it."""
    offline_after: int = 180
    """Seconds without a heartbeat after which a cluster is shown offline."""
    join_token_expiry: int = 86400
    """Default join token lifetime in seconds."""
    connector_max_body_size: int = 64
    """MiB a connector request body may hold (the app and the TLS front both refuse more)."""
    rate_limit_connector: str = "60/minute"
    """Rate limit of the connector, per enrolled cluster certificate, else per address."""
    rate_limit_management: str = "600/minute"
    """Rate limit of the management API, per client address."""
    log_level: str = "info"
    """Log level of the workload services."""
    grafana_url: str = ""
    """Base URL of Grafana; the UI then links each cluster to its dashboard."""

    def __post_init__(self) -> None:
        """Validate every option; the message names the option and what to set."""
        for option, value in (
            ("management-api-domain", self.management_api_domain),
            ("cluster-connector-domain", self.cluster_connector_domain),
        ):
            if not value:
                raise ValueError(f"set the {option} config option")
            if not _DOMAIN.match(value):
                raise ValueError(f"{option} {value!r} is not a valid DNS name")
        if self.management_api_domain == self.cluster_connector_domain:
            raise ValueError("management-api-domain and cluster-connector-domain must differ")
        for option, bounds in RANGES.items():
            _check_range(option, getattr(self, option.replace("-", "_")), bounds)
        for option, value in (
            ("rate-limit-connector", self.rate_limit_connector),
            ("rate-limit-management", self.rate_limit_management),
        ):
            try:
                parse_rate_limits(value)
            except RateLimitError as error:
                raise ValueError(f"{option} {error}") from None
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log-level must be one of {', '.join(LOG_LEVELS)}")
        if self.grafana_url and not _URL.match(self.grafana_url):
            raise ValueError(f"grafana-url {self.grafana_url!r} is not an http(s) URL")


def _check_range(option: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{option} must be between {low} and {high}, got {value}")
