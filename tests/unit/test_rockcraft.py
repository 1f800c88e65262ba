"""The OCI image recipe builds what the tests ran."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from packaging.version import Version

from tests.unit.lockfile import WORKLOAD_PROJECT, Lock, read_pins

ROOT = Path(__file__).resolve().parents[2]
RECIPE = yaml.safe_load((ROOT / "workload" / "rockcraft.yaml").read_text())


def _locked_version(package: str) -> str:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    return lock["packages"][f"node_modules/{package}"]["version"]


def test_image_compiles_the_ui_with_the_locked_npm_versions() -> None:
    build = RECIPE["parts"]["cluster-manager"]["override-build"]

    pinned = dict(re.findall(r"\b(vanilla-framework|sass)@([0-9][^\s]*)", build))

    assert pinned == {
        "vanilla-framework": _locked_version("vanilla-framework"),
        "sass": _locked_version("sass"),
    }


def test_image_is_ubuntu_24_04_with_haproxy() -> None:
    assert RECIPE["base"] == "ubuntu@24.04"
    assert "haproxy" in RECIPE["parts"]["haproxy"]["stage-packages"]


def test_image_installs_the_workload_at_the_locked_versions() -> None:
    """The python part installs `.` with constraints.txt: every dependency at uv.lock's pin."""
    part = RECIPE["parts"]["cluster-manager"]
    assert part["plugin"] == "python"
    assert part["source"] == "."
    assert part["python-packages"] == ["."]
    assert part["python-constraints"] == ["constraints.txt"]

    pins = read_pins(ROOT / "workload" / "constraints.txt")
    locked = Lock().group_closure(WORKLOAD_PROJECT, None)

    assert {name: pin.version for name, pin in pins.items()} == {
        name: Version(entry["version"]) for name, entry in locked.items()
    }, "workload/constraints.txt is stale: run scripts/lock"
    # pip refuses extras in a constraints file; hashes would put pip in hash-checking mode,
    # which the plugin's `pip install .` (a directory) cannot satisfy.
    assert all(not pin.extras and not pin.hashes for pin in pins.values())
