import itertools
import json
from collections import Counter

import pytest

from tests.tools.metrics_check import parse_strict
from tools import gojson
from tools.payloads import PAYLOAD_FIELDS, PayloadGenerator, go_nil, status_distribution

NOW = 1_780_000_000.0
DISTRIBUTION_FIELDS = ("ceph_statuses", "member_statuses", "instance_statuses")


@pytest.fixture
def payload() -> dict:
    return PayloadGenerator("mc-01", members=3, instances=12, seed=7).payload(NOW)


def _is_distribution(value: object) -> bool:
    return isinstance(value, list) and all(
        set(item) == {"status", "count"}
        and isinstance(item["status"], str)
        and isinstance(item["count"], int)
        for item in value
    )


def test_payload_has_exactly_the_microcloud_fields_in_order(payload):
    assert tuple(payload) == PAYLOAD_FIELDS


def test_status_distributions_are_status_count_lists(payload):
    for name in DISTRIBUTION_FIELDS:
        assert _is_distribution(payload[name]), name


def test_cpu_total_count_is_always_zero_and_loads_are_two_decimal_strings(payload):
    assert payload["cpu_total_count"] == 0
    for name in ("cpu_load_1", "cpu_load_5", "cpu_load_15"):
        value = payload[name]
        assert isinstance(value, str)
        assert float(value) >= 0
        assert value == f"{float(value):.2f}"


def test_memory_is_in_bytes_and_usage_below_total(payload):
    assert isinstance(payload["memory_total_amount"], int)
    assert 0 < payload["memory_usage"] < payload["memory_total_amount"]


def test_pools_are_local_per_member_plus_one_remote_with_empty_member(payload):
    pools = payload["storage_pool_usages"]
    local = [p for p in pools if p["name"] == "local"]
    remote = [p for p in pools if p["member"] == ""]

    assert all(set(p) == {"name", "member", "total", "usage"} for p in pools)
    assert sorted(p["member"] for p in local) == ["micro1", "micro2", "micro3"]
    assert [p["name"] for p in remote] == ["remote"]
    assert all(0 < p["usage"] < p["total"] for p in pools)


def test_counts_match_members_and_instances(payload):
    assert sum(d["count"] for d in payload["member_statuses"]) == 3
    assert sum(d["count"] for d in payload["instance_statuses"]) == 12
    allowed = {"Running", "Stopped", "Frozen", "Error"}
    assert {d["status"] for d in payload["instance_statuses"]} <= allowed


def test_server_metrics_has_one_lxd_entry_per_member(payload):
    entries = payload["server_metrics"]

    assert [e["member"] for e in entries] == ["micro1", "micro2", "micro3"]
    assert all(set(e) == {"member", "metrics", "service"} for e in entries)
    assert {e["service"] for e in entries} == {"LXD"}


def test_ui_url_is_an_lxd_address_on_10_slash_8(payload):
    assert payload["ui_url"].startswith("https://10.")
    assert payload["ui_url"].endswith(":8443")


def test_metrics_text_parses_strictly_with_lxd_families_and_types(payload):
    families = parse_strict(payload["server_metrics"][0]["metrics"])

    assert families["lxd_cpu_seconds_total"].type == "counter"
    assert families["lxd_memory_MemAvailable_bytes"].type == "gauge"
    assert families["lxd_memory_MemTotal_bytes"].type == "gauge"
    for name in ("lxd_filesystem_avail_bytes", "lxd_procs_total", "lxd_instances"):
        assert families[name].type == "gauge"
    assert "lxd_warnings_total" in families


def test_cpu_samples_carry_cpu_mode_name_project_type_labels(payload):
    families = parse_strict(payload["server_metrics"][0]["metrics"])

    _, labels, value = families["lxd_cpu_seconds_total"].samples[0]
    assert set(labels) == {"cpu", "mode", "name", "project", "type"}
    assert labels["type"] in {"container", "virtual-machine"}
    assert value > 0


def test_metrics_text_parses_with_prometheus_client_when_installed(payload):
    parser = pytest.importorskip("prometheus_client.parser")
    text = payload["server_metrics"][0]["metrics"]

    names = {family.name for family in parser.text_string_to_metric_families(text)}

    assert "lxd_cpu_seconds" in names  # prometheus_client drops _total from counter families


def test_same_seed_and_time_give_identical_payloads():
    first = PayloadGenerator("mc-01", seed=3).payload(NOW)
    second = PayloadGenerator("mc-01", seed=3).payload(NOW)

    assert gojson.dumps(first) == gojson.dumps(second)


