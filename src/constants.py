"""Names, ports and in-container paths shared by the charm's modules."""

from __future__ import annotations

CONTAINER = "cluster-manager"
PEER_RELATION = "cluster-manager-peers"
DATABASE_RELATION = "database"
CERTIFICATES_RELATION = "certificates"
CA_RELATION = "receive-ca-cert"
INGRESS_RELATION = "traefik-route"
METRICS_RELATION = "metrics-endpoint"
DASHBOARD_RELATION = "grafana-dashboard"
LOGGING_RELATION = "logging"
REMOTE_WRITE_RELATION = "send-remote-write"

DATABASE_NAME = "cluster_manager"

FRONT_SERVICE = "haproxy"
"""The TLS front (design D1): HAProxy, master and workers in one Pebble service."""
MANAGEMENT_SERVICE = "management"
CONNECTOR_SERVICE = "connector"
TUNNEL_SERVICE = "tunnel"
"""The clusters' reverse tunnels (design D13): one asyncio process holds their websockets."""
FORWARDER_SERVICE = "forwarder"
"""Parses and pushes the clusters' LXD metrics to remote write, apart from the connector."""
APP_SERVICES = (MANAGEMENT_SERVICE, CONNECTOR_SERVICE, FORWARDER_SERVICE, TUNNEL_SERVICE)
"""The workload's processes behind the front: they read the env file and the TLS files, so
they restart when those change."""

MANAGEMENT_PORT = 8443
CONNECTOR_PORT = 9443
HEALTH_PORT = 8081
METRICS_PORT = 9102
"""The front's plain-HTTP listener for this unit's /metrics (scraped over `metrics-endpoint`)."""
TUNNEL_PORT = 9445
"""The tunnel process's internal TLS listener, on every address of the pod: the other units
forward management requests for the tunnels this unit holds to it, over the pod network.
Never routed by Traefik."""
PUBLIC_CONNECTOR_PORT = 443
"""Port the clusters reach the connector at (Traefik's websecure entrypoint)."""

CONFIG_DIR = "/etc/cluster-manager"
ENV_FILE = f"{CONFIG_DIR}/cluster-manager.env"
FRONT_CONFIG = f"{CONFIG_DIR}/haproxy.cfg"
TLS_DIR = f"{CONFIG_DIR}/tls"
MANAGEMENT_CERT = f"{TLS_DIR}/management.crt"
MANAGEMENT_KEY = f"{TLS_DIR}/management.key"
CONNECTOR_CERT = f"{TLS_DIR}/connector.crt"
CONNECTOR_KEY = f"{TLS_DIR}/connector.key"
CA_BUNDLE = f"{TLS_DIR}/ca-bundle.crt"
DATABASE_CA = f"{TLS_DIR}/database-ca.crt"
"""The database provider's CA (`tls-ca`), libpq's `sslrootcert`; absent while TLS is off."""
RUN_DIR = "/run/cluster-manager"

WORKLOAD_CLI = ("python3", "-m", "cluster_manager")

# Peer application databag keys (written by the leader).
CONNECTOR_SECRET_KEY = "connector-secret-id"  # noqa: S105 (a databag key, not a secret)
CONNECTOR_FINGERPRINT_KEY = "connector-fingerprint"
TUNNEL_SECRET_KEY = "tunnel-secret-id"  # noqa: S105 (a databag key, not a secret)
SCHEMA_VERSION_KEY = "schema-version"
SCHEMA_DATABASE_KEY = "schema-database"
# Peer unit databag key: the unit's address for Traefik, set once its workload is planned.
UNIT_ADDRESS_KEY = "address"

CONNECTOR_SECRET_LABEL = "connector-identity"  # noqa: S105 (a label, not a secret)
TUNNEL_SECRET_LABEL = "tunnel-secret"  # noqa: S105 (a label, not a secret)
