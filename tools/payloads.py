"""Realistic heartbeat payloads, as MicroCloud builds them (wire reference section 3.1).

A :class:`PayloadGenerator` stands for one cluster with M members and K instances. Its static
shape (memory sizes, pools, instance names and states, addresses) comes from a seed; the
changing values (loads, memory and disk use, LXD counters) are smooth functions of time, so
the output is deterministic for a given seed and time, and history charts still move.
"""

from __future__ import annotations

import math
import random
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tools.metrics_text import MetricFamily, render

GIB = 1024**3
T = TypeVar("T")
# Members' daemons count their uptime from a fixed moment before this (2026-01-01T00:00:00Z),
# so counters grow monotonically from plausible values instead of from the Unix epoch.
UPTIME_REFERENCE = 1_767_225_600.0

# The fields MicroCloud sends, in the order it sends them.
PAYLOAD_FIELDS = (
    "ceph_statuses",
    "cpu_total_count",
    "cpu_load_1",
    "cpu_load_5",
    "cpu_load_15",
    "memory_total_amount",
    "memory_usage",
    "storage_pool_usages",
    "member_statuses",
    "instance_statuses",
    "server_metrics",
    "ui_url",
)


def go_nil(items: Iterable[T]) -> list[T] | None:
    """A list, or None when empty, as Go marshals a nil slice (``null``).

    Args:
        items: the elements.

    Returns:
        The list, or None for no elements.
    """
    values = list(items)
    return values or None


def status_distribution(statuses: Iterable[str]) -> list[dict[str, Any]]:
    """Count statuses into ``[{"status", "count"}]``, sorted by status.

    Args:
        statuses: one status per member or instance.

    Returns:
        The distribution.
    """
    counts = Counter(statuses)
    return [{"status": status, "count": counts[status]} for status in sorted(counts)]


def _wave(now: float, period: float, phase: float) -> float:
    return math.sin(2 * math.pi * now / period + phase)


def _integral(now: float, rate: float, period: float, phase: float, depth: float) -> float:
    """Integral over [0, now] of ``rate * (1 + depth * sin(...))``; increasing when depth < 1."""
    now = max(now, 0.0)
    omega = 2 * math.pi / period
    return rate * (now + depth / omega * (math.cos(phase) - math.cos(omega * now + phase)))


@dataclass(frozen=True)
class Instance:
    """One simulated LXD instance."""

    name: str
    project: str
    kind: str
    status: str
    member: int
    cpus: int
    memory: int
    disk: int
    phase: float


@dataclass(frozen=True)
class Member:
    """One simulated cluster member."""

    name: str
    address: str
    status: str
    memory: int
    pool_size: int
    load: float
    phase: float
    started: float


