"""Heartbeats the database cannot hold or the UI cannot show are refused whole (issue 9).

Each refusal is a 400 that names the field and the rule without echoing the value, and the
cluster's record stays exactly as it was. What a real MicroCloud sends (Go's int64 and uint64,
`"%.2f"` loads, tens of members with a few pools each, http(s) member URLs) is accepted up
to the limits of `cluster_manager.protocol.rules`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_manager.protocol.rules import (
    MAX_MEMBER_NAME_LENGTH,
    MAX_MEMBERS,
    MAX_POOL_NAME_LENGTH,
    MAX_STATUS_LENGTH,
    MAX_STATUSES,
    MAX_STORAGE_POOLS,
    MAX_URL_LENGTH,
)

from tools.microcloud import MicroCloudClient
from tools.postgres import PostgresServer
from tools.stack import Stack

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
REFUSED = "hb-bounds-refused"
SECRET = "s3cr3t-value"


def _pool(name: str = "local", total: int = 1024, usage: int = 512, **extra: Any) -> dict:
    return {"name": name, "member": "m1", "total": total, "usage": usage, **extra}


def _status(status: str = "Online", count: int = 1) -> dict:
    return {"status": status, "count": count}


def _metrics(member: str = "m1", metrics: str = "lxd_up 1\n", service: str = "LXD") -> dict:
    return {"member": member, "metrics": metrics, "service": service}


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Limits high enough for one cluster's hundred refused heartbeats a minute."""
    env = {
        "MCM_RATE_LIMIT_CONNECTOR": "100000/minute",
        "MCM_RATE_LIMIT_MANAGEMENT": "100000/minute",
    }
    url = postgres.create_database("connector_input_bounds")
    with Stack(Path(tmp_path_factory.mktemp("bounds")), url, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def refused(stack: Stack) -> MicroCloudClient:
    """An enrolled cluster that never gets a heartbeat through."""
    client = MicroCloudClient(stack.mint_token(REFUSED), resolve=stack.resolve)
    assert client.join().ok
    return client


def _cluster(stack: Stack, name: str) -> dict:
    response = stack.management_session().get(f"{stack.management_url}/1.0/remote-cluster/{name}")
    assert response.status_code == 200, response.text
    return response.json()["metadata"]


def _enrolled(stack: Stack, name: str) -> MicroCloudClient:
    client = MicroCloudClient(stack.mint_token(name), resolve=stack.resolve)
    assert client.join().ok
    return client


# field named in the message -> the heartbeat that breaks its rule
OUT_OF_RANGE = {
    "memory over int64": ("memory_total_amount", {"memory_total_amount": INT64_MAX + 1}),
    "memory usage over int64": ("memory_usage", {"memory_usage": INT64_MAX + 1}),
    "cpu count over int64": ("cpu_total_count", {"cpu_total_count": INT64_MAX + 1}),
    "pool total over int64": (
        "storage_pool_usages.0.total",
        {"storage_pool_usages": [_pool(total=INT64_MAX + 1)]},
    ),
    "pool usage over int64": (
        "storage_pool_usages.0.usage",
        {"storage_pool_usages": [_pool(usage=INT64_MAX + 1)]},
    ),
    "pool totals summing over int64": (
        "storage_pool_usages",
        {"storage_pool_usages": [_pool("a", total=2**62), _pool("b", total=2**62)]},
    ),
    "pool usages summing over int64": (
        "storage_pool_usages",
        {"storage_pool_usages": [_pool("a", usage=2**62), _pool("b", usage=2**62)]},
    ),
    "member count over int32": (
        "member_statuses.0.count",
        {"member_statuses": [_status(count=INT32_MAX + 1)]},
    ),
    "instance counts summing over int32": (
        "instance_statuses",
        {"instance_statuses": [_status("Running", 2**30), _status("Stopped", 2**30)]},
    ),
    "ceph counts summing over int32": (
        "ceph_statuses",
        {"ceph_statuses": [_status("ONLINE", 2**30), _status("DOWN", 2**30)]},
    ),
}


@pytest.mark.parametrize(("field", "beat"), OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_a_heartbeat_with_a_number_the_database_cannot_hold_is_refused_naming_the_field(
    stack: Stack, refused: MicroCloudClient, field: str, beat: dict
) -> None:
    before = _cluster(stack, REFUSED)

    response = refused.heartbeat(beat)

    assert response.status == 400
    assert f"{field}:" in response.json["error"]
    assert _cluster(stack, REFUSED) == before


@pytest.mark.parametrize("body", [b"", b" \r\n\t"], ids=["empty", "whitespace"])
def test_an_empty_heartbeat_body_is_refused_as_empty(
    stack: Stack, refused: MicroCloudClient, body: bytes
) -> None:
    before = _cluster(stack, REFUSED)

    response = refused.heartbeat(body)

    assert response.status == 400
    assert response.json["error"] == "request body is empty; expected a JSON object"
    assert _cluster(stack, REFUSED) == before


NUL = "a\x00b"
NUL_STRINGS = {
    "ceph status": ("ceph_statuses.0.status", {"ceph_statuses": [_status(NUL)]}),
    "member status": ("member_statuses.0.status", {"member_statuses": [_status(NUL)]}),
    "instance status": ("instance_statuses.0.status", {"instance_statuses": [_status(NUL)]}),
    "pool name": ("storage_pool_usages.0.name", {"storage_pool_usages": [_pool(NUL)]}),
    "pool member": (
        "storage_pool_usages.0.member",
        {"storage_pool_usages": [_pool(member=NUL)]},
    ),
    "metrics member": ("server_metrics.0.member", {"server_metrics": [_metrics(member=NUL)]}),
    "metrics text": ("server_metrics.0.metrics", {"server_metrics": [_metrics(metrics=NUL)]}),
    "metrics service": ("server_metrics.0.service", {"server_metrics": [_metrics(service=NUL)]}),
    "ui_url": ("ui_url", {"ui_url": "https://10.0.0.1:8443/\x00"}),
    "lxd_url": ("lxd_url", {"lxd_url": "https://10.0.0.1:8443/\x00"}),
}


@pytest.mark.parametrize(("field", "beat"), NUL_STRINGS.values(), ids=NUL_STRINGS.keys())
def test_a_heartbeat_with_a_nul_character_in_a_string_is_refused_naming_the_field(
    stack: Stack, refused: MicroCloudClient, field: str, beat: dict
) -> None:
    before = _cluster(stack, REFUSED)

    response = refused.heartbeat(beat)

    assert response.status == 400
    assert f"{field}: " in response.json["error"]
    assert "NUL" in response.json["error"]
    assert "\x00" not in response.json["error"]
    assert _cluster(stack, REFUSED) == before


NOT_LOADS = ["NaN", "1e309", "inf", "-1.00", "1.234", "0x10", " 1.00", "1,00", "", f"{SECRET}"]


@pytest.mark.parametrize("load", NOT_LOADS)
@pytest.mark.parametrize("field", ["cpu_load_1", "cpu_load_5", "cpu_load_15"])
def test_a_cpu_load_that_is_not_a_two_decimal_number_is_refused_naming_the_field(
    stack: Stack, refused: MicroCloudClient, field: str, load: str
) -> None:
    before = _cluster(stack, REFUSED)

    response = refused.heartbeat({field: load})

    assert response.status == 400
    assert response.json["error"].startswith(f"invalid request: {field}: ")
    assert SECRET not in response.json["error"]
    assert _cluster(stack, REFUSED) == before


@pytest.mark.parametrize("load", ["0", "7", "0.5", "12.34", "1234567.00"])
def test_a_cpu_load_as_microcloud_formats_it_is_stored_as_sent(stack: Stack, load: str) -> None:
    client = _enrolled(stack, f"hb-load-{load.replace('.', '-')}")

    response = client.heartbeat({"cpu_load_1": load, "cpu_load_5": load, "cpu_load_15": load})

    assert response.status == 200
    stored = _cluster(stack, f"hb-load-{load.replace('.', '-')}")
    assert (stored["cpu_load_1"], stored["cpu_load_5"], stored["cpu_load_15"]) == (load,) * 3


TOO_MANY = {
    "storage pools": (
        "storage_pool_usages",
        [_pool(f"p{i}") for i in range(MAX_STORAGE_POOLS + 1)],
    ),
    "ceph statuses": ("ceph_statuses", [_status(f"S{i}") for i in range(MAX_STATUSES + 1)]),
    "member statuses": ("member_statuses", [_status(f"S{i}") for i in range(MAX_STATUSES + 1)]),
    "instance statuses": (
        "instance_statuses",
        [_status(f"S{i}") for i in range(MAX_STATUSES + 1)],
    ),
    "server metrics": ("server_metrics", [_metrics(f"m{i}") for i in range(MAX_MEMBERS + 1)]),
}


@pytest.mark.parametrize(("field", "items"), TOO_MANY.values(), ids=TOO_MANY.keys())
def test_a_heartbeat_with_a_list_over_its_limit_is_refused_naming_the_field(
    stack: Stack, refused: MicroCloudClient, field: str, items: list
) -> None:
    before = _cluster(stack, REFUSED)

    response = refused.heartbeat({field: items})

    assert response.status == 400
    assert response.json["error"].startswith(f"invalid request: {field}: ")
    assert _cluster(stack, REFUSED) == before


TOO_LONG = {
    "status": (
        "member_statuses.0.status",
        {"member_statuses": [_status("S" * (MAX_STATUS_LENGTH + 1))]},
    ),
    "pool name": (
        "storage_pool_usages.0.name",
        {"storage_pool_usages": [_pool("p" * (MAX_POOL_NAME_LENGTH + 1))]},
    ),
    "metrics member": (
        "server_metrics.0.member",
        {"server_metrics": [_metrics("m" * (MAX_MEMBER_NAME_LENGTH + 1))]},
    ),
    "ui_url": ("ui_url", {"ui_url": "https://lxd.example/" + "x" * MAX_URL_LENGTH}),
}


@pytest.mark.parametrize(("field", "beat"), TOO_LONG.values(), ids=TOO_LONG.keys())
def test_a_heartbeat_with_a_string_over_its_length_is_refused_naming_the_field(
    stack: Stack, refused: MicroCloudClient, field: str, beat: dict
) -> None:
    before = _cluster(stack, REFUSED)

    response = refused.heartbeat(beat)

    assert response.status == 400
    assert response.json["error"].startswith(f"invalid request: {field}: ")
    assert _cluster(stack, REFUSED) == before


def test_a_heartbeat_at_every_list_limit_is_stored(stack: Stack) -> None:
    client = _enrolled(stack, "hb-at-limits")
    beat = {
        "storage_pool_usages": [_pool(f"p{i}") for i in range(MAX_STORAGE_POOLS)],
        "ceph_statuses": [_status(f"S{i}") for i in range(MAX_STATUSES)],
        "member_statuses": [_status(f"S{i}") for i in range(MAX_STATUSES)],
        "instance_statuses": [_status(f"S{i}") for i in range(MAX_STATUSES)],
        "server_metrics": [_metrics(f"m{i}") for i in range(MAX_MEMBERS)],
    }

    response = client.heartbeat(beat)

    assert response.status == 200
    assert len(_cluster(stack, "hb-at-limits")["storage_pool_usages"]) == MAX_STORAGE_POOLS


def test_a_heartbeat_with_the_largest_storable_numbers_is_stored(stack: Stack) -> None:
    client = _enrolled(stack, "hb-largest")
    beat = {
        "memory_total_amount": INT64_MAX,
        "memory_usage": INT64_MAX,
        "storage_pool_usages": [_pool("a", 2**62, 2**62), _pool("b", 2**62 - 1, 2**62 - 1)],
        "member_statuses": [_status("Online", 2**30), _status("Offline", 2**30 - 1)],
        "instance_statuses": [_status("Running", INT32_MAX)],
    }

    response = client.heartbeat(beat)

    assert response.status == 200
    stored = _cluster(stack, "hb-largest")
    assert (stored["memory_total_amount"], stored["member_count"]) == (INT64_MAX, INT32_MAX)
    assert stored["instance_count"] == INT32_MAX


NOT_WEB_LINKS = [
    "javascript:alert(document.domain)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//lxd.example.com",
    "/ui/",
    "lxd.example.com:8443",
    "ftp://lxd.example.com",
    "https://:8443",
    " https://lxd.example.com",
    "https://lxd.example.com\n",
    "https://lxd example.com",
]


@pytest.mark.parametrize("link", NOT_WEB_LINKS)
@pytest.mark.parametrize("field", ["ui_url", "lxd_url"])
def test_an_lxd_ui_link_that_is_not_an_absolute_http_url_is_refused_naming_the_field(
    stack: Stack, refused: MicroCloudClient, field: str, link: str
) -> None:
    before = _cluster(stack, REFUSED)

    response = refused.heartbeat({field: link})

    assert response.status == 400
    assert response.json["error"].startswith(f"invalid request: {field}: ")
    assert link.strip() not in response.json["error"]
    assert _cluster(stack, REFUSED) == before


@pytest.mark.parametrize(
    "link", ["https://10.0.0.1:8443", "http://10.0.0.1:8443", "https://[fd42::1]:8443/ui/", ""]
)
def test_an_absolute_http_lxd_ui_link_or_none_is_stored_as_sent(stack: Stack, link: str) -> None:
    name = f"hb-link-ok-{len(link)}-{'s' if link.startswith('https') else 'p'}"
    client = _enrolled(stack, name)

    response = client.heartbeat({"lxd_url": link, "ui_url": link})

    assert response.status == 200
    assert _cluster(stack, name)["ui_url"] == link
