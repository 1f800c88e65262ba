"""A throw-away PostgreSQL server from the distribution's packages, for tests and benchmark.

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user that
the Debian package creates; everything else stays in a temporary directory.

With a server certificate the server requires TLS as postgresql-k8s does once TLS is on
(`hostssl` lines only, in its patroni.yml): `ssl=on`, and a TCP client without TLS is refused.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tools.pki import CertKey
from tools.ports import free_port


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL server binaries."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: run scripts/bootstrap")
    return Path(candidates[-1]).parent


class PostgresServer:
    """One PostgreSQL cluster on a loopback port, started and stopped on demand."""

    def __init__(self, base_dir: Path, *, durable: bool = False, tls: CertKey | None = None):
        """Prepare a server in `base_dir`.

        Args:
            base_dir: directory for the cluster, its socket, log and TLS files.
            durable: write WAL before a commit returns (tests that crash the server).
            tls: the server certificate (leaf, then chain) and key; None for no TLS.
        """
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.log_file = base_dir / "postgres.log"
        self.port = free_port()
        self.bin = postgres_bin_dir()
        self._as_postgres = os.geteuid() == 0
        # Without durability a commit may return before its WAL is written, which is fine for
        # speed but not for tests that kill the server and count what survived.
        self.durable = durable
        self.tls = tls

    @property
    def admin_url(self) -> str:
        """URL of the `postgres` database as superuser."""
        return self.url("postgres")

    def url(self, database: str) -> str:
        """URL of `database` as the superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster directory."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.base_dir, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if self.tls is not None:
            self._require_tls(self.tls)

    def _require_tls(self, tls: CertKey) -> None:
        """Write the server certificate and key, and accept TCP clients over TLS only."""
        cert, key = tls.write(self.base_dir / "tls", "server")
        if self._as_postgres:  # the server refuses a key file it does not own
            for path in (cert.parent, cert, key):
                shutil.chown(path, "postgres", "postgres")
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl all all 127.0.0.1/32 trust\n"
            "hostssl all all ::1/128 trust\n"
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.base_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off -c max_connections=300"
        )
        if not self.durable:
            options += " -c synchronous_commit=off"
        if self.tls is not None:
            tls_dir = self.base_dir / "tls"
            options += (
                f" -c ssl=on -c ssl_cert_file={tls_dir / 'server.crt'}"
                f" -c ssl_key_file={tls_dir / 'server.key'}"
            )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        """Stop the server at once, cutting every connection (like a crash or failover)."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Stop every process of this server with SIGSTOP, like a stalled host, until exit.

        Connections stay open and new ones are accepted by the kernel, but nothing answers:
        neither the startup handshake nor a query. Every process is resumed (SIGCONT) on exit,
        whatever happened inside.
        """
        postmaster = self.postmaster_pid()
        stopped: list[int] = []
        try:
            # The postmaster first: stopped, it forks no new backend while we list its children.
            os.kill(postmaster, signal.SIGSTOP)
            stopped.append(postmaster)
            for pid in _children(postmaster):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            yield
        finally:
            for pid in reversed(stopped):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def postmaster_pid(self) -> int:
        """The PID of the running server's postmaster (first line of `postmaster.pid`)."""
        return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr}{result.stdout}\n{log[-2000:]}")


def _children(parent: int) -> list[int]:
    """PIDs whose parent is `parent`, from /proc (the postmaster's backends and helpers)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process exited while we looked
            continue
        # `pid (comm) state ppid ...`; comm may hold spaces or parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            children.append(int(text.split(" ", 1)[0]))
    return children