class PayloadGenerator:
    """Heartbeat payloads for one simulated cluster.

    Attributes:
        cluster_name: the cluster's name.
        members: simulated members.
        instances: simulated instances.
        microceph: whether MicroCeph is deployed (``ceph_statuses`` and a remote pool).
    """

    def __init__(
        self,
        cluster_name: str,
        members: int = 3,
        instances: int = 12,
        *,
        seed: int | None = None,
        microceph: bool = True,
        text_ttl: float = 0.0,
    ):
        """Draw the cluster's shape from the seed.

        Args:
            cluster_name: the cluster's name (also the default seed source).
            members: number of members (at least 1).
            instances: number of instances.
            seed: shape seed; defaults to a stable hash of the name.
            microceph: whether MicroCeph is deployed.
            text_ttl: seconds a member's metrics text is reused before it is made again (0:
                made for every call). A text of 50 instances takes some 20 ms to make, so
                load generators driving hundreds of clusters reuse them.
        """
        if members < 1 or instances < 0:
            raise ValueError("need at least one member and no negative instance count")
        self.cluster_name = cluster_name
        self.seed = zlib.crc32(cluster_name.encode()) if seed is None else seed
        self.microceph = microceph
        self.text_ttl = text_ttl
        self._texts: dict[int, tuple[float, str]] = {}
        rng = random.Random(self.seed)
        self.members = self._draw_members(rng, members)
        self.instances = self._draw_instances(rng, instances)
        self.remote_pool_size = rng.choice((24, 48, 96)) * 1024 * GIB
        self.remote_pool_phase = rng.uniform(0, 2 * math.pi)

    @staticmethod
    def _draw_members(rng: random.Random, count: int) -> list[Member]:
        subnet = f"10.{rng.randrange(256)}.{rng.randrange(256)}"
        first = rng.randrange(2, 200)
        degraded = rng.randrange(count) if count > 1 and rng.random() < 0.15 else -1
        return [
            Member(
                name=f"micro{index + 1}",
                address=f"{subnet}.{first + index}",
                status="Evacuated" if index == degraded else "Online",
                memory=rng.choice((32, 64, 128, 256)) * GIB,
                pool_size=rng.choice((256, 512, 1024, 2048)) * GIB,
                load=rng.uniform(0.2, 4.0),
                phase=rng.uniform(0, 2 * math.pi),
                started=UPTIME_REFERENCE - rng.uniform(5, 60) * 86400,
            )
            for index in range(count)
        ]

    def _draw_instances(self, rng: random.Random, count: int) -> list[Instance]:
        words = ("web", "db", "cache", "ci", "build", "mail", "proxy", "dns", "k8s", "vault")
        states = ("Running",) * 16 + ("Stopped",) * 3 + ("Frozen", "Error")
        result: list[Instance] = []
        for index in range(count):
            kind = "virtual-machine" if rng.random() < 0.4 else "container"
            result.append(
                Instance(
                    name=f"{rng.choice(words)}-{index + 1:02d}",
                    project=rng.choice(("default", "default", "default", "prod")),
                    kind=kind,
                    status=rng.choice(states),
                    member=index % len(self.members),
                    cpus=rng.choice((2, 4, 8)),
                    memory=rng.choice((1, 2, 4, 8)) * GIB,
                    disk=rng.choice((10, 20, 50)) * GIB,
                    phase=rng.uniform(0, 2 * math.pi),
                )
            )
        return result

    @property
    def ui_url(self) -> str:
        """The LXD UI URL of the first member."""
        return f"https://{self.members[0].address}:8443"

    def payload(self, now: float | None = None) -> dict[str, Any]:
        """The status body MicroCloud would send at ``now``.

        Args:
            now: Unix time; the current time if omitted.

        Returns:
            The payload, keys in MicroCloud's order.
        """
        now = time.time() if now is None else now
        loads = [self._member_loads(member, now) for member in self.members]
        memory_used = [self._member_memory_used(member, now) for member in self.members]
        return {
            "ceph_statuses": self._ceph_statuses(),
            "cpu_total_count": 0,
            "cpu_load_1": f"{sum(load[0] for load in loads):.2f}",
            "cpu_load_5": f"{sum(load[1] for load in loads):.2f}",
            "cpu_load_15": f"{sum(load[2] for load in loads):.2f}",
            "memory_total_amount": sum(member.memory for member in self.members),
            "memory_usage": sum(memory_used),
            "storage_pool_usages": go_nil(self._pool_usages(now)),
            "member_statuses": status_distribution(member.status for member in self.members),
            "instance_statuses": go_nil(status_distribution(i.status for i in self.instances)),
            "server_metrics": go_nil(
                {"member": member.name, "metrics": self.metrics_text(index, now), "service": "LXD"}
                for index, member in enumerate(self.members)
            ),
            "ui_url": self.ui_url,
        }

    def _ceph_statuses(self) -> list[dict[str, Any]] | None:
        if not self.microceph:
            return None
        return status_distribution("ONLINE" for _ in self.members[:3])

    @staticmethod
    def _member_loads(member: Member, now: float) -> tuple[float, float, float]:
        one = member.load * (1 + 0.35 * _wave(now, 600, member.phase)) + 0.1 * (
            1 + _wave(now, 97, member.phase * 3)
        )
        five = member.load * (1 + 0.25 * _wave(now, 1800, member.phase))
        fifteen = member.load * (1 + 0.15 * _wave(now, 5400, member.phase))
        return max(one, 0.0), max(five, 0.0), max(fifteen, 0.0)

    @staticmethod
    def _member_memory_used(member: Member, now: float) -> int:
        fraction = 0.45 + 0.2 * math.sin(member.phase) + 0.08 * _wave(now, 3600, member.phase)
        return int(member.memory * fraction)

    def _pool_usages(self, now: float) -> list[dict[str, Any]]:
        usages = [
            {
                "name": "local",
                "member": member.name,
                "total": member.pool_size,
                "usage": int(member.pool_size * (0.3 + 0.1 * _wave(now, 86400, member.phase))),
            }
            for member in self.members
        ]
        if self.microceph:
            fraction = 0.4 + 0.05 * _wave(now, 43200, self.remote_pool_phase)
            usages.append(
                {
                    "name": "remote",
                    "member": "",
                    "total": self.remote_pool_size,
                    "usage": int(self.remote_pool_size * fraction),
                }
            )
        return usages

    def metrics_text(self, member_index: int, now: float | None = None) -> str:
        """The Prometheus text LXD's ``/1.0/metrics`` would return on one member.

        Args:
            member_index: which member.
            now: Unix time; the current time if omitted.

        Returns:
            Text exposition format, one family block per metric.
        """
        now = time.time() if now is None else now
        made, text = self._texts.get(member_index, (-math.inf, ""))
        if 0 <= now - made < self.text_ttl:
            return text
        member = self.members[member_index]
        local = [i for i in self.instances if i.member == member_index]
        running = [i for i in local if i.status == "Running"]
        text = render(lxd_families(member, local, running, now - member.started))
        if self.text_ttl > 0:
            self._texts[member_index] = (now, text)
        return text


