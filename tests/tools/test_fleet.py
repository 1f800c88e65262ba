import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.tools.conftest import MANAGER_ADDRESS, MANAGER_HOST, resolve_to
from tests.tools.tls_server import SYNC_OK, Exchange, RecordingTLSServer
from tools.fleet import (
    Fleet,
    FleetError,
    cluster_names,
    command_minter,
    extract_token,
    main,
    parse_resolve,
)
from tools.jointoken import JoinToken
from tools.pki import CertKey


class Minter:
    def __init__(self, manager_cert: CertKey):
        self.fingerprint = manager_cert.fingerprint
        self.names: list[str] = []

    def __call__(self, name: str) -> str:
        self.names.append(name)
        return JoinToken(
            "ab" * 32, "2125-01-01T00:00:00Z", (MANAGER_ADDRESS,), name, self.fingerprint
        ).encode()


@pytest.fixture
def plain_manager(manager_cert):
    """A manager stand-in that accepts everything and does not request client certificates."""
    with RecordingTLSServer(manager_cert) as server:
        yield server


def _fleet(state: Path, server: RecordingTLSServer, minter: Minter | None, count: int = 2):
    return Fleet(state, count, minter, interval=0.2, resolve=resolve_to(server), jitter=False)


def _posts(server: RecordingTLSServer, path: str) -> list[Exchange]:
    return [e for e in server.exchanges if e.method == "POST" and e.path == path]


def test_cluster_names_are_zero_padded():
    assert cluster_names(3) == ["mc-01", "mc-02", "mc-03"]
    assert cluster_names(100)[0] == "mc-001"


def test_enroll_all_mints_and_joins_each_cluster_once(tmp_path, plain_manager, manager_cert):
    minter = Minter(manager_cert)

    enrolled = _fleet(tmp_path, plain_manager, minter).enroll_all()

    assert enrolled == ["mc-01", "mc-02"]
    assert minter.names == ["mc-01", "mc-02"]
    joins = _posts(plain_manager, "/1.0/remote-cluster")
    assert [json.loads(e.body)["cluster_name"] for e in joins] == ["mc-01", "mc-02"]
    assert (tmp_path / "mc-01" / "joined.json").exists()
    assert (tmp_path / "mc-01" / "cluster.key").stat().st_mode & 0o777 == 0o600


def test_second_start_reuses_state_and_only_heartbeats(tmp_path, plain_manager, manager_cert):
    _fleet(tmp_path, plain_manager, Minter(manager_cert)).enroll_all()
    first_cert = (tmp_path / "mc-01" / "cluster.crt").read_text()
    joins_before = len(_posts(plain_manager, "/1.0/remote-cluster"))
    second_minter = Minter(manager_cert)
    fleet = _fleet(tmp_path, plain_manager, second_minter)

    fleet.enroll_all()
    responses = [fleet.heartbeat(name) for name in fleet.names]

    assert second_minter.names == []
    assert len(_posts(plain_manager, "/1.0/remote-cluster")) == joins_before
    assert all(r is not None and r.ok for r in responses)
    assert all(s.reused for s in fleet.status.values())
    assert (tmp_path / "mc-01" / "cluster.crt").read_text() == first_cert


def test_run_heartbeats_until_stopped(tmp_path, plain_manager, manager_cert):
    fleet = _fleet(tmp_path, plain_manager, Minter(manager_cert))
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()

    statuses = fleet.run(stop, report_every=0.5)

    assert all(s.heartbeats_ok >= 2 for s in statuses.values())
    beats = _posts(plain_manager, "/1.0/remote-cluster/status")
    assert {json.loads(b.body)["ui_url"].startswith("https://10.") for b in beats} == {True}


def test_heartbeat_403_is_reported_not_raised(tmp_path, manager_cert, caplog):
    def refuse_heartbeats(exchange: Exchange) -> tuple[int, bytes]:
        if exchange.path.endswith("/status"):
            return 403, b'{"type":"error","error":"Forbidden","error_code":403}\n'
        return 200, SYNC_OK

    with RecordingTLSServer(manager_cert, responder=refuse_heartbeats) as server:
        fleet = _fleet(tmp_path, server, Minter(manager_cert), count=1)
        fleet.enroll_all()
        with caplog.at_level(logging.WARNING, logger="tools.fleet"):
            response = fleet.heartbeat("mc-01")

    status = fleet.status["mc-01"]
    assert response is not None and response.status == 403
    assert (status.forbidden, status.heartbeats_failed, status.last_status) == (True, 1, 403)
    assert "refused (403)" in caplog.text
    assert "refused (403): mc-01" in fleet.summary()


def test_unreachable_manager_is_recorded_as_failed_heartbeat(tmp_path, manager_cert):
    with RecordingTLSServer(manager_cert) as server:
        fleet = _fleet(tmp_path, server, Minter(manager_cert), count=1)
        fleet.enroll_all()
    # the server is gone now

    response = fleet.heartbeat("mc-01")

    assert response is None
    assert "Cannot connect to" in fleet.status["mc-01"].last_error


