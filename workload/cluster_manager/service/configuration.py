"""What this deployment runs with, and never a secret (design D5).

GET /1.0/configuration answers it and the UI's settings page shows it.

The published contract requires upstream's 19 keys. Keys whose upstream value is a secret
(`oidc_client_secret`, `db_connection_string`) or that describe machinery we do not have
(the token-bucket limiter's intervals) are present with an empty value and a description
saying why, so clients written for upstream keep working.
"""

from __future__ import annotations

from importlib import metadata

from ..connector_certificate import ConnectorCertificateError, connector_fingerprint
from ..front.rate_limits import parse_rate_limits
from ..settings import Settings

API_VERSION = "1.0"
_NOT_RETURNED = "Never returned by this API: it would disclose a secret."
_NOT_APPLICABLE = "Not used: rate limits here are sliding windows, see rate_limit_connector."


def _entry(value: object, title: str, description: str) -> dict[str, str]:
    return {"value": str(value), "description": description, "title": title}


def workload_version() -> str:
    """The installed workload package's version, or "development" from a source tree."""
    try:
        return metadata.version("cluster-manager")
    except metadata.PackageNotFoundError:
        return "development"


def _per_second(spec: str) -> tuple[str, str]:
    # The sustained rate and burst a token bucket would need to admit what the first
    # configured window admits, for clients that read upstream's two keys.
    first = parse_rate_limits(spec)[0]
    return f"{first.amount / first.period_seconds:.2f}", str(first.amount)


def _fingerprint(settings: Settings) -> str:
    try:
        return connector_fingerprint(settings.connector_cert_file)
    except ConnectorCertificateError as error:
        return f"unavailable: {error}"


def configuration(settings: Settings) -> dict[str, dict[str, str]]:
    """The metadata of GET /1.0/configuration."""
    refill_rate, bucket_size = _per_second(settings.rate_limit_connector)
    return {
        "api_version": _entry(API_VERSION, "API Version", "The version of the API being used"),
        "version": _entry(
            workload_version(), "Version", "The version of MicroCloud Cluster Manager"
        ),
        "cluster_connector_domain": _entry(
            settings.connector_domain,
            "Cluster Connector Domain",
            "The host name MicroCloud clusters reach the cluster connector at",
        ),
        "cluster_connector_port": _entry(
            settings.connector_port,
            "Cluster Connector Port",
            "The port MicroCloud clusters reach the cluster connector at",
        ),
        "oidc_client_id": _entry(
            settings.oidc_client_id, "OIDC Client ID", "The OpenID Connect client ID"
        ),
        "oidc_client_secret": _entry("", "OIDC Client Secret", _NOT_RETURNED),
        "oidc_issuer": _entry(
            settings.oidc_issuer, "OIDC Issuer", "The OpenID Connect issuer URL"
        ),
        "oidc_audience": _entry(
            settings.oidc_audience,
            "OIDC Audience",
            "The audience requested from the identity provider",
        ),
        "oidc_groups_claim": _entry(
            settings.oidc_groups_claim,
            "OIDC Groups Claim",
            "The claim listing the groups a user belongs to",
        ),
        "oidc_admin_group": _entry(
            settings.oidc_admin_group,
            "OIDC Admin Group",
            "Members of this group may use the web UI and the API",
        ),
        "db_connection_string": _entry("", "Database Connection", _NOT_RETURNED),
        "db_max_idle_conns": _entry(
            settings.db_pool_size,
            "Database Max Idle Connections",
            "Idle connections each worker process may keep open",
        ),
        "db_max_open_conns": _entry(
            settings.db_pool_size,
            "Database Max Open Connections",
            "Connections each worker process may open",
        ),
        "grafana_base_url": _entry(
            settings.grafana_url, "Grafana base URL", "The base URL of Grafana"
        ),
        "prometheus_base_url": _entry(
            "", "Prometheus base URL", "Where heartbeat metrics are forwarded (remote write)"
        ),
        "rate_limit_refill_rate": _entry(
            refill_rate,
            "Rate Limit Refill Rate",
            "Requests per second a cluster may sustain (from rate_limit_connector)",
        ),
        "rate_limit_bucket_size": _entry(
            bucket_size,
            "Rate Limit Bucket Size",
            "Requests a cluster may make in one window (from rate_limit_connector)",
        ),
        "rate_limit_client_active_interval": _entry(
            "", "Rate Limit Client Active Interval", _NOT_APPLICABLE
        ),
        "rate_limit_cleanup_interval": _entry("", "Rate Limit Cleanup Interval", _NOT_APPLICABLE),
        "rate_limit_log_interval": _entry("", "Rate Limit Log Interval", _NOT_APPLICABLE),
        "rate_limit_max_clients": _entry("", "Rate Limit Max Clients", _NOT_APPLICABLE),
        "rate_limit_connector": _entry(
            settings.rate_limit_connector,
            "Cluster Connector Rate Limit",
            "Requests allowed per cluster certificate (or address), e.g. 60/minute",
        ),
        "rate_limit_management": _entry(
            settings.rate_limit_management,
            "Management API Rate Limit",
            "Requests allowed per client address on this API",
        ),
        "heartbeat_interval": _entry(
            settings.heartbeat_interval,
            "Heartbeat Interval",
            "Seconds between heartbeats suggested in each reply; advisory, MicroCloud sends at"
            " its own update_interval_seconds",
        ),
        "offline_after": _entry(
            settings.offline_after,
            "Offline After",
            "Seconds without a heartbeat after which a cluster is shown offline",
        ),
        "join_token_expiry": _entry(
            settings.join_token_expiry,
            "Join Token Expiry",
            "Default lifetime of a new join token, in seconds",
        ),
        "history_retention_days": _entry(
            settings.history_retention_days,
            "History Retention",
            "Days of heartbeat history kept",
        ),
        "cluster_connector_fingerprint": _entry(
            _fingerprint(settings),
            "Cluster Connector Fingerprint",
            "SHA-256 of the connector certificate (DER); join tokens carry it and clusters pin it",
        ),
    }
