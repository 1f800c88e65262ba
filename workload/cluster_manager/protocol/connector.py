"""What MicroCloud sends to the connector (reference §2.2 and §3.1).

Both bodies are read as upstream's server reads them, with Go's encoding/json
(microcloud-cluster-manager, internal/app/cluster-connector/api/v1/remote_cluster.go):
fields they do not know are ignored, so a newer MicroCloud that adds one keeps joining and
reporting; a value of the wrong type (a number where a string belongs) is refused with 400.
In a join, `null` or an absent string leaves it empty, as Go leaves it at its zero value, and
the handler then names what is missing ("remote cluster name is required").
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

MAX_PEM_LENGTH = 16_384


def _null_to_empty(value: object) -> object:
    # Go encodes nil slices as null; treat them as empty lists.
    return [] if value is None else value


def _null_to_empty_string(value: object) -> object:
    # Go's decoder leaves a string field at "" when the JSON holds null.
    return "" if value is None else value


GoString = Annotated[StrictStr, BeforeValidator(_null_to_empty_string)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class JoinRequest(_Lenient):
    """POST /1.0/remote-cluster."""

    cluster_name: GoString = Field(default="", max_length=63)
    cluster_certificate: GoString = Field(default="", max_length=MAX_PEM_LENGTH)
    token: GoString = Field(default="", max_length=4096)


class StatusDistribution(_Lenient):
    """How many members (or instances) are in one status."""

    status: StrictStr = Field(max_length=64)
    count: StrictInt = Field(ge=0)


class StoragePoolUsage(_Lenient):
    """Usage of one storage pool on one member ("" for remote pools)."""

    name: StrictStr = Field(max_length=255)
    member: StrictStr = Field(default="", max_length=255)
    total: StrictInt = Field(ge=0)
    usage: StrictInt = Field(ge=0)


class ServerMetrics(_Lenient):
    """The Prometheus text that one member's LXD reported."""

    member: StrictStr = Field(max_length=255)
    metrics: StrictStr
    service: StrictStr = Field(max_length=64)


Distribution = Annotated[list[StatusDistribution], BeforeValidator(_null_to_empty)]


class Heartbeat(_Lenient):
    """POST /1.0/remote-cluster/status."""

    ceph_statuses: Distribution = Field(default_factory=list)
    cpu_total_count: StrictInt = Field(default=0, ge=0)
    cpu_load_1: StrictStr = Field(default="0", max_length=32)
    cpu_load_5: StrictStr = Field(default="0", max_length=32)
    cpu_load_15: StrictStr = Field(default="0", max_length=32)
    memory_total_amount: StrictInt = Field(default=0, ge=0)
    memory_usage: StrictInt = Field(default=0, ge=0)
    storage_pool_usages: Annotated[list[StoragePoolUsage], BeforeValidator(_null_to_empty)] = (
        Field(default_factory=list)
    )
    member_statuses: Distribution = Field(default_factory=list)
    instance_statuses: Distribution = Field(default_factory=list)
    server_metrics: Annotated[list[ServerMetrics], BeforeValidator(_null_to_empty)] = Field(
        default_factory=list
    )
    ui_url: StrictStr = Field(default="", max_length=2048)
    lxd_url: StrictStr = Field(default="", max_length=2048)
    """The same link under the name MicroCloud is moving to (microcloud PR #1539)."""

    @property
    def lxd_ui_url(self) -> str:
        """The cluster's LXD UI link: `lxd_url` when sent and non-empty, else `ui_url`."""
        return self.lxd_url or self.ui_url
