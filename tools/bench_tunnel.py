"""`python -m tools.bench_tunnel`: memory per idle reverse tunnel, latency of a request in one.

N emulated MicroCloud clusters enroll and open their reverse tunnel (microcloudd's dialer and
request loop, `tools/tunnel.py`) through the HAProxy front into one unit's tunnel process, and
stay idle. The tunnel process's and HAProxy's memory (PSS, from `/proc/<pid>/smaps_rollup`) is
read before and after, so the difference divided by N is what one idle tunnel costs the unit.
Then requests go one after another through the management API to the LXD of one cluster,
through its tunnel, and their latency is printed. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from tools import procstat
from tools.fleet import cluster_names
from tools.lxd import EmulatedLXD
from tools.microcloud import MicroCloudClient
from tools.postgres import PostgresServer
from tools.stack import Stack
from tools.tunnel import TunnelClient


def tree_pss_mib(pid: int) -> float:
    """PSS of a process and every process below it (HAProxy's master and worker), in MiB."""
    return sum(procstat.pss_bytes(p) for p in procstat.descendants(pid)) / 2**20


def _enroll(stack: Stack, names: Sequence[str]) -> list[MicroCloudClient]:
    session = stack.management_session()

    def join(name: str) -> MicroCloudClient:
        response = session.post(
            f"{stack.management_url}/1.0/remote-cluster-join-token", json={"cluster_name": name}
        )
        response.raise_for_status()
        client = MicroCloudClient(response.json()["metadata"]["token"], resolve=stack.resolve)
        joined = client.join()
        if not joined.ok:
            raise RuntimeError(f"{name} could not join: {joined.status} {joined.text}")
        client.close()
        return client

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(join, names))


def _open(clients: Sequence[MicroCloudClient], interval: float) -> list[TunnelClient]:
    tunnels = [client.tunnel(EmulatedLXD(), interval=interval).start() for client in clients]
    deadline = time.monotonic() + 120
    opened = 0
    while time.monotonic() < deadline:
        opened = sum(1 for tunnel in tunnels if tunnel.connected)
        print(f"  {opened}/{len(tunnels)} tunnels open", flush=True)
        if opened == len(tunnels):
            return tunnels
        time.sleep(2)
    raise RuntimeError(f"only {opened} of {len(tunnels)} tunnels opened within 120 s")


def _latencies(stack: Stack, cluster: str, count: int) -> list[float]:
    session = stack.management_session()
    url = f"{stack.management_url}/1.0/remote-cluster/{cluster}/tunnel/1.0"
    session.get(url, timeout=30).raise_for_status()  # warm up the connection
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=30)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
    return seconds


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench_tunnel", description=__doc__)
    parser.add_argument("--tunnels", type=int, default=1000, help="idle tunnels to hold")
    parser.add_argument("--requests", type=int, default=500, help="requests to time")
    parser.add_argument(
        "--dial-interval", type=float, default=10.0, help="tunnel dial interval (microcloudd: 10)"
    )
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds to wait before reading memory again"
    )
    parser.add_argument(
        "--database-url", help="an existing PostgreSQL database (default: a new local server)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the figures."""
    args = build_parser().parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mcm-bench-tunnel-"))
    postgres = None
    database_url = args.database_url
    if database_url is None:
        postgres = PostgresServer(Path(tempfile.mkdtemp(prefix="mcm-bench-postgres-")))
        postgres.init()
        postgres.start()
        database_url = postgres.create_database("bench")
    stack: Stack | None = None
    tunnels: list[TunnelClient] = []
    try:
        stack = Stack(
            root / "stack",
            database_url,
            env={
                "MCM_RATE_LIMIT_CONNECTOR": "100000000/minute",
                "MCM_RATE_LIMIT_MANAGEMENT": "100000000/minute",
                "MCM_LOG_LEVEL": "warning",
            },
        ).start()
        names = cluster_names(args.tunnels, "tun")
        print(f"enrolling {len(names)} emulated clusters …", flush=True)
        clients = _enroll(stack, names)
        time.sleep(1)
        pids = stack.pids()
        holder, front = pids["tunnel"], pids["haproxy"]
        before = tree_pss_mib(holder), tree_pss_mib(front)
        print(f"opening {len(clients)} reverse tunnels (dial every {args.dial_interval:g} s) …")
        tunnels = _open(clients, args.dial_interval)
        time.sleep(args.settle)  # let every handshake's garbage go
        after = tree_pss_mib(holder), tree_pss_mib(front)
        print(f"timing {args.requests} requests through the tunnel of {names[0]} …", flush=True)
        seconds = _latencies(stack, names[0], args.requests)
        count = len(tunnels)
        print(
            f"tunnel process: {before[0]:.1f} MiB with none, {after[0]:.1f} MiB"
            f" with {count}: {(after[0] - before[0]) * 1024 / count:.1f} KiB per idle tunnel"
        )
        print(
            f"HAProxy (master and worker): {before[1]:.1f} MiB, {after[1]:.1f} MiB:"
            f" {(after[1] - before[1]) * 1024 / count:.1f} KiB per idle tunnel"
        )
        print(
            f"GET /1.0 through a tunnel via the management API ({len(seconds)} requests, one at"
            f" a time): p50 {statistics.median(seconds) * 1000:.1f} ms,"
            f" p99 {_percentile(seconds, 0.99) * 1000:.1f} ms,"
            f" max {max(seconds) * 1000:.1f} ms"
        )
        return 0
    except (RuntimeError, requests.RequestException) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        for tunnel in tunnels:
            tunnel.stop()
        if stack is not None:
            stack.stop()
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    sys.exit(main())
