"""The domain layer: what the management API, the web UI and the operator CLI do, once.

Routes (`management.routes`, `ui.routes`) and commands (`commands`) call these functions;
they call `db/`. Each function takes an open connection and raises the envelope's `APIError`
subclasses on refusal: the API answers them as they are, the UI shows them on its pages, the
CLI turns them into exit code 1. One module per concern:

- `clusters`: enrolled clusters (list, get, change, forget)
- `join_tokens`: join tokens (mint, list, revoke) and the connector fingerprint they carry
- `api_tokens`: admin API tokens (mint, hash, look up)
- `fleet`: the fleet as the UI shows it (overview, a page of clusters, a cluster's history)
- `configuration`: the settings an operator may see
- `names`: the names clusters and tokens may have
- `tunnel`: requests to a cluster's LXD through its reverse tunnel, from any unit
"""

from __future__ import annotations

from ..connector_certificate import ConnectorCertificateError, connector_fingerprint
from .api_tokens import API_TOKEN_PREFIX, api_token_hash, create_api_token, identify_api_token
from .clusters import (
    OFFLINE,
    ONLINE,
    ClusterRow,
    connection_status,
    get_cluster,
    list_clusters,
    remove_cluster,
    update_cluster,
)
from .configuration import configuration
from .fleet import (
    SORT_COLUMNS,
    STATUS_FILTERS,
    ClusterHistory,
    ClusterPage,
    FleetOverview,
    FleetRow,
    FleetSummary,
    HistoryBucket,
    cluster_page,
    cluster_with_history,
    fleet_overview,
)
from .join_tokens import (
    MintedJoinToken,
    create_join_token,
    fingerprint_of_connector,
    list_join_tokens,
    revoke_join_token,
)
from .names import require_valid_name
from .tunnel import (
    Instance,
    InstanceList,
    LXDReply,
    list_instances,
    send_through_tunnel,
)

__all__ = [
    "API_TOKEN_PREFIX",
    "OFFLINE",
    "ONLINE",
    "SORT_COLUMNS",
    "STATUS_FILTERS",
    "ClusterHistory",
    "ClusterPage",
    "ClusterRow",
    "ConnectorCertificateError",
    "FleetOverview",
    "FleetRow",
    "FleetSummary",
    "HistoryBucket",
    "Instance",
    "InstanceList",
    "LXDReply",
    "MintedJoinToken",
    "api_token_hash",
    "cluster_page",
    "cluster_with_history",
    "configuration",
    "connection_status",
    "connector_fingerprint",
    "create_api_token",
    "create_join_token",
    "fingerprint_of_connector",
    "fleet_overview",
    "get_cluster",
    "identify_api_token",
    "list_clusters",
    "list_instances",
    "list_join_tokens",
    "remove_cluster",
    "require_valid_name",
    "revoke_join_token",
    "send_through_tunnel",
    "update_cluster",
]
