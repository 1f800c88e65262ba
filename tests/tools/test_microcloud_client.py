import datetime
import json
import ssl
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.tools.conftest import MANAGER_HOST, resolve_to
from tests.tools.tls_server import Exchange, RecordingTLSServer
from tools import pki
from tools.jointoken import JoinToken
from tools.microcloud import (
    ClusterManagerError,
    FingerprintMismatchError,
    MicroCloudClient,
    TLSError,
    TokenError,
    UnreachableError,
)
from tools.pki import CertKey
from tools.ports import free_port


def _token(addresses: tuple[str, ...], fingerprint: str) -> str:
    return JoinToken("s" * 64, "2125-01-01T00:00:00Z", addresses, "mc-01", fingerprint).encode()


def _client(token: str, server: RecordingTLSServer, cert: CertKey, **kwargs) -> MicroCloudClient:
    return MicroCloudClient(token, cert, resolve=resolve_to(server), **kwargs)


def _handshake_errors(server: RecordingTLSServer, timeout: float = 5.0) -> list[str]:
    """The server's handshake failures, once it has recorded any (its thread lags the client)."""
    deadline = time.monotonic() + timeout
    while not server.handshake_errors and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.handshake_errors


def test_join_succeeds_against_the_pinned_manager(manager, make_token, cluster_cert):
    with _client(make_token(), manager, cluster_cert) as client:
        response = client.join()

    assert response.ok
    assert response.json["metadata"] == {}


def test_probe_sends_get_root_without_a_client_certificate(manager, make_token, cluster_cert):
    with _client(make_token(), manager, cluster_cert) as client:
        client.join()

    probe, join = manager.exchanges
    assert (probe.method, probe.path, probe.peer_der) == ("GET", "/", None)
    assert probe.connection != join.connection


def test_join_presents_the_cluster_certificate(manager, make_token, cluster_cert):
    with _client(make_token(), manager, cluster_cert) as client:
        client.join()

    join = manager.exchanges[-1]
    assert (join.method, join.path) == ("POST", "/1.0/remote-cluster")
    assert join.peer_der == cluster_cert.der


def test_join_body_carries_name_certificate_and_token_as_typed(manager, make_token, cluster_cert):
    token = make_token("mc-07")

    with _client(token, manager, cluster_cert) as client:
        client.join()

    body = json.loads(manager.exchanges[-1].body)
    assert body == {
        "cluster_name": "mc-07",
        "cluster_certificate": cluster_cert.cert_pem,
        "token": token,
    }
    assert list(body) == ["cluster_name", "cluster_certificate", "token"]


def test_requests_use_the_token_host_and_go_header_order(manager, make_token, cluster_cert):
    with _client(make_token(), manager, cluster_cert) as client:
        client.join()

    join = manager.exchanges[-1]
    assert join.headers["host"] == f"{MANAGER_HOST}:443"
    assert join.header_names == ["Host", "User-Agent", "Content-Length", "Accept-Encoding"]


def test_heartbeat_sends_no_content_type(manager, make_token, cluster_cert):
    with _client(make_token(), manager, cluster_cert) as client:
        response = client.heartbeat({"cpu_total_count": 0})

    beat = manager.exchanges[-1]
    assert response.ok
    assert (beat.method, beat.path) == ("POST", "/1.0/remote-cluster/status")
    assert "content-type" not in beat.headers
    assert json.loads(beat.body) == {"cpu_total_count": 0}
    assert beat.peer_der == cluster_cert.der


def test_leave_sends_delete_without_body(manager, make_token, cluster_cert):
    with _client(make_token(), manager, cluster_cert) as client:
        response = client.leave()

    leave = manager.exchanges[-1]
    assert response.ok
    assert (leave.method, leave.path, leave.body) == ("DELETE", "/1.0/remote-cluster", b"")
    assert "content-length" not in leave.headers
    assert leave.peer_der == cluster_cert.der


def test_every_request_is_preceded_by_a_probe(manager, make_token, cluster_cert):
    with _client(make_token(), manager, cluster_cert) as client:
        client.join()
        client.heartbeat({})
        client.leave()

    assert [(e.method, e.path) for e in manager.exchanges] == [
        ("GET", "/"),
        ("POST", "/1.0/remote-cluster"),
        ("GET", "/"),
        ("POST", "/1.0/remote-cluster/status"),
        ("GET", "/"),
        ("DELETE", "/1.0/remote-cluster"),
    ]


def test_successive_requests_reuse_one_keep_alive_connection(manager, make_token, cluster_cert):
    with _client(make_token(), manager, cluster_cert) as client:
        client.heartbeat({})
        client.heartbeat({})

    beats = [e for e in manager.exchanges if e.method == "POST"]
    assert beats[0].connection == beats[1].connection


def test_probe_can_be_switched_off_after_the_first_request(manager, make_token, cluster_cert):
    with _client(make_token(), manager, cluster_cert, probe_every_request=False) as client:
        for _ in range(3):
            client.heartbeat({})

    assert [e.method for e in manager.exchanges] == ["GET", "POST", "POST", "POST"]


def test_fingerprint_mismatch_raises_the_microcloud_message(manager, make_token, manager_cert):
    wrong = "ab" * 32
    client = _client(make_token(fingerprint=wrong), manager, pki.cluster_certificate("x"))

    with pytest.raises(FingerprintMismatchError) as caught:
        client.join()

    assert str(caught.value) == (
        "Invalid cluster manager certificate fingerprint, "
        f"expected {wrong}, got {manager_cert.fingerprint}"
    )
    assert [e.path for e in manager.exchanges] == ["/"]


