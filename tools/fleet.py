"""A fleet of emulated MicroCloud clusters: join once, then heartbeat on a schedule.

Each cluster keeps its certificate, key and join token under ``<state-dir>/<name>/``, and a
``joined.json`` marker once the manager accepted it, so a second run reuses the same clusters
and only heartbeats. Run ``python -m tools.fleet --help`` for the command line.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from tools import pki
from tools.jointoken import JoinToken, TokenError, split_host_port
from tools.lxd import EmulatedLXD
from tools.microcloud import (
    TUNNEL_CHECK_INTERVAL,
    ClusterManagerError,
    MicroCloudClient,
    Response,
)
from tools.payloads import PayloadGenerator
from tools.pki import CertKey

if TYPE_CHECKING:
    from tools.tunnel import TunnelClient  # wsproto is imported only when a cluster tunnels

LOG = logging.getLogger("tools.fleet")

MintToken = Callable[[str], str]


class FleetError(RuntimeError):
    """A fleet operation failed in a way the user has to fix."""


@dataclass
class ClusterStatus:
    """What happened to one cluster so far."""

    name: str
    joined: bool = False
    reused: bool = False
    heartbeats_ok: int = 0
    heartbeats_failed: int = 0
    last_status: int | None = None
    last_error: str = ""
    forbidden: bool = False

    def record(self, response: Response | None, error: str = "") -> None:
        """Count one heartbeat outcome.

        Args:
            response: the response, or None when no response came.
            error: what went wrong when there is no response.
        """
        self.last_status = response.status if response is not None else None
        if response is not None and response.ok:
            self.heartbeats_ok += 1
            self.last_error = ""
            self.forbidden = False
            return
        self.heartbeats_failed += 1
        self.forbidden = response is not None and response.status == 403
        self.last_error = error or (
            f"{response.status} {response.reason}: {response.text.strip()[:200]}"
            if response is not None
            else "no response"
        )


@dataclass
class _Cluster:
    name: str
    directory: Path
    status: ClusterStatus
    generator: PayloadGenerator
    client: MicroCloudClient | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    lxd: EmulatedLXD | None = None
    """The LXD its reverse tunnel reaches; None when the cluster opens no tunnel."""
    tunnel: TunnelClient | None = None


METRICS_TEXT_TTL = 300.0
"""Seconds an emulated member's LXD metrics text is reused: hundreds of clusters stay cheap."""


def cluster_names(count: int, prefix: str = "mc") -> list[str]:
    """Names ``mc-01``, ``mc-02``… (wider numbers past 99).

    Args:
        count: how many.
        prefix: name prefix.

    Returns:
        The names.
    """
    width = max(2, len(str(count)))
    return [f"{prefix}-{index:0{width}d}" for index in range(1, count + 1)]