# -- LXD's /1.0/metrics ------------------------------------------------------------------------
#
# Family names, help texts, types and labels as LXD writes them: canonical/lxd
# `lxd/metrics/types.go` (names, help, the family order), `lxd/metrics/metrics.go` (gauge or
# counter, `MetricSetFromAPI`: 8 CPU modes per vCPU, disk/filesystem/network per device),
# `lxd/instance/drivers/driver_lxc.go` (containers: system and user CPU per core, memory from
# the cgroup's memory.stat), `lxd/instance/drivers/driver_qemu.go` (VMs: `state="RUNNING"`) and
# `lxd/api_metrics.go` (lxd_instances per project and type, API requests, warnings,
# operations, uptime, the Go runtime's memory statistics).

_MEMORY = [  # LXD's memory families, in its order
    *("Active_anon", "Active", "Active_file", "Cached", "Dirty", "HugepagesFree"),
    *("HugepagesTotal", "Inactive_anon", "Inactive", "Inactive_file", "Mapped"),
    *("MemAvailable", "MemFree", "MemTotal", "OOM_kills", "RSS", "Shmem", "SReclaimable"),
    *("Swap", "Unevictable", "Writeback"),
]
_GAUGES = {"lxd_procs_total", "lxd_cpu_effective_total", "lxd_go_goroutines"}
_GAUGES |= {"lxd_go_heap_objects", "lxd_instances", "lxd_api_requests_ongoing"}
_FAMILIES = {
    "lxd_api_requests_completed_total": "The total number of completed API requests.",
    "lxd_api_requests_ongoing": "The number of API requests currently being handled.",
    "lxd_cpu_effective_total": "The total number of effective CPUs.",
    "lxd_cpu_seconds_total": "The total number of CPU time used in seconds.",
    "lxd_disk_read_bytes_total": "The total number of bytes read.",
    "lxd_disk_reads_completed_total": "The total number of completed reads.",
    "lxd_disk_written_bytes_total": "The total number of bytes written.",
    "lxd_disk_writes_completed_total": "The total number of completed writes.",
    "lxd_filesystem_avail_bytes": "The number of available space in bytes.",
    "lxd_filesystem_free_bytes": "The number of free space in bytes.",
    "lxd_filesystem_size_bytes": "The size of the filesystem in bytes.",
    **{
        f"lxd_go_{name}": f"Go runtime statistic {name}."
        for name in [
            "alloc_bytes",
            "alloc_bytes_total",
            "buck_hash_sys_bytes",
            "frees_total",
            "gc_sys_bytes",
            "goroutines",
            "heap_alloc_bytes",
            "heap_idle_bytes",
            "heap_inuse_bytes",
            "heap_objects",
            "heap_released_bytes",
            "heap_sys_bytes",
            "lookups_total",
            "mallocs_total",
            "mcache_inuse_bytes",
            "mcache_sys_bytes",
            "mspan_inuse_bytes",
            "mspan_sys_bytes",
            "next_gc_bytes",
            "other_sys_bytes",
            "stack_inuse_bytes",
            "stack_sys_bytes",
            "sys_bytes",
        ]
    },
    "lxd_instances": "The number of instances.",
    **{
        f"lxd_memory_{name}_total" if name == "OOM_kills" else f"lxd_memory_{name}_bytes": (
            "The number of out of memory kills."
            if name == "OOM_kills"
            else f"The amount of {name} memory."
        )
        for name in _MEMORY
    },
    **{
        f"lxd_network_{way}_{what}_total": f"The amount of {way} {what} on a given interface."
        for way in ("receive", "transmit")
        for what in ("bytes", "drop", "errs", "packets")
    },
    "lxd_operations_total": "The number of running operations",
    "lxd_procs_total": "The number of running processes.",
    "lxd_uptime_seconds": "The daemon uptime in seconds.",
    "lxd_warnings_total": "The number of active warnings.",
}
_VM_CPU_MODES = ("iowait", "irq", "idle", "nice", "softirq", "steal", "system", "user")
_CPU_SHARE = {"idle": 0.6, "user": 0.25, "system": 0.08, "iowait": 0.02, "nice": 0.01}
_CONTAINER_MEMORY = [  # what a container's cgroup memory.stat gives
    "Active_anon",
    "Active",
    "Active_file",
    "Cached",
    "Dirty",
    "Inactive_anon",
    "Inactive",
    "Inactive_file",
    "Mapped",
    "RSS",
    "Shmem",
    "SReclaimable",
    "Unevictable",
    "Writeback",
]
_VM_MEMORY = [name for name in _MEMORY if name != "OOM_kills"]  # VMs report every gauge
_MEMORY_SHARE = {"HugepagesFree": 0.0, "HugepagesTotal": 0.0, "MemTotal": 1.0, "Dirty": 0.001}
_ENTITY_TYPES = ("instance", "image", "network", "operation", "project", "server", "storage_pool")


