"""Fixtures: certificates, tokens and a recording TLS server on 127.0.0.1."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from tests.tools.tls_server import RecordingTLSServer
from tools import pki
from tools.jointoken import JoinToken
from tools.pki import CertKey

MANAGER_HOST = "cc.example.com"
MANAGER_ADDRESS = f"{MANAGER_HOST}:443"

MakeToken = Callable[..., str]


@pytest.fixture(scope="session")
def manager_cert() -> CertKey:
    return pki.self_signed("cluster-connector", dns_names=[MANAGER_HOST])


@pytest.fixture(scope="session")
def cluster_cert() -> CertKey:
    return pki.cluster_certificate("mc-01")


@pytest.fixture
def make_token(manager_cert: CertKey) -> MakeToken:
    def make(name: str = "mc-01", fingerprint: str | None = None) -> str:
        return JoinToken(
            secret=secrets.token_hex(32),
            expires_at="2125-04-10T12:32:00Z",
            addresses=(MANAGER_ADDRESS,),
            server_name=name,
            fingerprint=fingerprint or manager_cert.fingerprint,
        ).encode()

    return make


@pytest.fixture
def manager(manager_cert: CertKey, cluster_cert: CertKey) -> Iterator[RecordingTLSServer]:
    """TLS 1.2+ server that requests a client certificate (accepting the test cluster's)."""
    with RecordingTLSServer(manager_cert, client_ca=cluster_cert) as server:
        yield server


def resolve_to(server: RecordingTLSServer) -> dict[str, tuple[str, int]]:
    return {MANAGER_ADDRESS: ("127.0.0.1", server.port)}
