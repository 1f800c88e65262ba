"""The packed charm holds what the charm runs on and none of the development files.

Two of charmcraft.yaml's parts put files into the charm:

- `charm` (plugin `charm`, source `.`): charmcraft's charm builder walks the project directory
  top down and links every file and directory that its ignore rules do not match; a matched
  directory is not entered (`CharmBuilder.handle_generic_paths` in charmcraft 4.5.0's
  `charmcraft/charm_builder.py`). The rules are charmcraft's defaults followed by `.jujuignore`
  (`CharmBuilder._load_juju_ignore`), matched by `charmcraft/jujuignore.py`.
- `cluster-manager-front` (plugin `dump`, source `workload`): organizes and stages
  `cluster_manager/__init__.py` and `cluster_manager/front` into lib/, untouched by
  `.jujuignore`. It is how `import cluster_manager.front` works in the charm.

The rules are read with charmcraft's own matcher, loaded from its file in `.venv-charmcraft`
(the module needs only `re` and `typing`, so it is loaded by path rather than by importing the
charmcraft package, whose dependencies live in that other environment). Without
`.venv-charmcraft`, `SubsetMatcher` reads them: it understands only the rule forms that
`.jujuignore` may use (see `test_jujuignore_uses_only_the_rule_forms_the_subset_reader_knows`),
and where charmcraft is installed both readers must agree on every path.

Not modelled here: before the charm builder runs, charmcraft leaves the top-level `*.charm`,
`charmcraft.yaml`, `.venv` and `.tox` out of the part's copy of the project
(`source_ignore_patterns` in `charmcraft/application/main.py`), and it writes metadata.yaml,
config.yaml and actions.yaml into the charm from the project itself
(`charmcraft/services/package.py`). The checks below are about what `.jujuignore` decides.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import os
import subprocess
from collections.abc import Iterable
from pathlib import PurePosixPath
from types import ModuleType
from typing import Protocol

import pytest

from tests.unit.builders import ROOT, load_yaml

CHARMCRAFT_VENV = ROOT / ".venv-charmcraft"

# Untracked local state that may sit in a checkout when someone runs `charmcraft pack`.
LOCAL_STATE = (
    "node_modules",
    ".venv",
    ".venv-charmcraft",
    "test-artifacts",
    ".local",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "src/__pycache__",
)

# The top level of the `charm` part's output: the charm code, our libraries and the files
# charmcraft reads from the project (metadata, options, actions, the charm's requirements).
CHARM_TOP_LEVEL = {
    "src",
    "lib",
    "README.md",
    "charmcraft.yaml",
    "config.yaml",
    "actions.yaml",
    "requirements.txt",
}
NEVER_PACKED = (
    "tests",
    "tools",
    "docs",
    "node_modules",
    ".venv",
    ".venv-charmcraft",
    "test-artifacts",
    ".local",
    "workload",
)

# The rules the charm builder applies before `.jujuignore`: `default_juju_ignore` in charmcraft
# 4.5.0's charmcraft/jujuignore.py, then `/staging-venv`, which `CharmBuilder.__init__` adds
# after `.jujuignore` (the order does not matter without negated rules).
CHARMCRAFT_DEFAULTS = (
    ".git",
    ".svn",
    ".hg",
    ".bzr",
    ".tox",
    "/build/",
    "/revision",
    "/venv",
    ".jujuignore",
    "/staging-venv",
)


class Matcher(Protocol):
    def match(self, path: str, is_dir: bool) -> bool: ...


def charmcraft_jujuignore() -> ModuleType | None:
    """Load charmcraft's `jujuignore` module from `.venv-charmcraft`, None without it."""
    found = sorted(CHARMCRAFT_VENV.glob("lib/python3*/site-packages/charmcraft/jujuignore.py"))
    if not found:
        return None
    spec = importlib.util.spec_from_file_location("charmcraft_jujuignore", found[0])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def jujuignore_lines() -> list[str]:
    return (ROOT / ".jujuignore").read_text().splitlines(keepends=True)


def rules() -> list[str]:
    stripped = (line.strip() for line in jujuignore_lines())
    return [line for line in stripped if line and not line.startswith("#")]


class SubsetMatcher:
    """Reads the rule forms `.jujuignore` may use, as charmcraft's `JujuIgnore` matches them.

    A rule is one path component, `*` matching within it: with a leading `/` it matches that
    entry at the top of the project, without one the last component of a path at any depth; a
    trailing `/` restricts it to directories. No negation, `**`, `?`, classes or escapes.
    """

    def __init__(self, lines: Iterable[str]):
        self._rules: list[tuple[str, bool, bool]] = []
        for line in lines:
            rule = line.strip()
            if not rule or rule.startswith("#"):
                continue
            only_dirs = rule.endswith("/")
            anchored = rule.startswith("/")
            self._rules.append((rule.strip("/"), anchored, only_dirs))

    def match(self, path: str, is_dir: bool) -> bool:
        parts = PurePosixPath(path).parts
        for pattern, anchored, only_dirs in self._rules:
            if only_dirs and not is_dir:
                continue
            if anchored and len(parts) != 1:
                continue
            if fnmatch.fnmatchcase(parts[-1], pattern):
                return True
        return False


def charmcraft_matcher(module: ModuleType) -> Matcher:
    """Return charmcraft's matcher with the rules the charm builder gives it, in its order."""
    matcher = module.JujuIgnore(module.default_juju_ignore)
    matcher.extend_patterns(jujuignore_lines())
    matcher.extend_patterns(["/staging-venv"])
    return matcher


def subset_matcher() -> SubsetMatcher:
    return SubsetMatcher([*CHARMCRAFT_DEFAULTS, *jujuignore_lines()])