class _Families:
    """The member's families, created on first use and rendered in LXD's order."""

    def __init__(self) -> None:
        self.by_name: dict[str, MetricFamily] = {}

    def add(self, name: str, labels: dict[str, str], value: float) -> None:
        family = self.by_name.get(name)
        if family is None:
            kind = "gauge" if name in _GAUGES or name.endswith("_bytes") else "counter"
            family = self.by_name[name] = MetricFamily(name, kind, _FAMILIES[name])
        family.add(labels, value)

    def ordered(self) -> list[MetricFamily]:
        return [self.by_name[name] for name in _FAMILIES if name in self.by_name]


def _labels(instance: Instance, **extra: str) -> dict[str, str]:
    labels = {**extra, "name": instance.name, "project": instance.project, "type": instance.kind}
    if instance.kind == "virtual-machine":
        labels["state"] = "RUNNING"
    return labels


def _instance_metrics(out: _Families, inst: Instance, uptime: float) -> None:
    """About 60-100 series of one running instance."""
    busy = 0.3 + inst.phase / math.pi  # per-instance activity level, 0.3 to 2.3
    vm = inst.kind == "virtual-machine"
    out.add("lxd_cpu_effective_total", _labels(inst), inst.cpus)
    for cpu in range(inst.cpus):
        for mode in _VM_CPU_MODES if vm else ("system", "user"):
            share = _CPU_SHARE.get(mode, 0.002) * (busy / 2.3 if mode != "idle" else 1)
            seconds = _integral(uptime, share, 900, inst.phase + cpu, 0.5)
            out.add("lxd_cpu_seconds_total", _labels(inst, cpu=str(cpu), mode=mode), seconds)
    disks = ("vda", "vdb") if vm else ("root", "data")
    for number, device in enumerate(disks):
        rate = 40_000 * busy / (number + 1)
        read = _integral(uptime, rate, 1800, inst.phase + number, 0.8)
        written = _integral(uptime, rate / 2, 1200, inst.phase + number, 0.8)
        labels = _labels(inst, device=device)
        out.add("lxd_disk_read_bytes_total", labels, int(read))
        out.add("lxd_disk_reads_completed_total", labels, int(read / 4096))
        out.add("lxd_disk_written_bytes_total", labels, int(written))
        out.add("lxd_disk_writes_completed_total", labels, int(written / 8192))
    for number, mount in enumerate(("/", "/srv")):
        size = inst.disk / (number + 1)
        free = size * (0.6 + 0.05 * _wave(uptime, 7200, inst.phase + number))
        device = f"/dev/sda{number + 1}" if vm else f"{inst.project}_{inst.name}"
        labels = _labels(inst, device=device, fstype="ext4" if vm else "zfs", mountpoint=mount)
        out.add("lxd_filesystem_avail_bytes", labels, int(free * 0.95))
        out.add("lxd_filesystem_free_bytes", labels, int(free))
        out.add("lxd_filesystem_size_bytes", labels, int(size))
    used = 0.4 + 0.15 * _wave(uptime, 1200, inst.phase)
    for index, name in enumerate(_VM_MEMORY if vm else _CONTAINER_MEMORY):
        share = _MEMORY_SHARE.get(name, used / (index + 2))
        if name in ("MemAvailable", "MemFree"):
            share = 1 - used
        out.add(f"lxd_memory_{name}_bytes", _labels(inst), int(inst.memory * share))
    if not vm:  # the cgroup's limit, and what is left of it
        out.add("lxd_memory_MemAvailable_bytes", _labels(inst), int(inst.memory * (1 - used)))
        out.add("lxd_memory_MemFree_bytes", _labels(inst), int(inst.memory * (0.9 - used)))
        out.add("lxd_memory_MemTotal_bytes", _labels(inst), inst.memory)
        out.add("lxd_memory_Swap_bytes", _labels(inst), 0)
    out.add("lxd_memory_OOM_kills_total", _labels(inst), 0)
    for number, device in enumerate(("eth0", "eth1")):
        labels = _labels(inst, device=device)
        for way, rate in (("receive", 20_000 * busy), ("transmit", 8_000 * busy)):
            octets = _integral(uptime, rate / (number + 1), 300, inst.phase + number, 0.9)
            out.add(f"lxd_network_{way}_bytes_total", labels, int(octets))
            out.add(f"lxd_network_{way}_drop_total", labels, int(octets / 5e6))
            out.add(f"lxd_network_{way}_errs_total", labels, 0)
            out.add(f"lxd_network_{way}_packets_total", labels, int(octets / 900))
    out.add("lxd_procs_total", _labels(inst), 20 + int(12 * (1 + _wave(uptime, 1500, inst.phase))))


