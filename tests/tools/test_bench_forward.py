"""`python -m tools.bench_forward` ends with the line the issue asks for (figures not checked)."""

import re
import shutil

import pytest

from tools import bench_forward


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (Debian prometheus)")
def test_the_last_line_compares_forwarding_with_promtool(tmp_path, capsys):
    argv = ["--clusters", "1", "--members", "2", "--instances", "4", "--rounds", "1"]

    assert bench_forward.main([*argv, "--work-dir", str(tmp_path)]) == 0

    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(
        r"forwarding: \d+ samples/s; promtool: \d+ samples/s; ratio \d+\.\d\d", last
    ), last
