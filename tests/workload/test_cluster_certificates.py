"""Every shape of certificate a real MicroCloud may present joins, heartbeats and leaves.

microcloudd presents microcluster's cluster certificate, an LXD *server* certificate
(canonical/lxd `shared/cert.go`, `GenerateMemCert(client=false)`): EKU serverAuth only,
EC P-384, or RSA 4096 on installs made with older LXD (reference §2.2a). The front must take
it whatever its purpose; the app refuses only unknown and out-of-date ones, and says why.
The last test makes its certificate with the openssl command and speaks with curl, so the
emulator's own TLS code is not the only client that proves it.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.clusters import KNOWN_HEARTBEAT
from tools import pki
from tools.microcloud import MicroCloudClient
from tools.stack import Stack

SHAPES = {
    "ec-server-auth-only": {},
    "rsa-server-auth-only": {"key_type": "rsa"},
    "no-extended-key-usage": {"extended_key_usage": None},
    "client-auth-only": {"extended_key_usage": [ExtendedKeyUsageOID.CLIENT_AUTH]},
    "older-lxd-organization": {"organization": "linuxcontainers.org"},
}


def _names(stack: Stack) -> list[str]:
    return [line.split()[0] for line in stack.cli("list-clusters").stdout.splitlines()[1:]]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_cluster_certificate_of_every_shape_joins_heartbeats_and_leaves(
    stack: Stack, shape: str
) -> None:
    name = f"shape-{shape}"
    certificate = pki.cluster_certificate(f"{name}-1", **SHAPES[shape])
    client = MicroCloudClient(stack.mint_token(name), certificate, resolve=stack.resolve)

    joined = client.join()
    reported = client.heartbeat(KNOWN_HEARTBEAT)
    listed = name in _names(stack)
    left = client.leave()

    assert (joined.status, reported.status, left.status) == (200, 200, 200), joined.text
    assert listed
    assert name not in _names(stack)


def test_a_join_presenting_an_expired_certificate_is_refused_saying_so(stack: Stack) -> None:
    now = datetime.now(UTC)
    expired = pki.cluster_certificate(
        "expired-1", not_before=now - timedelta(days=3650), not_after=now - timedelta(days=1)
    )
    client = MicroCloudClient(stack.mint_token("shape-expired"), expired, resolve=stack.resolve)

    response = client.join()

    assert response.status == 403
    assert response.json["error"].startswith("TLS client certificate expired at ")
    assert "shape-expired" not in _names(stack)


def test_a_heartbeat_presenting_a_certificate_that_expired_since_joining_is_refused_saying_so(
    stack: Stack,
) -> None:
    # Long enough to join on a busy machine; the test then waits for the expiry itself.
    expiry = datetime.now(UTC) + timedelta(seconds=6)
    short_lived = pki.cluster_certificate(
        "expiring-1", not_before=expiry - timedelta(minutes=1), not_after=expiry
    )
    client = MicroCloudClient(
        stack.mint_token("shape-expiring"), short_lived, resolve=stack.resolve
    )
    assert client.join().ok
    client.close()
    time.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 1.1)

    response = client.heartbeat(KNOWN_HEARTBEAT)

    assert response.status == 403
    assert "expired" in response.json["error"]


def _openssl_server_auth_certificate(directory: Path) -> tuple[Path, Path]:
    """The issue's reproduction: `openssl req -x509` with extendedKeyUsage=serverAuth."""
    cert, key = directory / "cluster.crt", directory / "cluster.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384",
            "-nodes", "-days", "3650", "-subj", "/O=LXD/CN=root@openssl-1",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "extendedKeyUsage=serverAuth",
            "-addext", "subjectAltName=DNS:openssl-1,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _curl(stack: Stack, cert: Path, key: Path, method: str, path: str, body: str = "") -> dict:
    address = f"{stack.connector_domain}:{stack.connector_port}:127.0.0.1"
    result = subprocess.run(
        [
            "curl", "-sS", "--resolve", address, "--cacert", str(stack.tls_dir / "connector.crt"),
            "--cert", str(cert), "--key", str(key), "-X", method, "--data-binary", body,
            f"https://{stack.connector_domain}:{stack.connector_port}{path}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_curl_with_an_openssl_server_auth_certificate_joins_heartbeats_and_leaves(
    stack: Stack, tmp_path: Path
) -> None:
    cert, key = _openssl_server_auth_certificate(tmp_path)
    join = {
        "cluster_name": "shape-openssl",
        "cluster_certificate": cert.read_text(),
        "token": stack.mint_token("shape-openssl"),
    }

    joined = _curl(stack, cert, key, "POST", "/1.0/remote-cluster", json.dumps(join))
    reported = _curl(
        stack, cert, key, "POST", "/1.0/remote-cluster/status", json.dumps(KNOWN_HEARTBEAT)
    )
    left = _curl(stack, cert, key, "DELETE", "/1.0/remote-cluster")

    assert [joined["status_code"], reported["status_code"], left["status_code"]] == [200] * 3
