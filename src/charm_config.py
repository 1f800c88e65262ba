"""Typed charm configuration, mirroring config.yaml and validated on load."""

from __future__ import annotations

import dataclasses
import re

LOG_LEVELS = ("debug", "info", "warning", "error")
HEARTBEAT_RANGE = (10, 3600)
JOIN_TOKEN_EXPIRY_RANGE = (60, 30 * 24 * 3600)

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
# The rate limit syntax of the `limits` library the workload parses it with:
# "<amount>/<unit>", "<amount> per <n> <unit>s", several joined by ",", ";" or "|".
_ONE_LIMIT = r"\s*\d+\s*(/|\s+per\s+)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*"
_RATE_LIMIT = re.compile(rf"^{_ONE_LIMIT}([,;|]{_ONE_LIMIT})*$")
_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


@dataclasses.dataclass(frozen=True)
class CharmConfig:
    """The charm's configuration options (dashes in option names become underscores)."""

    management_api_domain: str = ""
    """Host name of the management API and UI; certificate name and Traefik SNI route."""
    cluster_connector_domain: str = ""
    """Host name clusters connect to; in join tokens and the connector certificate."""
    heartbeat_interval: int = 60
    """Seconds between two heartbeats of a cluster."""
    join_token_expiry: int = 86400
    """Default join token lifetime in seconds."""
    rate_limit_connector: str = "60/minute"
    """Rate limit of the connector, per cluster certificate."""
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
        _check_range("heartbeat-interval", self.heartbeat_interval, HEARTBEAT_RANGE)
        _check_range("join-token-expiry", self.join_token_expiry, JOIN_TOKEN_EXPIRY_RANGE)
        for option, value in (
            ("rate-limit-connector", self.rate_limit_connector),
            ("rate-limit-management", self.rate_limit_management),
        ):
            if not _RATE_LIMIT.match(value):
                raise ValueError(f"{option} {value!r} is not a rate limit like 60/minute")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log-level must be one of {', '.join(LOG_LEVELS)}")
        if self.grafana_url and not _URL.match(self.grafana_url):
            raise ValueError(f"grafana-url {self.grafana_url!r} is not an http(s) URL")


def _check_range(option: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{option} must be between {low} and {high}, got {value}")
