"""`python -m tools.bench_fleet_metrics`: a fleet's LXD metrics through one unit into Prometheus.

N MicroCloud-shaped emulated clusters (3 members x 50 instances by default, tools/payloads.py)
heartbeat once per interval, as a fleet does, over mutual TLS through the HAProxy front into
the connector, which hands their metrics to the forwarder process, which pushes them into a
real Prometheus with its remote-write receiver (Debian's `prometheus`). The payloads are
generated and serialized before the clock starts, so the load generator stays light. A
warm-up (one interval by default) comes first: Prometheus creates every series on its first
sample, a burst the steady state never sees again, so its drops are printed apart and the
figures below are the timed run's alone.

Printed: heartbeats, offered samples/s, heartbeat latency (p50, p99), what was dropped or
failed on the way (the unit's own counters), whether Prometheus holds exactly the series that
were sent (a `count` query), the CPU of every process over the run and the memory (PSS) of
each; then, with `--enrolled`, the unit's memory once that many clusters are enrolled (the rest
seeded straight into the database by tools/fleet_seed.py), after a /metrics scrape and again
after the API listed them all. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
import requests
from cluster_manager.settings import Settings
from prometheus_client.parser import text_string_to_metric_families

from tests.support.prometheus import PrometheusServer
from tools import gojson, loadgen, procstat
from tools.bench import enroll_fleet
from tools.fleet_seed import seed_fleet
from tools.jointoken import JoinToken
from tools.payloads import PayloadGenerator
from tools.pki import CertKey
from tools.postgres import PostgresServer
from tools.stack import Stack
from tools.tlsclient import destinations

MIB = 1024 * 1024


def prepared_clients(state: Path, members: int, instances: int) -> tuple[list, dict[str, int]]:
    """A load client per enrolled cluster with its heartbeat body, and its samples per beat."""
    clients, samples = [], {}
    now = time.time()
    for directory in sorted(p for p in state.iterdir() if (p / "joined.json").exists()):
        payload = PayloadGenerator(directory.name, members, instances).payload(now)
        samples[directory.name] = sum(
            1
            for entry in payload["server_metrics"]
            for line in entry["metrics"].splitlines()
            if line and not line.startswith("#")
        )
        body = gojson.dump_bytes(payload)
        clients.append(loadgen.LoadClient(CertKey.read(directory, "cluster"), body))
    return clients, samples


def own_metrics(stack: Stack) -> dict[str, float]:
    """The unit's own counters and gauges, summed over their labels.

    The connector's heartbeat durations are kept apart, as `heartbeat_seconds_sum` and
    `heartbeat_seconds_count`.
    """
    text = requests.get(stack.metrics_url, timeout=30).text
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name.startswith("mcm_http_request_duration_seconds_"):
                if sample.labels.get("endpoint") != "connector.heartbeat":
                    continue
                name = "heartbeat_seconds_" + name.rsplit("_", 1)[1]
            totals[name] = totals.get(name, 0.0) + sample.value
    return totals


def wait_forwarded(stack: Stack, expected: int, timeout: float = 300.0) -> dict[str, float]:
    """Wait until the unit has sent `expected` samples (or stopped sending any more)."""
    deadline = time.monotonic() + timeout
    last, still = -1.0, 0
    while True:
        counters = own_metrics(stack)
        sent = counters.get("mcm_remote_write_samples_sent_total", 0.0)
        still = still + 1 if sent == last else 0
        if sent >= expected or still >= 10 or time.monotonic() > deadline:
            return counters
        last = sent
        time.sleep(1)


def count_series(prometheus: PrometheusServer) -> int:
    """How many LXD series Prometheus holds (sampled within its 5-minute lookback)."""
    response = requests.get(
        f"{prometheus.url}/api/v1/query",
        params={"query": 'count({__name__=~"lxd_.+"})'},
        timeout=300,
    )
    response.raise_for_status()
    result = response.json()["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def unit_processes(stack: Stack) -> dict[str, list[int]]:
    """Every process of the unit, by service (masters and workers)."""
    return {name: procstat.descendants(pid) for name, pid in stack.pids().items()}


def print_memory(processes: Mapping[str, Sequence[int]]) -> int:
    """Print each process's PSS; return their total."""
    total = 0
    for name, pids in processes.items():
        sizes = [procstat.pss_bytes(pid) for pid in pids]
        total += sum(sizes)
        each = ", ".join(f"{size / MIB:.1f}" for size in sizes)
        print(f"  {name:<10} {sum(sizes) / MIB:7.1f} MB PSS ({len(pids)} processes: {each})")
    return total


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench_fleet_metrics", description=__doc__
    )
    parser.add_argument("--clusters", type=int, default=300, help="heartbeating clusters")
    parser.add_argument("--members", type=int, default=3, help="members per cluster")
    parser.add_argument("--instances", type=int, default=150, help="instances per cluster")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between beats")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds of load before, measured apart"
    )
    parser.add_argument(
        "--enrolled",
        type=int,
        default=10_000,
        help="clusters enrolled for the memory figure (0: skip)",
    )
    parser.add_argument("--workers", type=int, help="gunicorn workers per app (product default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the figures."""
    args = build_parser().parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mcm-bench-fleet-metrics-"))
    postgres = PostgresServer(Path(tempfile.mkdtemp(prefix="mcm-bench-postgres-")))
    postgres.init()
    postgres.start()
    prometheus = PrometheusServer(root / "prometheus").start()
    stack = None
    try:
        url = postgres.create_database("bench")
        env = {
            "MCM_WORKERS": str(args.workers or Settings.workers),  # the product's, not Stack's
            "MCM_RATE_LIMIT_CONNECTOR": "100000000/minute",
            "MCM_RATE_LIMIT_MANAGEMENT": "100000000/minute",
            "MCM_REMOTE_WRITE_URLS": prometheus.remote_write_url,
            "MCM_LOG_LEVEL": "warning",
        }
        stack = Stack(root / "stack", url, env=env).start()
        print(f"enrolling {args.clusters} clusters …", flush=True)
        fleet = enroll_fleet(stack, root / "fleet", args.clusters)
        print("generating their heartbeats …", flush=True)
        clients, samples = prepared_clients(fleet.state_dir, args.members, args.instances)
        per_beat = sum(samples.values())
        size = sum(len(client.body) for client in clients) / len(clients)
        print(
            f"{len(clients)} clusters of {args.members} members x {args.instances} instances: "
            f"{per_beat / len(clients):.0f} samples and {size / MIB:.2f} MB per heartbeat",
            flush=True,
        )
        token = JoinToken.decode((fleet.state_dir / next(iter(samples)) / "token").read_text())
        destination = destinations(token.addresses, stack.resolve)[0]
        trust = loadgen.pin(destination, token.fingerprint)
        if args.warmup > 0:
            # Prometheus creates every series on its first sample, a burst of work the steady
            # state never sees again; it is measured apart.
            print(f"warm-up: {args.warmup:g} s of heartbeats …", flush=True)
            warm = asyncio.run(
                loadgen.run_paced(
                    destination, trust, clients, interval=args.interval, duration=args.warmup
                )
            )
            expected_warm = round(warm.statuses.get(200, 0) * per_beat / len(clients))
            warmed = wait_forwarded(stack, expected_warm)
            print(f"warm-up: {warm.summary()}")
            print(
                "warm-up: dropped heartbeats "
                f"{warmed.get('mcm_remote_write_dropped_total', 0.0):.0f}, forwarded "
                f"{warmed.get('mcm_remote_write_samples_sent_total', 0.0):.0f} of {expected_warm}"
            )
        before = own_metrics(stack)
        processes = unit_processes(stack)
        everything = {
            **processes,
            "prometheus": [prometheus.pid],
            "postgres": procstat.descendants(postgres.postmaster_pid()),
        }
        cpu_before = {name: procstat.cpu_seconds(pids) for name, pids in everything.items()}
        print(
            f"{args.duration:g} s of heartbeats, one per cluster every {args.interval:g} s …",
            flush=True,
        )
        result = asyncio.run(
            loadgen.run_paced(
                destination, trust, clients, interval=args.interval, duration=args.duration
            )
        )
        cpu = {
            name: procstat.cpu_seconds(pids) - cpu_before[name]
            for name, pids in everything.items()
        }
        sent_beats = result.statuses.get(200, 0)
        expected = round(sent_beats * per_beat / len(clients))
        already = before.get("mcm_remote_write_samples_sent_total", 0.0)
        counters = wait_forwarded(stack, round(already) + expected)
        counters = {name: value - before.get(name, 0.0) for name, value in counters.items()}
        offered = per_beat / args.interval
        app_seconds = counters.get("heartbeat_seconds_sum", 0.0)
        app_count = counters.get("heartbeat_seconds_count", 0.0) or 1.0
        print(f"connector app's own time per heartbeat: {app_seconds / app_count * 1000:.1f} ms")
        print(result.summary())
        print(
            f"offered: {offered:.0f} samples/s ({len(clients) / args.interval:.1f} heartbeats/s)"
        )
        forwarded = counters.get("mcm_remote_write_samples_sent_total", 0.0)
        print(
            f"forwarded: {forwarded:.0f} samples of about {expected} sent; dropped heartbeats "
            f"{counters.get('mcm_remote_write_dropped_total', 0.0):.0f}, failed requests "
            f"{counters.get('mcm_remote_write_failed_total', 0.0):.0f}, bad texts "
            f"{counters.get('mcm_remote_write_bad_metrics_total', 0.0):.0f}"
        )
        series_expected = sum(samples.values())  # every cluster beat at least once
        series = count_series(prometheus)
        verdict = "equal" if series == series_expected else "DIFFERENT"
        print(f"series in Prometheus: {series}, sent: {series_expected} ({verdict})")
        print(f"CPU over the {result.duration:.0f} s run (share of one core):")
        for name, seconds in cpu.items():
            print(f"  {name:<10} {seconds / result.duration:6.1%}")
        print("memory:")
        total = print_memory(processes)
        print(f"  {'unit':<10} {total / MIB:7.1f} MB PSS (Prometheus apart:)")
        print_memory({"prometheus": [prometheus.pid]})
        if args.enrolled > args.clusters:
            print(f"seeding {args.enrolled - args.clusters} more clusters …", flush=True)
            with psycopg.connect(url, autocommit=True) as conn:
                seed_fleet(conn, args.enrolled - args.clusters)  # type: ignore[arg-type]
            own_metrics(stack)  # the scrape-time fleet gauges read all of them
            print(f"memory with {args.enrolled} enrolled clusters, after a /metrics scrape:")
            total = print_memory(unit_processes(stack))
            print(f"unit memory with {args.enrolled} clusters: {total / MIB:.0f} MB (PSS)")
            session = stack.management_session()
            response = session.get(f"{stack.management_url}/1.0/remote-cluster", timeout=120)
            listed = len(response.json()["metadata"])
            print(f"after the API listed all {listed} clusters in one answer:")
            total = print_memory(unit_processes(stack))
            print(f"unit memory after that listing: {total / MIB:.0f} MB (PSS)")
        return 0
    finally:
        if stack is not None:
            stack.stop()
        prometheus.stop()
        postgres.stop()


if __name__ == "__main__":
    sys.exit(main())
