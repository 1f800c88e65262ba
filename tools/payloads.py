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
    ):
        """Draw the cluster's shape from the seed.

        Args:
            cluster_name: the cluster's name (also the default seed source).
            members: number of members (at least 1).
            instances: number of instances.
            seed: shape seed; defaults to a stable hash of the name.
            microceph: whether MicroCeph is deployed.
        """
        if members < 1 or instances < 0:
            raise ValueError("need at least one member and no negative instance count")
        self.cluster_name = cluster_name
        self.seed = zlib.crc32(cluster_name.encode()) if seed is None else seed
        self.microceph = microceph
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
            kind = "virtual-machine" if rng.random() < 0.3 else "container"
            result.append(
                Instance(
                    name=f"{rng.choice(words)}-{index + 1:02d}",
                    project=rng.choice(("default", "default", "default", "prod")),
                    kind=kind,
                    status=rng.choice(states),
                    member=index % len(self.members),
                    cpus=rng.choice((1, 2, 4)),
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
        member = self.members[member_index]
        local = [i for i in self.instances if i.member == member_index]
        running = [i for i in local if i.status == "Running"]
        return render(lxd_families(member, local, running, now - member.started))


def _labels(instance: Instance, **extra: str) -> dict[str, str]:
    return {**extra, "name": instance.name, "project": instance.project, "type": instance.kind}


def _instance_families(running: Sequence[Instance], uptime: float) -> list[MetricFamily]:
    cpu = MetricFamily("lxd_cpu_seconds_total", "counter", "Total CPU time used, in seconds.")
    avail = MetricFamily("lxd_memory_MemAvailable_bytes", "gauge", "Available memory, in bytes.")
    total = MetricFamily("lxd_memory_MemTotal_bytes", "gauge", "Total memory, in bytes.")
    disk = MetricFamily("lxd_filesystem_avail_bytes", "gauge", "Available disk space, in bytes.")
    rx = MetricFamily("lxd_network_receive_bytes_total", "counter", "Bytes received.")
    procs = MetricFamily("lxd_procs_total", "gauge", "Number of running processes.")
    for inst in running:
        busy = 0.3 + inst.phase / math.pi  # per-instance activity level, 0.3 to 2.3
        for cpu_index in range(inst.cpus):
            for mode, share in (("system", 0.08), ("user", 0.25), ("iowait", 0.01)):
                seconds = _integral(uptime, share * busy / 2.3, 900, inst.phase + cpu_index, 0.5)
                cpu.add(_labels(inst, cpu=str(cpu_index), mode=mode), round(seconds, 2))
        used = 0.4 + 0.15 * _wave(uptime, 1200, inst.phase)
        avail.add(_labels(inst), int(inst.memory * (1 - used)))
        total.add(_labels(inst), inst.memory)
        free = inst.disk * (0.6 + 0.05 * _wave(uptime, 7200, inst.phase))
        disk.add(_labels(inst, device="root", fstype="zfs", mountpoint="/"), int(free))
        received = _integral(uptime, 20_000 * busy, 300, inst.phase, 0.9)
        rx.add(_labels(inst, device="eth0"), int(received))
        procs.add(_labels(inst), 20 + int(12 * (1 + _wave(uptime, 1500, inst.phase))))
    return [cpu, avail, total, disk, rx, procs]


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
    families = _instance_families(running, uptime)
    instances = MetricFamily("lxd_instances", "gauge", "Number of instances.")
    by_kind = Counter((i.project, i.kind) for i in local)
    for (project, kind), count in sorted(by_kind.items()):
        instances.add({"project": project, "type": kind}, count)
    warnings = MetricFamily("lxd_warnings_total", "gauge", "Number of active warnings.")
    warnings.add({}, 0 if member.status == "Online" else 1)
    uptime_family = MetricFamily("lxd_uptime_seconds", "gauge", "Daemon uptime, in seconds.")
    uptime_family.add({}, round(uptime, 1))
    goroutines = MetricFamily("lxd_go_goroutines", "gauge", "Number of goroutines.")
    goroutines.add({}, 180 + int(40 * (1 + _wave(uptime, 300, member.phase))))
    return [*families, instances, warnings, uptime_family, goroutines]
