"""`python -m tools.bench_tunnel` holds its tunnels and prints its three figures (not checked)."""

from __future__ import annotations

import re

import pytest

from tools import bench_tunnel
from tools.postgres import PostgresServer


def test_the_benchmark_prints_memory_per_tunnel_and_latency(
    postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres.create_database("bench_tunnel")
    argv = ["--tunnels", "3", "--requests", "5", "--dial-interval", "0.2", "--settle", "0"]

    assert bench_tunnel.main([*argv, "--database-url", url]) == 0

    lines = capsys.readouterr().out.strip().splitlines()[-3:]
    assert re.fullmatch(r"tunnel process: .* with 3: -?\d+\.\d KiB per idle tunnel", lines[0])
    assert re.fullmatch(r"HAProxy .*: -?\d+\.\d KiB per idle tunnel", lines[1])
    assert re.fullmatch(r"GET /1.0 through a tunnel .* p50 \d+\.\d ms, p99 .*", lines[2])