def matchers() -> dict[str, Matcher]:
    """The readers of the rules available here: charmcraft's (with `.venv-charmcraft`), ours."""
    module = charmcraft_jujuignore()
    found: dict[str, Matcher] = (
        {} if module is None else {"charmcraft": charmcraft_matcher(module)}
    )
    found["subset"] = subset_matcher()
    return found


def project_paths() -> tuple[set[str], set[str]]:
    """Return (directories, files) of the checkout as the charm builder would see them.

    The files are those git tracks or would track (new ones included, git-ignored ones not);
    the local state of LOCAL_STATE is added, with a stand-in entry where it does not exist.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    files = {name for name in listed.stdout.split("\0") if name}
    for name in LOCAL_STATE:
        local = ROOT / name
        if local.is_dir():
            entries = sorted(os.listdir(local))[:20]
            files.update(f"{name}/{entry}" for entry in entries or ["stand-in"])
        else:
            files.add(f"{name}/stand-in")
    # A local .venv or node_modules may be a symlink to a directory: git lists it as a file.
    directories = {str(parent) for f in files for parent in PurePosixPath(f).parents}
    directories.discard(".")
    return directories, files - directories


def charm_part_files(matcher: Matcher) -> set[str]:
    """Return the files the charm builder links into the charm, pruning ignored directories."""
    directories, files = project_paths()
    pruned: set[str] = set()
    for directory in sorted(directories, key=lambda d: d.count("/")):
        parent = str(PurePosixPath(directory).parent)
        if parent in pruned or matcher.match(directory, is_dir=True):
            pruned.add(directory)
    return {
        f
        for f in files
        if str(PurePosixPath(f).parent) not in pruned and not matcher.match(f, is_dir=False)
    }


def front_part_files() -> dict[str, str]:
    """Return {path in the charm: path in the project} for the cluster-manager-front part."""
    part = load_yaml("charmcraft.yaml")["parts"]["cluster-manager-front"]
    assert part["plugin"] == "dump"
    source = part["source"]
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", source],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    staged: dict[str, str] = {}
    for project_path in listed:
        path = project_path.removeprefix(f"{source}/")
        for old, new in part["organize"].items():
            if path == old or path.startswith(f"{old}/"):
                path = new + path[len(old) :]
                break
        if any(path == keep or path.startswith(f"{keep}/") for keep in part["stage"]):
            staged[path] = project_path
    return staged


def imported_modules(source: str) -> list[tuple[str, int]]:
    """Return (module, level) for every import statement of a Python source."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


needs_charmcraft = pytest.mark.skipif(
    charmcraft_jujuignore() is None,
    reason=".venv-charmcraft is missing: run scripts/bootstrap-charmcraft to install charmcraft",
)


@pytest.fixture(scope="module", params=list(matchers()))
def packed(request) -> set[str]:
    return charm_part_files(matchers()[request.param])


def test_jujuignore_uses_only_the_rule_forms_the_subset_reader_knows():
    for rule in rules():
        component = rule.strip("/")
        assert component, rule
        assert "/" not in component, f"{rule}: one path component only"
        assert not set(component) & set("!?[]\\ "), f"{rule}: outside the subset"
        assert not rule.startswith("!") and "**" not in rule, rule


@needs_charmcraft
def test_the_subset_reader_knows_charmcraft_defaults():
    module = charmcraft_jujuignore()
    assert module is not None

    defaults = [rule for rule in module.default_juju_ignore if rule.strip()]
    assert [*defaults, "/staging-venv"] == list(CHARMCRAFT_DEFAULTS)


@needs_charmcraft
def test_the_subset_reader_agrees_with_charmcraft_on_every_path():
    module = charmcraft_jujuignore()
    assert module is not None
    charmcraft = charmcraft_matcher(module)
    subset = subset_matcher()
    directories, files = project_paths()

    for path, is_dir in [(d, True) for d in directories] + [(f, False) for f in files]:
        assert subset.match(path, is_dir) == charmcraft.match(path, is_dir), path


def test_charm_part_ships_the_charm_code_libraries_and_metadata(packed):
    _, files = project_paths()
    code = {f for f in files if f.startswith(("src/", "lib/")) and "__pycache__" not in f}

    assert code <= packed
    assert "src/charm.py" in packed
    assert {"charmcraft.yaml", "config.yaml", "actions.yaml", "requirements.txt"} <= packed
    assert {PurePosixPath(f).parts[0] for f in packed} == CHARM_TOP_LEVEL


@pytest.mark.parametrize("top", NEVER_PACKED)
def test_charm_part_leaves_out_development_files_and_local_state(packed, top):
    assert sorted(f for f in packed if PurePosixPath(f).parts[0] == top) == []


def test_charm_part_leaves_out_bytecode_and_every_virtual_environment(packed):
    assert not [f for f in packed if f.startswith(".venv")]
    assert not [f for f in packed if "__pycache__" in f or f.endswith(".pyc")]


def test_front_part_stages_the_front_renderer_and_what_the_charm_imports_into_lib():
    staged = front_part_files()
    front = {
        f"lib/cluster_manager/front/{path.name}"
        for path in (ROOT / "workload" / "cluster_manager" / "front").glob("*.py")
    }

    imported = {
        "lib/" + module.replace(".", "/") + ".py"
        for path in (ROOT / "src").rglob("*.py")
        for module, level in imported_modules(path.read_text())
        if level == 0 and module.split(".")[0] == "cluster_manager"
    }

    assert "lib/cluster_manager/__init__.py" in staged
    assert front and front <= set(staged)
    # Nothing but the package, the front and the standalone modules the charm imports.
    assert set(staged) <= {"lib/cluster_manager/__init__.py", *front, *imported}
