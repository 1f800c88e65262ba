"""Enrolled clusters for management tests, made the real way: token, emulator, heartbeat."""

from __future__ import annotations

from typing import Any

from tools.microcloud import MicroCloudClient
from tools.stack import Stack

# Reference §11.1 scenario 5: a small, fully known heartbeat.
KNOWN_HEARTBEAT: dict[str, Any] = {
    "ceph_statuses": [{"status": "ONLINE", "count": 3}],
    "cpu_total_count": 8,
    "cpu_load_1": "0.10",
    "cpu_load_5": "0.20",
    "cpu_load_15": "0.30",
    "memory_total_amount": 1024,
    "memory_usage": 512,
    "storage_pool_usages": [
        {"name": "default", "member": "", "total": 1024, "usage": 512},
        {"name": "data", "member": "", "total": 2048, "usage": 1024},
    ],
    "member_statuses": [{"status": "active", "count": 1}, {"status": "inactive", "count": 2}],
    "instance_statuses": [{"status": "running", "count": 1}, {"status": "stopped", "count": 2}],
    "server_metrics": [],
    "ui_url": "https://10.0.0.1:8443",
}


def enroll(stack: Stack, name: str, heartbeat: dict[str, Any] | None = None) -> MicroCloudClient:
    """Mint a token with the CLI, join with the MicroCloud emulator, optionally report once."""
    client = MicroCloudClient(stack.mint_token(name), resolve=stack.resolve)
    joined = client.join()
    assert joined.ok, joined.text
    if heartbeat is not None:
        reported = client.heartbeat(heartbeat)
        assert reported.ok, reported.text
    return client
