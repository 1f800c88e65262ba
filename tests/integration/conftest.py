"""Fixtures for the integration tests, which need a real Juju model on Kubernetes.

They run only when `juju` is on PATH, `jubilant` is installed (dependency group
`integration`) and a model is named, with `--model NAME` or the JUJU_MODEL environment
variable; otherwise every test here is skipped (never failed), so `pytest` at the repository
root works on machines without Juju. The charm comes from CHARM_PATH (or the single *.charm at
the repository root) and the workload image from CLUSTER_MANAGER_IMAGE.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--model", default=None, help="Juju model for the integration tests")


def _model(config: pytest.Config) -> str | None:
    try:
        option = config.getoption("--model")
    except ValueError:  # the option is only registered when this directory is targeted
        option = None
    return option or os.environ.get("JUJU_MODEL")


def _skip_reason(config: pytest.Config) -> str | None:
    if shutil.which("juju") is None:
        return "needs the juju CLI on PATH and a Juju model on Kubernetes"
    if _model(config) is None:
        return "needs a Juju model: pass --model NAME or set JUJU_MODEL"
    if importlib.util.find_spec("jubilant") is None:
        return "needs jubilant: install the `integration` dependency group"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason(config)
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def juju(request: pytest.FixtureRequest) -> Any:
    """A jubilant.Juju bound to the chosen model (typed Any: jubilant is optional)."""
    import jubilant  # pyright: ignore[reportMissingImports] (optional dependency)

    return jubilant.Juju(model=_model(request.config))


@pytest.fixture(scope="session")
def charm_path() -> Path:
    if path := os.environ.get("CHARM_PATH"):
        return Path(path)
    charms = sorted(ROOT.glob("*.charm"))
    if len(charms) != 1:
        pytest.fail("set CHARM_PATH or put exactly one packed *.charm at the repository root")
    return charms[0]


@pytest.fixture(scope="session")
def workload_image() -> str:
    image = os.environ.get("CLUSTER_MANAGER_IMAGE")
    if not image:
        pytest.fail(
            "set CLUSTER_MANAGER_IMAGE to the OCI image built from workload/rockcraft.yaml"
        )
    return image