def test_refused_stored_token_is_replaced_by_a_fresh_one(tmp_path, manager_cert):
    attempts: list[str] = []

    def first_join_forbidden(exchange: Exchange) -> tuple[int, bytes]:
        if exchange.path == "/1.0/remote-cluster" and exchange.method == "POST":
            attempts.append(json.loads(exchange.body)["token"])
            if len(attempts) == 1:
                return 403, b'{"type":"error","error":"tokenFromDb has expired"}\n'
        return 200, SYNC_OK

    minter = Minter(manager_cert)
    (tmp_path / "mc-01").mkdir()
    (tmp_path / "mc-01" / "token").write_text(minter("mc-01"))
    with RecordingTLSServer(manager_cert, responder=first_join_forbidden) as server:
        enrolled = _fleet(tmp_path, server, minter, count=1).enroll_all()

    assert enrolled == ["mc-01"]
    assert len(attempts) == 2
    assert minter.names == ["mc-01", "mc-01"]


def test_new_cluster_without_minter_fails_with_a_clear_error(tmp_path, plain_manager):
    fleet = _fleet(tmp_path, plain_manager, None, count=1)

    with pytest.raises(FleetError, match="has no usable join token"):
        fleet.enroll("mc-01")


def test_leave_deletes_and_forgets_the_cluster(tmp_path, plain_manager, manager_cert):
    fleet = _fleet(tmp_path, plain_manager, Minter(manager_cert), count=1)
    fleet.enroll_all()

    response = fleet.leave("mc-01")

    assert response.ok
    assert plain_manager.exchanges[-1].method == "DELETE"
    assert not (tmp_path / "mc-01").exists()


def test_extract_token_reads_json_output(manager_cert):
    token = Minter(manager_cert)("mc-01")

    assert extract_token(json.dumps({"cluster_name": "mc-01", "token": token})) == token


def test_extract_token_finds_the_token_in_human_output(manager_cert):
    token = Minter(manager_cert)("mc-01")
    output = f"token: {token}\nexpires: soon\nmicrocloud cluster-manager join {token}\n"

    assert extract_token(output) == token


def test_extract_token_without_token_fails_clearly():
    with pytest.raises(FleetError, match="no join token found"):
        extract_token("Error: database unavailable\n")


def test_command_minter_substitutes_the_quoted_name(manager_cert):
    token = Minter(manager_cert)("mc-01")
    mint = command_minter(f"echo {{name}} >/dev/null; echo {token}")

    assert mint("mc-01") == token


def test_command_minter_reports_a_failing_command():
    mint = command_minter("echo nope >&2; exit 3 # {name}")

    with pytest.raises(FleetError, match=r"mint command for mc-01 failed \(exit 3\): nope"):
        mint("mc-01")


def test_command_minter_requires_the_name_placeholder():
    with pytest.raises(FleetError, match=r"\{name\}"):
        command_minter("echo token")


def test_parse_resolve_maps_token_address_to_destination():
    assert parse_resolve([f"{MANAGER_HOST}:443=127.0.0.1:9443"]) == {
        MANAGER_ADDRESS: ("127.0.0.1", 9443)
    }


@pytest.mark.parametrize("value", ["cc.example.com:443", "cc.example.com=127.0.0.1:1", "a:1=b"])
def test_parse_resolve_rejects_malformed_items(value: str):
    with pytest.raises(FleetError, match="expected host:port=ip:port"):
        parse_resolve([value])


def test_cli_once_joins_and_heartbeats_then_second_run_reuses(
    tmp_path, plain_manager, manager_cert
):
    token_file = tmp_path / "token-{name}"
    minter = Minter(manager_cert)
    for name in ("mc-01", "mc-02"):
        Path(str(token_file).replace("{name}", name)).write_text(minter(name))
    args = [
        "--state-dir",
        str(tmp_path / "state"),
        "--clusters",
        "2",
        "--resolve",
        f"{MANAGER_ADDRESS}=127.0.0.1:{plain_manager.port}",
        "--mint-command",
        f"cat {tmp_path}/token-{{name}}",
        "--once",
    ]

    first = main(args)
    second = main([a for a in args if not a.startswith(("--mint", "cat "))])

    assert (first, second) == (0, 0)
    assert len(_posts(plain_manager, "/1.0/remote-cluster")) == 2
    assert len(_posts(plain_manager, "/1.0/remote-cluster/status")) == 4


def test_cli_rejects_a_bad_resolve_with_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--state-dir", str(tmp_path), "--resolve", "nonsense"])

    assert exited.value.code == 2
    assert "expected host:port=ip:port" in capsys.readouterr().err


def test_cli_help_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "tools.fleet", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0
    assert "--mint-command" in done.stdout