class Fleet:
    """N emulated MicroCloud clusters sharing one manager."""

    def __init__(
        self,
        state_dir: str | Path,
        clusters: int | Sequence[str],
        mint_token: MintToken | None = None,
        *,
        interval: float = 60.0,
        resolve: Mapping[str, tuple[str, int]] | None = None,
        members: int = 3,
        instances: int = 12,
        probe_every_request: bool = True,
        timeout: float = 10.0,
        jitter: bool = True,
        seed: int | None = None,
        tunnels: int = 0,
        tunnel_interval: float = TUNNEL_CHECK_INTERVAL,
    ):
        """Describe the fleet; nothing is contacted until :meth:`enroll_all` or :meth:`run`.

        Args:
            state_dir: where clusters' certificates, tokens and join markers live.
            clusters: a count (names ``mc-01``…) or explicit names.
            mint_token: returns a fresh join token for a cluster name (needed for new clusters).
            interval: seconds between heartbeats of one cluster.
            resolve: ``{"host:port": (ip, port)}`` destination overrides (see MicroCloudClient).
            members: members per simulated cluster.
            instances: instances per simulated cluster.
            probe_every_request: probe ``GET /`` before every request, as MicroCloud does.
            timeout: socket timeout in seconds.
            jitter: spread the first heartbeats over one interval.
            seed: seed for the start jitter.
            tunnels: how many clusters (the first ones) also hold a reverse tunnel to an
                emulated LXD while they run, as microcloudd does with `reverse_tunnel` on.
            tunnel_interval: seconds between a tunnel's dial attempts (microcloudd: 10).
        """
        names = cluster_names(clusters) if isinstance(clusters, int) else list(clusters)
        self.state_dir = Path(state_dir)
        self.mint_token = mint_token
        self.interval = interval
        self.resolve = dict(resolve or {})
        self.probe_every_request = probe_every_request
        self.timeout = timeout
        self.jitter = jitter
        self.tunnel_interval = tunnel_interval
        self._rng = random.Random(seed)
        self._clusters = {
            name: _Cluster(
                name,
                self.state_dir / name,
                ClusterStatus(name),
                PayloadGenerator(name, members, instances, text_ttl=METRICS_TEXT_TTL),
            )
            for name in names
        }
        for name in names[:tunnels]:
            hosts = tuple(f"{name}-{index}" for index in range(1, members + 1))
            self._clusters[name].lxd = EmulatedLXD(server_name=hosts[0], members=hosts)
        self._mint_lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        """Cluster names, in order."""
        return list(self._clusters)

    @property
    def tunnel_names(self) -> list[str]:
        """The clusters that hold a reverse tunnel while they run."""
        return [name for name, cluster in self._clusters.items() if cluster.lxd is not None]

    @property
    def status(self) -> dict[str, ClusterStatus]:
        """Per-cluster status."""
        return {name: cluster.status for name, cluster in self._clusters.items()}

    def _load_or_create(self, cluster: _Cluster) -> tuple[CertKey, str | None]:
        directory = cluster.directory
        if (directory / "cluster.crt").exists():
            cert = CertKey.read(directory, "cluster")
        else:
            cert = pki.cluster_certificate(cluster.name)
            cert.write(directory, "cluster")
        token_path = directory / "token"
        token = token_path.read_text().strip() if token_path.exists() else None
        return cert, token

    def _mint(self, name: str) -> str:
        if self.mint_token is None:
            raise FleetError(
                f"cluster {name} has no usable join token in {self.state_dir / name}; "
                "give a way to mint one (--mint-command)"
            )
        with self._mint_lock:
            token = self.mint_token(name).strip()
        JoinToken.decode(token)
        (self.state_dir / name / "token").write_text(token + "\n")
        return token

    def _new_client(self, cluster: _Cluster, token: str, cert: CertKey) -> MicroCloudClient:
        if cluster.client is not None:
            cluster.client.close()
        cluster.client = MicroCloudClient(
            token,
            cert,
            resolve=self.resolve,
            probe_every_request=self.probe_every_request,
            timeout=self.timeout,
        )
        return cluster.client

    def _mark_joined(self, cluster: _Cluster, client: MicroCloudClient) -> None:
        marker = {"joined_at": time.time(), "manager_fingerprint": client.token.fingerprint}
        (cluster.directory / "joined.json").write_text(json.dumps(marker) + "\n")
        cluster.status.joined = True

    def enroll(self, name: str) -> bool:
        """Join one cluster unless its state says it already joined.

        Args:
            name: the cluster.

        Returns:
            True when the cluster is (now) enrolled.

        Raises:
            FleetError: when a token is needed and cannot be minted.
        """
        cluster = self._clusters[name]
        with cluster.lock:
            cert, token = self._load_or_create(cluster)
            if token is not None and (cluster.directory / "joined.json").exists():
                self._new_client(cluster, token, cert)
                cluster.status.joined = cluster.status.reused = True
                LOG.info("%s: reusing enrolled cluster from %s", name, cluster.directory)
                return True
            fresh = token is None
            if token is None:
                token = self._mint(name)
            response = self._new_client(cluster, token, cert).join()
            if not response.ok and not fresh and response.status in (403, 404):
                LOG.info("%s: stored token refused (%s), minting a new one", name, response.status)
                response = self._new_client(cluster, self._mint(name), cert).join()
            return self._after_join(cluster, response)

    def _after_join(self, cluster: _Cluster, response: Response) -> bool:
        client = cluster.client
        assert client is not None  # noqa: S101 - set by _new_client
        if response.ok:
            self._mark_joined(cluster, client)
            LOG.info("%s: joined", cluster.name)
            return True
        if response.status == 409 and client.heartbeat(cluster.generator.payload()).ok:
            # Enrolled on an earlier run that stopped before writing the marker.
            self._mark_joined(cluster, client)
            LOG.info("%s: already enrolled with this certificate", cluster.name)
            return True
        cluster.status.last_status = response.status
        cluster.status.last_error = f"join: {response.status} {response.text.strip()[:200]}"
        LOG.error("%s: join failed: %s", cluster.name, cluster.status.last_error)
        return False

    def enroll_all(self) -> list[str]:
        """Enroll every cluster (sequentially).

        Returns:
            Names of the clusters that are enrolled.
        """
        return [name for name in self._clusters if self._try_enroll(name)]

    def _try_enroll(self, name: str) -> bool:
        try:
            return self.enroll(name)
        except (ClusterManagerError, TokenError, FleetError, OSError) as exc:
            self._clusters[name].status.last_error = f"join: {exc}"
            LOG.error("%s: cannot enroll: %s", name, exc)
            return False

    def heartbeat(self, name: str, now: float | None = None) -> Response | None:
        """Send one heartbeat for an enrolled cluster; failures are recorded, not raised.

        Args:
            name: the cluster.
            now: payload time (defaults to the current time).

        Returns:
            The response, or None when the request failed.
        """
        cluster = self._clusters[name]
        with cluster.lock:
            if cluster.client is None:
                raise FleetError(f"cluster {name} is not enrolled")
            try:
                response = cluster.client.heartbeat(cluster.generator.payload(now))
            except ClusterManagerError as exc:
                cluster.status.record(None, str(exc))
                LOG.warning("%s: heartbeat failed: %s", name, exc)
                return None
            cluster.status.record(response)
            if response.status == 403:
                LOG.warning("%s: heartbeat refused (403): not enrolled any more?", name)
            elif not response.ok:
                LOG.warning("%s: heartbeat failed: %s", name, cluster.status.last_error)
            else:
                LOG.debug("%s: heartbeat ok", name)
            return response

    def leave(self, name: str) -> Response:
        """Leave the manager (DELETE) and forget the cluster's state on success.

        Args:
            name: the cluster.

        Returns:
            The manager's response.
        """
        cluster = self._clusters[name]
        with cluster.lock:
            cert, token = self._load_or_create(cluster)
            if token is None:
                raise FleetError(f"cluster {name} has no state in {cluster.directory}")
            response = self._new_client(cluster, token, cert).leave()
            if response.ok:
                self._new_client(cluster, token, cert).close()
                cluster.client = None
                cluster.status.joined = False
                shutil.rmtree(cluster.directory)
            return response

    def _cluster_loop(self, name: str, stop: threading.Event) -> None:
        if not self._try_enroll(name):
            return
        cluster = self._clusters[name]
        if cluster.lxd is not None and cluster.client is not None:
            tunnel = cluster.client.tunnel(cluster.lxd, interval=self.tunnel_interval)
            cluster.tunnel = tunnel.start()
        first = self._rng.uniform(0, self.interval) if self.jitter else 0.0
        next_at = time.monotonic() + first
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            self.heartbeat(name)
            next_at += self.interval
            if next_at < time.monotonic():  # fell behind (slow manager): do not burst
                next_at = time.monotonic() + self.interval

    def run(
        self, stop: threading.Event, report_every: float | None = None
    ) -> dict[str, ClusterStatus]:
        """Enroll and heartbeat every cluster in its own thread until ``stop`` is set.

        Args:
            stop: set it to end the run.
            report_every: seconds between summary log lines (default: the interval).

        Returns:
            Per-cluster status at the end.
        """
        threads = [
            threading.Thread(target=self._cluster_loop, args=(name, stop), name=name, daemon=True)
            for name in self._clusters
        ]
        for thread in threads:
            thread.start()
        period = report_every if report_every is not None else max(self.interval, 1.0)
        while not stop.wait(period):
            LOG.info("fleet: %s", self.summary())
        for thread in threads:
            thread.join(timeout=self.timeout * 3 + 1)
        for cluster in self._clusters.values():
            if cluster.tunnel is not None:
                cluster.tunnel.stop()
            if cluster.client is not None:
                cluster.client.close()
        LOG.info("fleet stopped: %s", self.summary())
        return self.status

    def summary(self) -> str:
        """One line: enrolled, healthy, refused and failing cluster counts."""
        statuses = list(self.status.values())
        ok = sum(1 for s in statuses if s.last_status == 200)
        forbidden = [s.name for s in statuses if s.forbidden]
        failing = sum(1 for s in statuses if s.heartbeats_failed and s.last_status != 200)
        sent = sum(s.heartbeats_ok + s.heartbeats_failed for s in statuses)
        tunnels = [c.tunnel for c in self._clusters.values() if c.lxd is not None]
        text = (
            f"{sum(s.joined for s in statuses)}/{len(statuses)} enrolled, {ok} healthy, "
            f"{failing} failing, {sent} heartbeats sent"
        )
        if tunnels:
            open_ = sum(1 for tunnel in tunnels if tunnel is not None and tunnel.connected)
            text += f", {open_}/{len(tunnels)} tunnels open"
        if forbidden:
            text += f", refused (403): {', '.join(forbidden)}"
        return text