def _server_metrics(
    out: _Families, member: Member, local: Sequence[Instance], uptime: float
) -> None:
    """The daemon's own series: API requests, instances, the Go runtime, warnings, uptime."""
    for entity in _ENTITY_TYPES:
        calls = _integral(uptime, 0.5, 3600, member.phase, 0.5)
        for result in ("succeeded", "failed", "error_server"):
            share = {"succeeded": 0.97, "failed": 0.025}.get(result, 0.005)
            labels = {"entity_type": entity, "result": result}
            out.add("lxd_api_requests_completed_total", labels, int(calls * share))
        out.add("lxd_api_requests_ongoing", {"entity_type": entity}, 0)
    heap = 60e6 * (1 + 0.3 * _wave(uptime, 300, member.phase))
    for name in _FAMILIES:
        if name.startswith("lxd_go_"):
            statistic = name.removeprefix("lxd_go_")
            if statistic == "goroutines":
                value = 180.0 + int(40 * (1 + _wave(uptime, 300, member.phase)))
            elif statistic.endswith("_total"):
                value = _integral(uptime, heap / 60, 3600, member.phase, 0.2)
            else:
                value = heap / (1 + len(statistic) % 7)
            out.add(name, {}, int(value))
    by_kind = Counter((i.project, i.kind) for i in local)
    for (project, kind), count in sorted(by_kind.items()):
        out.add("lxd_instances", {"project": project, "type": kind}, count)
    out.add("lxd_operations_total", {}, 0)
    out.add("lxd_uptime_seconds", {}, round(uptime, 3))
    out.add("lxd_warnings_total", {}, 0 if member.status == "Online" else 1)


def lxd_families(
    member: Member, local: Sequence[Instance], running: Sequence[Instance], uptime: float
) -> list[MetricFamily]:
    """All metric families one LXD member exposes.

    Args:
        member: the member.
        local: instances placed on it.
        running: those of them that run (only they have instance metrics).
        uptime: seconds since the member's daemon started (counters start there).

    Returns:
        Families in exposition order.
    """
    out = _Families()
    for instance in running:
        _instance_metrics(out, instance, uptime)
    _server_metrics(out, member, local, uptime)
    return out.ordered()
