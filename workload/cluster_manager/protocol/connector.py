"""What MicroCloud sends to the connector (reference §2.2 and §3.1).

Both bodies are read as upstream's server reads them, with Go's encoding/json
(microcloud-cluster-manager, internal/app/cluster-connector/api/v1/remote_cluster.go):
fields they do not know are ignored, so a newer MicroCloud that adds one keeps joining and
reporting; a value of the wrong type (a number where a string belongs) is refused with 400.
In a join, `null` or an absent string leaves it empty, as Go leaves it at its zero value, and
the handler then names what is missing ("remote cluster name is required").

Every value is bounded by `rules` (issue 9): what PostgreSQL can hold and what a real
MicroCloud sends (microcloud api/types/cluster_manager.go: int64 counts and memory, uint64
pool sizes; cmd/microcloudd/cluster_manager_task.go: `"%.2f"` loads, one status entry per
distinct status, one pool entry per local pool per member). A heartbeat breaking any rule
is refused whole, before anything is stored.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from .rules import (
    MAX_BYTES,
    MAX_COUNT,
    MAX_CPU_LOAD_LENGTH,
    MAX_MEMBER_NAME_LENGTH,
    MAX_MEMBERS,
    MAX_METRICS_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PEM_LENGTH,
    MAX_POOL_NAME_LENGTH,
    MAX_SERVICE_LENGTH,
    MAX_STATUS_LENGTH,
    MAX_STATUSES,
    MAX_STORAGE_POOLS,
    MAX_TOKEN_LENGTH,
    MAX_URL_LENGTH,
    CpuLoad,
    NulFreeStr,
    WebUrl,
)


def _go_list(limit: int) -> BeforeValidator:
    """A list as Go sends it: null (a nil slice) is empty; more than `limit` items is refused.

    The length is checked before any item is validated, so an oversized list costs only
    its parsing.
    """

    def check(value: object) -> object:
        if value is None:
            return []
        if isinstance(value, list) and len(value) > limit:
            raise ValueError(f"must have at most {limit} items")
        return value

    return BeforeValidator(check)


def _null_to_empty_string(value: object) -> object:
    # Go's decoder leaves a string field at "" when the JSON holds null.
    return "" if value is None else value


GoString = Annotated[NulFreeStr, BeforeValidator(_null_to_empty_string)]
Bytes = Annotated[StrictInt, Field(ge=0, le=MAX_BYTES)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class JoinRequest(_Lenient):
    """POST /1.0/remote-cluster."""

    cluster_name: GoString = Field(default="", max_length=MAX_NAME_LENGTH)
    cluster_certificate: GoString = Field(default="", max_length=MAX_PEM_LENGTH)
    token: GoString = Field(default="", max_length=MAX_TOKEN_LENGTH)


class StatusDistribution(_Lenient):
    """How many members (or instances) are in one status."""

    status: NulFreeStr = Field(max_length=MAX_STATUS_LENGTH)
    count: Count


class StoragePoolUsage(_Lenient):
    """Usage of one storage pool on one member ("" for remote pools)."""

    name: NulFreeStr = Field(max_length=MAX_POOL_NAME_LENGTH)
    member: NulFreeStr = Field(default="", max_length=MAX_MEMBER_NAME_LENGTH)
    total: Bytes
    usage: Bytes


class ServerMetrics(_Lenient):
    """The Prometheus text that one member's LXD reported."""

    member: NulFreeStr = Field(max_length=MAX_MEMBER_NAME_LENGTH)
    metrics: NulFreeStr = Field(max_length=MAX_METRICS_LENGTH)
    service: NulFreeStr = Field(max_length=MAX_SERVICE_LENGTH)


def _counts_fit(statuses: list[StatusDistribution]) -> list[StatusDistribution]:
    # The list's sum is stored too (member_count, instance_count, ceph_count: integer).
    if sum(entry.count for entry in statuses) > MAX_COUNT:
        raise ValueError(f"the counts must add up to at most {MAX_COUNT}")
    return statuses


def _pool_sums_fit(pools: list[StoragePoolUsage]) -> list[StoragePoolUsage]:
    # The sums are stored in the heartbeat history (storage_total, storage_usage: bigint).
    if sum(pool.total for pool in pools) > MAX_BYTES:
        raise ValueError(f"the pool totals must add up to at most {MAX_BYTES}")
    if sum(pool.usage for pool in pools) > MAX_BYTES:
        raise ValueError(f"the pool usages must add up to at most {MAX_BYTES}")
    return pools


Distribution = Annotated[
    list[StatusDistribution], _go_list(MAX_STATUSES), AfterValidator(_counts_fit)
]
PoolUsages = Annotated[
    list[StoragePoolUsage], _go_list(MAX_STORAGE_POOLS), AfterValidator(_pool_sums_fit)
]
MemberMetrics = Annotated[list[ServerMetrics], _go_list(MAX_MEMBERS)]


class Heartbeat(_Lenient):
    """POST /1.0/remote-cluster/status."""

    ceph_statuses: Distribution = Field(default_factory=list)
    cpu_total_count: StrictInt = Field(default=0, ge=0, le=MAX_BYTES)
    cpu_load_1: CpuLoad = Field(default="0", max_length=MAX_CPU_LOAD_LENGTH)
    cpu_load_5: CpuLoad = Field(default="0", max_length=MAX_CPU_LOAD_LENGTH)
    cpu_load_15: CpuLoad = Field(default="0", max_length=MAX_CPU_LOAD_LENGTH)
    memory_total_amount: Bytes = 0
    memory_usage: Bytes = 0
    storage_pool_usages: PoolUsages = Field(default_factory=list)
    member_statuses: Distribution = Field(default_factory=list)
    instance_statuses: Distribution = Field(default_factory=list)
    server_metrics: MemberMetrics = Field(default_factory=list)
    ui_url: WebUrl = Field(default="", max_length=MAX_URL_LENGTH)
    lxd_url: WebUrl = Field(default="", max_length=MAX_URL_LENGTH)
    """The same link under the name MicroCloud is moving to (microcloud PR #1539)."""

    @property
    def lxd_ui_url(self) -> str:
        """The cluster's LXD UI link: `lxd_url` when sent and non-empty, else `ui_url`."""
        return self.lxd_url or self.ui_url