def test_fingerprint_comparison_ignores_case(manager, make_token, manager_cert, cluster_cert):
    token = make_token(fingerprint=manager_cert.fingerprint.upper())

    with _client(token, manager, cluster_cert) as client:
        assert client.join().ok


def test_certificate_without_matching_san_is_refused(make_token, cluster_cert):
    other = pki.self_signed("cluster-connector", dns_names=["other.example.com"])
    token = make_token(fingerprint=other.fingerprint)

    with RecordingTLSServer(other, client_ca=cluster_cert) as server:
        client = _client(token, server, cluster_cert)
        with pytest.raises(TLSError, match=r"Hostname mismatch|certificate verify failed"):
            client.join()

    assert [e.path for e in server.exchanges] == ["/"]


def test_common_name_alone_does_not_satisfy_the_host_check(make_token, cluster_cert):
    cn_only = pki.self_signed(MANAGER_HOST)
    token = make_token(fingerprint=cn_only.fingerprint)

    with (
        RecordingTLSServer(cn_only, client_ca=cluster_cert) as server,
        pytest.raises(TLSError),
    ):
        _client(token, server, cluster_cert).join()


def test_expired_manager_certificate_is_refused(make_token, cluster_cert):
    expired = pki.self_signed(
        "cluster-connector",
        dns_names=[MANAGER_HOST],
        not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC),
    )
    token = make_token(fingerprint=expired.fingerprint)

    with (
        RecordingTLSServer(expired, client_ca=cluster_cert) as server,
        pytest.raises(TLSError, match="expired"),
    ):
        _client(token, server, cluster_cert).join()


def test_server_offering_only_tls_1_2_is_refused(make_token, manager_cert, cluster_cert):
    with RecordingTLSServer(
        manager_cert, client_ca=cluster_cert, maximum_version=ssl.TLSVersion.TLSv1_2
    ) as server:
        with pytest.raises(TLSError):
            _client(make_token(), server, cluster_cert).join()

        deadline = time.monotonic() + 5
        while not server.handshake_errors and time.monotonic() < deadline:
            time.sleep(0.01)  # the server thread records the failed handshake asynchronously

        assert not [e for e in server.exchanges if e.method == "POST"]
        assert server.handshake_errors


def test_ip_address_token_host_is_checked_against_ip_san(cluster_cert):
    ip_cert = pki.self_signed("cluster-connector", ip_addresses=["127.0.0.1"])
    with RecordingTLSServer(ip_cert, client_ca=cluster_cert) as server:
        token = _token((f"127.0.0.1:{server.port}",), ip_cert.fingerprint)

        with MicroCloudClient(token, cluster_cert) as client:
            assert client.join().ok


def test_only_http_200_counts_as_success(make_token, manager_cert, cluster_cert):
    def forbidden(_: Exchange) -> tuple[int, bytes]:
        return 403, b'{"type":"error","error":"Forbidden","error_code":403}\n'

    with (
        RecordingTLSServer(manager_cert, client_ca=cluster_cert, responder=forbidden) as server,
        _client(make_token(), server, cluster_cert) as client,
    ):
        response = client.heartbeat({})

    assert (response.status, response.ok) == (403, False)
    assert response.json["error"] == "Forbidden"


def test_first_answering_address_wins(manager, manager_cert, cluster_cert):
    token = _token(("dead.example.com:443", f"{MANAGER_HOST}:443"), manager_cert.fingerprint)
    resolve = {
        "dead.example.com:443": ("127.0.0.1", free_port()),
        f"{MANAGER_HOST}:443": ("127.0.0.1", manager.port),
    }

    with MicroCloudClient(token, cluster_cert, resolve=resolve) as client:
        assert client.join().ok


def test_unreachable_manager_raises_cannot_connect(make_token, cluster_cert):
    resolve = {f"{MANAGER_HOST}:443": ("127.0.0.1", free_port())}
    client = MicroCloudClient(make_token(), cluster_cert, resolve=resolve, timeout=2)

    with pytest.raises(UnreachableError, match=f"Cannot connect to: {MANAGER_HOST}:443"):
        client.heartbeat({})


def test_client_refuses_a_token_with_an_empty_field():
    with pytest.raises(TokenError):
        MicroCloudClient(_token(("h:1",), ""))


def test_client_generates_a_p384_cluster_certificate_when_none_is_given(make_token):
    client = MicroCloudClient(make_token())

    key = client.cluster_cert.certificate.public_key()
    assert key.curve.name == "secp384r1"  # type: ignore[union-attr]


def test_default_cluster_certificate_allows_server_auth_only_like_lxd(make_token):
    client = MicroCloudClient(make_token("mc-09"))

    cert = client.cluster_cert.certificate
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.subject.rfc4514_string() == "CN=root@mc-09,O=LXD"


def test_manager_accepts_the_server_auth_only_cluster_certificate_as_client_certificate(
    manager, make_token, cluster_cert
):
    with _client(make_token(), manager, cluster_cert) as client:
        response = client.heartbeat({})

    assert response.ok
    assert manager.exchanges[-1].peer_der == cluster_cert.der
    assert manager.handshake_errors == []


def test_manager_refuses_a_client_certificate_other_than_the_expected_one(manager, make_token):
    stranger = pki.cluster_certificate("mc-01")

    with _client(make_token(), manager, stranger) as client, pytest.raises(ClusterManagerError):
        client.heartbeat({})

    assert not [e for e in manager.exchanges if e.method == "POST"]
    assert any("certificate verify failed" in error for error in _handshake_errors(manager))
