"""The alert rules shipped over `metrics-endpoint`, checked and tested with promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.builders import ROOT

RULES = ROOT / "src" / "prometheus_alert_rules" / "cluster_manager.rules"
PROMTOOL = shutil.which("promtool")
LAST_HEARTBEAT = "mcm_cluster_last_heartbeat_timestamp_seconds"
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")

SILENT_ANNOTATIONS = {
    "summary": "MicroCloud cluster {cluster} stopped sending heartbeats",
    "description": (
        "No heartbeat from cluster {cluster} for longer than offline-after seconds. Check that"
        " its microcloudd runs and can reach the cluster connector domain, and that"
        " offline-after exceeds its update_interval_seconds."
    ),
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


def silent_alert(cluster: str) -> dict:
    return {
        "exp_labels": {"severity": "warning", "cluster": cluster},
        "exp_annotations": {k: v.format(cluster=cluster) for k, v in SILENT_ANNOTATIONS.items()},
    }


def test_rules_pass_promtool_check():
    result = promtool("check", "rules", str(RULES))

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_cluster_silent_for_longer_than_offline_after_fires_and_a_chatty_one_does_not(
    tmp_path: Path,
):
    # Two units report the same clusters (shared database); "quiet" last reported at t=0,
    # "chatty" every minute. Silent means time() - last > offline-after (180 s), for one
    # minute; the suggested heartbeat interval (10 s here) plays no part.
    series = []
    for unit in ("mcm/0", "mcm/1"):
        series += [
            {
                "series": f'{LAST_HEARTBEAT}{{cluster="quiet",juju_unit="{unit}"}}',
                "values": "0x20",
            },
            {
                "series": f'{LAST_HEARTBEAT}{{cluster="chatty",juju_unit="{unit}"}}',
                "values": "0+60x20",
            },
            {"series": f'mcm_offline_after_seconds{{juju_unit="{unit}"}}', "values": "180x20"},
            {"series": f'mcm_heartbeat_interval_seconds{{juju_unit="{unit}"}}', "values": "10x20"},
        ]
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "MicroCloudClusterSilent", "exp_alerts": []},
                    # Pending from 4m (240 s > 180 s), firing one minute later.
                    {"eval_time": "4m", "alertname": "MicroCloudClusterSilent", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "MicroCloudClusterSilent",
                        "exp_alerts": [silent_alert("quiet")],
                    },
                ],
            }
        ],
    }
    test_file = tmp_path / "silent_test.yaml"
    test_file.write_text(yaml.safe_dump(tests))

    result = promtool("test", "rules", str(test_file))

    assert result.returncode == 0, result.stdout + result.stderr


def test_remote_write_failures_fire_the_failing_alert(tmp_path: Path):
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'mcm_remote_write_failed_total{juju_unit="mcm/0"}',
                        "values": "0+1x20",
                    },
                    {
                        "series": 'mcm_remote_write_failed_total{juju_unit="mcm/1"}',
                        "values": "0x20",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "MicroCloudRemoteWriteFailing",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "juju_unit": "mcm/0"},
                                "exp_annotations": {
                                    "summary": "Cluster metrics cannot be forwarded to Prometheus",
                                    "description": (
                                        "Remote-write requests of mcm/0 failed after their"
                                        " retries in the last ten minutes: the clusters' LXD"
                                        " metrics are missing. Check the send-remote-write"
                                        " integration and the endpoint's logs."
                                    ),
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    test_file = tmp_path / "remote_write_test.yaml"
    test_file.write_text(yaml.safe_dump(tests))

    result = promtool("test", "rules", str(test_file))

    assert result.returncode == 0, result.stdout + result.stderr
