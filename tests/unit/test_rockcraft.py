"""The OCI image recipe builds what the tests ran."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

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
