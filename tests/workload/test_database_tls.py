"""PostgreSQL over TLS, verified: the URL the charm builds against a real server that requires TLS.

The URL comes from the charm's own library (`DatabaseCredentials.uri`), so what is tested is
the rule it documents: `verify-full` for a host name, `verify-ca` for an IP address, and
`sslrootcert` naming the provider's CA. The server's certificate names `localhost` only, as
postgresql-k8s's names its services and not their IP addresses.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from charms.microcloud_cluster_manager_k8s.v0.postgresql_client import DatabaseCredentials
from cluster_manager.db.pool import Database

from tests.workload.test_migrations import cli_migrate
from tools.pki import CertKey, issue, make_ca
from tools.postgres import PostgresServer


@pytest.fixture(scope="module")
def ca() -> CertKey:
    return make_ca("database test CA")


@pytest.fixture(scope="module")
def tls_postgres(ca: CertKey) -> Iterator[PostgresServer]:
    """One server for the module, whose certificate (signed by `ca`) names `localhost`."""
    base = Path(tempfile.mkdtemp(prefix="mcm-postgres-tls-"))
    server = PostgresServer(base, tls=issue(ca, "localhost", dns_names=["localhost"]))
    server.init()
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def ca_files(ca: CertKey, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The right CA and another one, as the charm writes `tls-ca` for libpq."""
    directory = tmp_path_factory.mktemp("database-ca")
    files = {"right": directory / "database-ca.crt", "wrong": directory / "other-ca.crt"}
    files["right"].write_text(ca.leaf_pem)
    files["wrong"].write_text(make_ca("some other CA").leaf_pem)
    return files


def _url(server: PostgresServer, host: str, ca_file: Path) -> str:
    """The charm's URL for a fresh database on `server`, reached at `host`."""
    database = f"tls_{os.urandom(4).hex()}"
    server.create_database(database)
    credentials = DatabaseCredentials(
        database=database,
        endpoints=(f"{host}:{server.port}",),
        username="postgres",
        password="unused",  # the test server trusts its clients
        tls=True,
        tls_ca=ca_file.read_text(),
        tls_ca_file=str(ca_file),
    )
    return credentials.uri


def test_migrate_verifies_the_server_name_and_ca(
    tls_postgres: PostgresServer, ca_files: dict[str, Path]
) -> None:
    url = _url(tls_postgres, "localhost", ca_files["right"])

    result = cli_migrate(url)

    assert f"sslmode=verify-full&sslrootcert={ca_files['right']}" in url
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"] > 0


def test_the_pool_connects_over_tls_with_the_url(
    tls_postgres: PostgresServer, ca_files: dict[str, Path]
) -> None:
    database = Database(_url(tls_postgres, "localhost", ca_files["right"]))
    try:
        row = database.run(
            lambda conn: conn.execute(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
        )
    finally:
        database.close()

    assert row == {"ssl": True}


def test_a_server_certificate_from_another_ca_is_refused(
    tls_postgres: PostgresServer, ca_files: dict[str, Path]
) -> None:
    result = cli_migrate(_url(tls_postgres, "localhost", ca_files["wrong"]))

    assert result.returncode == 3
    assert "error: database unavailable" in result.stderr
    assert "certificate verify failed" in result.stderr


def test_an_ip_address_host_verifies_the_ca_of_a_certificate_for_a_name(
    tls_postgres: PostgresServer, ca_files: dict[str, Path]
) -> None:
    url = _url(tls_postgres, "127.0.0.1", ca_files["right"])

    result = cli_migrate(url)

    assert "sslmode=verify-ca&" in url
    assert result.returncode == 0, result.stderr


def test_verify_ca_still_refuses_another_ca_by_ip_address(
    tls_postgres: PostgresServer, ca_files: dict[str, Path]
) -> None:
    result = cli_migrate(_url(tls_postgres, "127.0.0.1", ca_files["wrong"]))

    assert result.returncode == 3
    assert "certificate verify failed" in result.stderr


def test_verify_full_by_ip_address_fails_on_the_name_which_is_why_the_rule_exists(
    tls_postgres: PostgresServer, ca_files: dict[str, Path]
) -> None:
    url = _url(tls_postgres, "127.0.0.1", ca_files["right"]).replace("verify-ca", "verify-full")

    result = cli_migrate(url)

    assert result.returncode == 3
    assert 'server certificate for "localhost"' in result.stderr
    assert 'does not match host name "127.0.0.1"' in result.stderr


def test_the_server_refuses_clients_without_tls(
    tls_postgres: PostgresServer, ca_files: dict[str, Path]
) -> None:
    url = _url(tls_postgres, "localhost", ca_files["right"]).split("?")[0] + "?sslmode=disable"

    result = cli_migrate(url)

    assert result.returncode == 3
    assert "no encryption" in result.stderr
