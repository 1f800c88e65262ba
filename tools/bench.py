"""`python -m tools.bench`: heartbeat throughput and latency against the local stack.

N emulated clusters heartbeat back to back over keep-alive mutual TLS through the HAProxy front
into both gunicorn apps and PostgreSQL, all on this machine, for a fixed time. In the same run,
`pgbench` drives the very statement a heartbeat executes straight into PostgreSQL, which is
the ceiling no HTTP stack in front of it can pass; the ratio of the two says how much the
HTTP path costs. Prints figures; asserts nothing (speed is measured here, never in tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg
from cluster_manager.db.heartbeats import _STORE_HEARTBEAT, _parameters
from cluster_manager.protocol.connector import Heartbeat
from cluster_manager.settings import Settings
from psycopg import sql

from tools import gojson, loadgen
from tools.fleet import Fleet
from tools.payloads import PayloadGenerator
from tools.postgres import PostgresServer
from tools.stack import Stack
from tools.tlsclient import destinations


def enroll_fleet(stack: Stack, state: Path, clusters: int) -> Fleet:
    """Enroll `clusters` emulated clusters through the stack, their state under `state`."""
    session = stack.management_session()

    def mint(name: str) -> str:
        response = session.post(
            f"{stack.management_url}/1.0/remote-cluster-join-token", json={"cluster_name": name}
        )
        response.raise_for_status()
        return response.json()["metadata"]["token"]

    fleet = Fleet(state, clusters, mint, resolve=stack.resolve, jitter=False)
    enrolled = fleet.enroll_all()
    if len(enrolled) != clusters:
        raise RuntimeError(f"only {len(enrolled)} of {clusters} clusters enrolled")
    return fleet


def _pgbench_script(conn: psycopg.Connection, clusters: int) -> str:
    """The heartbeat statement with literal values; the caller varies by cluster id."""
    beat = Heartbeat.model_validate_json(gojson.dump_bytes(PayloadGenerator("bench").payload()))
    parameters = _parameters("FINGERPRINT", beat)
    statement = re.sub(r"%\((\w+)\)s", lambda m: "{" + m[1] + "}", _STORE_HEARTBEAT)
    literals = {key: sql.Literal(value) for key, value in parameters.items()}
    rendered = sql.SQL(statement).format(**literals).as_string(conn)  # type: ignore[arg-type]
    # Look the caller up by a random enrolled id instead of one fixed fingerprint.
    rendered = rendered.replace(
        "fingerprint = 'FINGERPRINT'",
        "id = (SELECT min(id) FROM clusters) + :n",
    )
    lines = [f"\\set n random(0, {clusters - 1})", " ".join(rendered.split()) + ";"]
    return "\n".join(lines) + "\n"


def _pgbench(postgres: PostgresServer, url: str, script: str, clients: int, seconds: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    Path(handle.name).chmod(0o644)
    database = url.rsplit("/", 1)[1]
    command = [
        str(postgres.bin / "pgbench"),
        "-n",
        "-h",
        "127.0.0.1",
        "-p",
        str(postgres.port),
        "-U",
        "postgres",
        "-c",
        str(clients),
        "-j",
        "2",
        "-T",
        str(seconds),
        "-M",
        "prepared",
        "-f",
        handle.name,
        database,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"tps = ([0-9.]+)", output)
    if match is None:
        raise RuntimeError(f"pgbench printed no tps: {output}")
    return float(match[1])


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument("--clusters", type=int, default=16, help="emulated clusters")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers per app (product default)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the figures."""
    args = build_parser().parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mcm-bench-"))
    postgres = PostgresServer(Path(tempfile.mkdtemp(prefix="mcm-bench-postgres-")))
    postgres.init()
    postgres.start()
    stack = None
    try:
        url = postgres.create_database("bench")
        stack = Stack(
            root / "stack",
            url,
            env={
                "MCM_RATE_LIMIT_CONNECTOR": "100000000/minute",
                "MCM_RATE_LIMIT_MANAGEMENT": "100000000/minute",
                **({"MCM_WORKERS": str(args.workers)} if args.workers else {}),
                "MCM_LOG_LEVEL": "warning",
            },
        ).start()
        print(f"enrolling {args.clusters} emulated clusters …", flush=True)
        enroll_fleet(stack, root / "fleet", args.clusters)
        clients, token = loadgen.clients_from_state(root / "fleet")
        destination = destinations(token.addresses, stack.resolve)[0]
        trust = loadgen.pin(destination, token.fingerprint)
        print(f"warming up, then {args.duration:g} s of heartbeats …", flush=True)
        asyncio.run(loadgen.run_load(destination, trust, clients, duration=2.0))
        result = asyncio.run(loadgen.run_load(destination, trust, clients, duration=args.duration))
        stack.stop()
        print(f"pgbench: the same statement straight into PostgreSQL for {args.duration:g} s …")
        with psycopg.connect(url) as conn:
            script = _pgbench_script(conn, args.clusters)
        ceiling = _pgbench(postgres, url, script, args.clusters, round(args.duration))
        figures = {
            **result.as_dict(),
            "pgbench_tps": round(ceiling, 1),
            "ratio_to_pgbench": round(result.rate / ceiling, 3) if ceiling else None,
            "workers": args.workers or Settings.workers,
        }
        if args.json:
            print(json.dumps(figures, indent=2))
        else:
            print(result.summary())
            print(
                f"pgbench ceiling {ceiling:.1f} statements/s; the HTTP stack reaches "
                f"{figures['ratio_to_pgbench']:.1%} of it"
            )
        return 0 if result.statuses.get(200, 0) == result.requests else 1
    finally:
        if stack is not None:
            stack.stop()
        postgres.stop()


if __name__ == "__main__":
    sys.exit(main())
