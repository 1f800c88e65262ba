"""charmcraft.yaml, config.yaml and actions.yaml are valid and describe what the charm does.

The charmcraft checks use charmcraft 4.5.0 from its own virtual environment, .venv-charmcraft
(charmcraft's dependencies must not mix with the charm's). Create it with
`scripts/bootstrap-charmcraft`; without it those tests are skipped. charmcraft cannot pack
here (that needs an Ubuntu 24.04 host), so validation is `charmcraft expand-extensions` (the
top level of charmcraft.yaml, merged with config.yaml and actions.yaml) plus charmcraft's own
config model; actions.yaml is checked by our own rules below, because charmcraft 4.5.0's
actions model is broken.
"""

from __future__ import annotations

import ast
import keyword
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.unit.builders import ROOT, load_yaml

CHARMCRAFT_VENV = ROOT / ".venv-charmcraft"
CHARMCRAFT = CHARMCRAFT_VENV / "bin" / "charmcraft"
needs_charmcraft = pytest.mark.skipif(
    not CHARMCRAFT.exists(),
    reason=".venv-charmcraft is missing: run scripts/bootstrap-charmcraft to install charmcraft",
)
ACTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9-_]*$")
PARAM_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def run_charmcraft(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "CRAFT_NO_COLOR": "1"}
    return subprocess.run(
        [str(CHARMCRAFT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@needs_charmcraft
def test_charmcraft_expands_the_project_with_config_and_actions(tmp_path):
    result = run_charmcraft("expand-extensions", tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    expanded = yaml.safe_load(result.stdout)
    assert set(expanded["config"]["options"]) == set(load_yaml("config.yaml")["options"])
    assert set(expanded["actions"]) == set(load_yaml("actions.yaml"))
    assert expanded["assumes"] == ["juju >= 3.6", "k8s-api"]


@needs_charmcraft
def test_config_passes_charmcraft_config_model():
    script = (
        "import sys, yaml\n"
        "from charmcraft.models.config import JujuConfig\n"
        "JujuConfig.model_validate(yaml.safe_load(open(sys.argv[1])))\n"
    )
    result = subprocess.run(
        [str(CHARMCRAFT_VENV / "bin" / "python"), "-c", script, str(ROOT / "config.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr


def test_metadata_declares_the_container_image_peers_and_every_endpoint():
    meta = load_yaml("charmcraft.yaml")

    assert meta["containers"] == {"cluster-manager": {"resource": "cluster-manager-image"}}
    assert meta["resources"]["cluster-manager-image"]["type"] == "oci-image"
    assert set(meta["peers"]) == {"cluster-manager-peers"}
    requires = {name: spec["interface"] for name, spec in meta["requires"].items()}
    assert requires == {
        "database": "postgresql_client",
        "certificates": "tls-certificates",
        "receive-ca-cert": "certificate_transfer",
        "traefik-route": "traefik_route",
        "oauth": "oauth",
        "send-remote-write": "prometheus_remote_write",
        "logging": "loki_push_api",
    }
    provides = {name: spec["interface"] for name, spec in meta["provides"].items()}
    assert provides == {
        "metrics-endpoint": "prometheus_scrape",
        "grafana-dashboard": "grafana_dashboard",
    }
    limited = {name for name, spec in meta["requires"].items() if spec.get("limit") == 1}
    assert limited == {"database", "certificates", "traefik-route", "oauth"}


def test_charm_ships_the_workload_front_renderer():
    part = load_yaml("charmcraft.yaml")["parts"]["cluster-manager-front"]

    assert part["organize"] == {
        "cluster_manager/__init__.py": "lib/cluster_manager/__init__.py",
        "cluster_manager/exit_codes.py": "lib/cluster_manager/exit_codes.py",
        "cluster_manager/front": "lib/cluster_manager/front",
        "cluster_manager/options.py": "lib/cluster_manager/options.py",
    }
    assert (ROOT / part["source"] / "cluster_manager" / "front").is_dir()
    assert (ROOT / part["source"] / "cluster_manager" / "options.py").is_file()
    assert sorted(part["stage"]) == sorted(part["organize"].values())


def _shipped_modules() -> set[str]:
    """The workload modules the charm carries in lib/ (cluster_manager, .front.*, .options)."""
    part = load_yaml("charmcraft.yaml")["parts"]["cluster-manager-front"]
    modules = set()
    for source in part["organize"]:
        path = ROOT / part["source"] / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            relative = file.relative_to(ROOT / part["source"]).with_suffix("")
            modules.add(".".join(relative.parts).removesuffix(".__init__"))
    return modules


def _imports(path: Path, package: str) -> set[str]:
    """The modules `path` imports, relative imports resolved within `package`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.add(node.module)
    return found


def test_the_charm_imports_only_the_workload_modules_it_ships():
    shipped = _shipped_modules()

    for path in sorted((ROOT / "src").glob("*.py")):
        for module in _imports(path, ""):
            if module.split(".")[0] == "cluster_manager":
                assert module in shipped, f"{path.name} imports {module}, not in lib/"


def test_the_shipped_workload_modules_use_the_standard_library_only():
    shipped = _shipped_modules()
    source = ROOT / load_yaml("charmcraft.yaml")["parts"]["cluster-manager-front"]["source"]

    for module in sorted(shipped):
        path = source / Path(*module.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for imported in _imports(path, package):
            top = imported.split(".")[0]
            assert top in sys.stdlib_module_names or imported in shipped, (
                f"{module} imports {imported}, which the charm does not have"
            )


@pytest.mark.parametrize("name", sorted(load_yaml("actions.yaml")))
def test_action_is_well_formed(name):
    action = load_yaml("actions.yaml")[name]

    assert ACTION_NAME.match(name) and not keyword.iskeyword(name)
    assert action["description"].strip()
    assert set(action) <= {"description", "params", "required", "additionalProperties"}
    schema = {
        "type": "object",
        "properties": action.get("params", {}),
        "required": action.get("required", []),
        "additionalProperties": action.get("additionalProperties", True),
    }
    jsonschema.Draft7Validator.check_schema(schema)
    for param, spec in action.get("params", {}).items():
        assert PARAM_NAME.match(param)
        assert spec.get("description", "").strip(), f"{name}.{param} has no description"
    assert set(action.get("required", [])) <= set(action.get("params", {}))


def test_every_action_and_option_is_documented():
    doc = (ROOT / "README.md").read_text()

    for name in [*load_yaml("actions.yaml"), *load_yaml("config.yaml")["options"]]:
        assert f"`{name}`" in doc, f"{name} is missing from README.md"