def test_default_seed_is_stable_per_cluster_name():
    assert PayloadGenerator("mc-02").payload(NOW) == PayloadGenerator("mc-02").payload(NOW)
    assert PayloadGenerator("mc-02").payload(NOW) != PayloadGenerator("mc-03").payload(NOW)


def test_values_drift_slightly_between_heartbeats():
    generator = PayloadGenerator("mc-01", seed=3)

    before, after = generator.payload(NOW), generator.payload(NOW + 60)

    assert before["cpu_load_1"] != after["cpu_load_1"]
    ratio = after["memory_usage"] / before["memory_usage"]
    assert 0.9 < ratio < 1.1


def test_counters_never_decrease_over_an_hour():
    generator = PayloadGenerator("mc-01", seed=3)

    def cpu(now: float) -> list[float]:
        families = parse_strict(generator.metrics_text(0, now))
        return [value for _, _, value in families["lxd_cpu_seconds_total"].samples]

    series = [cpu(NOW + step * 60) for step in range(60)]
    for earlier, later in itertools.pairwise(series):
        assert all(b >= a for a, b in zip(earlier, later, strict=True))


def test_without_microceph_ceph_statuses_is_null_and_no_remote_pool():
    payload = PayloadGenerator("mc-01", microceph=False).payload(NOW)

    assert payload["ceph_statuses"] is None
    assert all(p["member"] for p in payload["storage_pool_usages"])


def test_no_instances_gives_null_instance_statuses_like_a_go_nil_slice():
    payload = PayloadGenerator("mc-01", members=1, instances=0).payload(NOW)

    assert json.loads(gojson.dumps(payload))["instance_statuses"] is None
    assert '"instance_statuses":null' in gojson.dumps(payload)


def test_go_nil_maps_empty_to_none_and_keeps_items():
    assert go_nil([]) is None
    assert go_nil(iter([1, 2])) == [1, 2]


def test_status_distribution_counts_and_sorts():
    assert status_distribution(["b", "a", "b"]) == [
        {"status": "a", "count": 1},
        {"status": "b", "count": 2},
    ]


@pytest.mark.parametrize(
    "text",
    [
        'lxd_x{name="a} 1\n',
        "lxd_x 1",
        "# TYPE lxd_x counter\nlxd_x 1\n# TYPE lxd_y gauge\nlxd_y 2\nlxd_x 3\n",
        "lxd_x one\n",
    ],
)
def test_strict_checker_rejects_malformed_exposition_text(text: str):
    with pytest.raises((AssertionError, ValueError)):
        parse_strict(text)


def test_each_running_instance_has_lxd_sized_series_and_vms_eight_cpu_modes_per_core():
    generator = PayloadGenerator("mc-big", members=1, instances=40, seed=5)
    families = parse_strict(generator.metrics_text(0, NOW))
    running = [i for i in generator.instances if i.status == "Running"]

    per_instance = Counter(
        labels["name"]
        for family in families.values()
        for _, labels, _ in family.samples
        if "name" in labels
    )
    modes = Counter(
        (labels["name"], labels["cpu"])
        for _, labels, _ in families["lxd_cpu_seconds_total"].samples
    )

    assert sorted(per_instance) == sorted(i.name for i in running)
    assert 60 <= sum(per_instance.values()) / len(per_instance) <= 100
    vms = [i for i in running if i.kind == "virtual-machine"]
    assert vms
    assert all(modes[(vm.name, "0")] == 8 for vm in vms)


def test_metrics_text_ends_with_eof_and_writes_values_as_go_does():
    text = PayloadGenerator("mc-01", seed=7).metrics_text(0, NOW)

    assert text.endswith("\n# EOF\n")
    assert "lxd_uptime_seconds " in text
    assert any("e+0" in line for line in text.splitlines() if not line.startswith("#"))


def test_with_a_ttl_the_metrics_text_is_reused_until_it_expires():
    generator = PayloadGenerator("mc-ttl", seed=3, text_ttl=300)

    first = generator.metrics_text(0, NOW)
    reused = generator.metrics_text(0, NOW + 299)
    renewed = generator.metrics_text(0, NOW + 300)

    assert reused is first
    assert renewed != first
    assert renewed == PayloadGenerator("mc-ttl", seed=3).metrics_text(0, NOW + 300)