def extract_token(output: str) -> str:
    """Find the join token in a command's output.

    Accepts JSON with a ``token`` key (e.g. ``create-join-token --json``) or any text with a
    word that decodes as a join token (the human output, a ``microcloud ... join`` line).

    Args:
        output: the command's standard output.

    Returns:
        The token.

    Raises:
        FleetError: when there is none.
    """
    try:
        data = json.loads(output)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("token"), str):
        return data["token"]
    for word in reversed(output.split()):
        try:
            JoinToken.decode(word)
        except TokenError:
            continue
        return word
    raise FleetError(f"no join token found in the mint command's output: {output.strip()[:300]!r}")


def command_minter(template: str, timeout: float = 60.0) -> MintToken:
    """A minter running a shell command; ``{name}`` is replaced by the (quoted) cluster name.

    Args:
        template: shell command, e.g. ``cluster-manager create-join-token {name} --json``.
        timeout: seconds the command may take.

    Returns:
        The minter.
    """
    if "{name}" not in template:
        raise FleetError("--mint-command must contain {name}")

    def mint(name: str) -> str:
        command = template.replace("{name}", shlex.quote(name))
        LOG.info("%s: minting a join token", name)
        try:
            done = subprocess.run(  # noqa: S602 - the user's own command line, by design
                command, shell=True, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise FleetError(f"mint command for {name} timed out after {timeout}s") from exc
        if done.returncode != 0:
            raise FleetError(
                f"mint command for {name} failed (exit {done.returncode}): "
                f"{done.stderr.strip()[:500] or done.stdout.strip()[:500]}"
            )
        return extract_token(done.stdout)

    return mint


def parse_resolve(values: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Parse ``host:port=ip:port`` items.

    Args:
        values: the items.

    Returns:
        The mapping for MicroCloudClient.

    Raises:
        FleetError: on a malformed item.
    """
    result: dict[str, tuple[str, int]] = {}
    for value in values:
        source, sep, target = value.partition("=")
        try:
            if not sep:
                raise TokenError("missing '='")
            split_host_port(source)
            result[source] = split_host_port(target)
        except TokenError as exc:
            raise FleetError(f"--resolve {value!r}: expected host:port=ip:port ({exc})") from exc
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.fleet",
        description="Run N emulated MicroCloud clusters against a cluster manager: join once "
        "(state kept in --state-dir, reused on the next run), then heartbeat every --interval "
        "seconds until interrupted.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".local/fleet"),
        help="per-cluster certificates, tokens and join markers (default: .local/fleet)",
    )
    parser.add_argument("--clusters", type=int, default=3, help="number of clusters (mc-01…)")
    parser.add_argument("--interval", type=float, default=60.0, help="heartbeat period, seconds")
    parser.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:PORT=IP:PORT",
        help="connect to IP:PORT for token address HOST:PORT (SNI and name check keep HOST)",
    )
    parser.add_argument(
        "--mint-command",
        help="shell command printing a join token (or JSON with 'token'); {name} is replaced "
        "by the cluster name",
    )
    parser.add_argument("--members", type=int, default=3, help="members per cluster")
    parser.add_argument("--instances", type=int, default=12, help="instances per cluster")
    parser.add_argument(
        "--tunnels",
        type=int,
        default=0,
        help="how many clusters (the first ones) also hold a reverse tunnel (default: none)",
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--once", action="store_true", help="join, send one heartbeat, exit")
    parser.add_argument("--leave", action="store_true", help="leave with every cluster, exit")
    parser.add_argument(
        "--no-probe", action="store_true", help="probe GET / only once per client, not per request"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    return parser


def _once(fleet: Fleet) -> int:
    enrolled = fleet.enroll_all()
    results = [fleet.heartbeat(name) for name in enrolled]
    LOG.info("fleet: %s", fleet.summary())
    healthy = all(r is not None and r.ok for r in results)
    return 0 if healthy and len(enrolled) == len(fleet.names) else 1


def _leave(fleet: Fleet) -> int:
    code = 0
    for name in fleet.names:
        try:
            response = fleet.leave(name)
        except (FleetError, ClusterManagerError, TokenError) as exc:
            LOG.warning("%s: %s", name, exc)
            continue
        LOG.info("%s: leave → %s %s", name, response.status, response.reason)
        code = code if response.ok else 1
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tools.fleet``.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        Exit code: 0 ok, 1 some cluster failed, 2 usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(threadName)s %(message)s"
    )
    try:
        if args.clusters < 1 or args.interval <= 0:
            raise FleetError("--clusters must be at least 1 and --interval positive")
        fleet = Fleet(
            args.state_dir,
            args.clusters,
            command_minter(args.mint_command) if args.mint_command else None,
            interval=args.interval,
            resolve=parse_resolve(args.resolve),
            members=args.members,
            instances=args.instances,
            probe_every_request=not args.no_probe,
            tunnels=args.tunnels,
        )
    except (FleetError, ValueError) as exc:
        parser.error(str(exc))
    if args.leave:
        return _leave(fleet)
    if args.once:
        return _once(fleet)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        LOG.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    statuses = fleet.run(stop)
    return 0 if all(s.joined for s in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
