"""Typed charm configuration, mirroring config.yaml and validated on load."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
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

DEFAULT_TRUSTED_PROXIES = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7"
"""Where Kubernetes pod networks are allocated from.

The private ranges of every common CNI, the shared range 100.64.0.0/10 (EKS custom networking,
carrier-grade NAT) and IPv6 unique-local addresses (the IPv6 pod ranges of Calico, Cilium,
kubeadm and Canonical Kubernetes); clusters whose pods get global IPv6 addresses (EKS IPv6) list
theirs. Traefik connects from its pod address, which changes whenever its pod is recreated and
is not in the traefik-route data, so we trust the ranges, not an address.
"""

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
    trusted_proxies: str = DEFAULT_TRUSTED_PROXIES
    """Comma-separated CIDRs whose PROXY protocol header the front believes (Traefik's pods)."""

    def __post_init__(self) -> None:
        """Validate every option; the message names the option and what to set."""
        for option, value in (
            ("management-api-domain", self.management_api_domain),
            ("cluster-connector-domain", self.cluster_connector_domain),
        ):
            if not value:
                raise InvalidOption(option, f"{option} is not set", "<host name>")
            if not _DOMAIN.match(value):
                raise InvalidOption(
                    option, f"{option} {value!r} is not a valid DNS name", "<host name>"
                )
        if self.management_api_domain == self.cluster_connector_domain:
            raise InvalidOption(
                "cluster-connector-domain",
                "management-api-domain and cluster-connector-domain must differ",
                "<host name>",
            )
        for option, bounds in RANGES.items():
            _check_range(option, getattr(self, option.replace("-", "_")), bounds)
        for option, value in (
            ("rate-limit-connector", self.rate_limit_connector),
            ("rate-limit-management", self.rate_limit_management),
        ):
            try:
                parse_rate_limits(value)
            except RateLimitError as error:
                raise InvalidOption(option, f"{option} {error}", "60/minute") from None
        if self.log_level not in LOG_LEVELS:
            raise InvalidOption(
                "log-level", f"log-level must be one of {', '.join(LOG_LEVELS)}", "info"
            )
        if self.grafana_url and not _URL.match(self.grafana_url):
            raise InvalidOption(
                "grafana-url",
                f"grafana-url {self.grafana_url!r} is not an http(s) URL",
                "https://grafana.example.com",
            )
        self.trusted_proxy_networks  # noqa: B018 (validates)

    @property
    def trusted_proxy_networks(self) -> tuple[str, ...]:
        """The trusted-proxies option as normalised networks, in the order given."""
        return parse_networks(self.trusted_proxies)


class InvalidOption(ValueError):
    """An option has an unusable value; `option` is the one to set, `example` a sample value."""

    def __init__(self, option: str, message: str, example: str = "…"):
        super().__init__(message)
        self.option = option
        self.example = example


def parse_networks(text: str) -> tuple[str, ...]:
    """Return the networks of a comma-separated CIDR list (at least one), normalised.

    Raises:
        InvalidOption: an entry is not a network address (host bits set, bad syntax).
    """
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise InvalidOption(
            "trusted-proxies",
            "trusted-proxies must list at least one CIDR",
            DEFAULT_TRUSTED_PROXIES,
        )
    networks: list[str] = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry)
        except ValueError:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f" (did you mean {ipaddress.ip_network(entry, strict=False)}?)"
            raise InvalidOption(
                "trusted-proxies", f"trusted-proxies: {entry!r} is not a CIDR{hint}"
            ) from None
        if str(network) not in networks:
            networks.append(str(network))
    return tuple(networks)


def _check_range(option: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise InvalidOption(
            option, f"{option} must be between {low} and {high}, got {value}", str(low)
        )
