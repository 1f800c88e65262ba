"""uv.lock pins exactly what the pyproject.toml files declare, and the files made from it agree.

scripts/lock updates uv.lock and exports requirements.txt (the charm's runtime dependencies, for
charmcraft) and scripts/uv-requirements.txt (uv itself, for scripts/uv) from it; scripts/bootstrap
installs .venv and .venv-charmcraft from it. The image's constraints are checked in
test_rockcraft.py. These tests read files only: no uv, no network.
"""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.unit.lockfile import ROOT, ROOT_PROJECT, WORKLOAD_PROJECT, Lock, read_pins

LOCK = Lock()
PYPROJECTS = {
    ROOT_PROJECT: tomllib.loads((ROOT / "pyproject.toml").read_text()),
    WORKLOAD_PROJECT: tomllib.loads((ROOT / "workload" / "pyproject.toml").read_text()),
}

Key = tuple[str, frozenset[str], SpecifierSet, str]


def _declared(project: str) -> dict[str | None, list[Requirement]]:
    """PROJECT's dependencies (key None) and dependency groups, as declared in its pyproject."""
    pyproject = PYPROJECTS[project]
    declared: dict[str | None, list[Requirement]] = {
        None: [Requirement(r) for r in pyproject["project"].get("dependencies", [])]
    }
    for group, items in pyproject.get("dependency-groups", {}).items():
        assert all(isinstance(i, str) for i in items), f"{group}: only plain requirements here"
        declared[canonicalize_name(group)] = [Requirement(i) for i in items]
    return declared


def _key(requirement: Requirement) -> Key:
    marker = str(requirement.marker) if requirement.marker else ""
    return (
        canonicalize_name(requirement.name),
        frozenset(requirement.extras),
        requirement.specifier,
        marker,
    )


def _locked_key(item: dict[str, Any]) -> Key:
    return (
        canonicalize_name(item["name"]),
        frozenset(item.get("extras", [])),
        SpecifierSet(item.get("specifier", "")),
        item.get("marker", ""),
    )


def _every_declared() -> list[tuple[str, str | None, Requirement]]:
    return [
        (project, group, requirement)
        for project in PYPROJECTS
        for group, requirements in _declared(project).items()
        for requirement in requirements
    ]


@pytest.mark.parametrize("project", list(PYPROJECTS))
def test_lock_was_made_from_the_declared_dependencies_and_groups(project: str) -> None:
    """Stale otherwise: pyproject.toml changed and scripts/lock was not run."""
    metadata = LOCK.entry(project).get("metadata", {})
    locked: dict[str | None, list[dict[str, Any]]] = {None: metadata.get("requires-dist", [])}
    for group, items in metadata.get("requires-dev", {}).items():
        locked[canonicalize_name(group)] = items

    declared = _declared(project)

    assert set(locked) == set(declared), "dependency groups differ: run scripts/lock"
    for group, requirements in declared.items():
        assert sorted(map(_locked_key, locked[group]), key=str) == sorted(
            map(_key, requirements), key=str
        ), f"{project} {group or 'dependencies'} differ from uv.lock: run scripts/lock"


@pytest.mark.parametrize(
    ("project", "group", "requirement"),
    _every_declared(),
    ids=[f"{p}:{g or 'main'}:{r.name}" for p, g, r in _every_declared()],
)
def test_every_declared_dependency_is_locked_at_a_version_it_allows(
    project: str, group: str | None, requirement: Requirement
) -> None:
    versions = LOCK.versions(requirement.name)

    assert versions, f"{requirement.name} ({project}) is not in uv.lock"
    for version in versions:
        assert requirement.specifier.contains(version, prereleases=True), (
            f"uv.lock has {requirement.name} {version}, outside {requirement}"
        )
    for extra in requirement.extras:
        for entry in LOCK.entries[canonicalize_name(requirement.name)]:
            assert extra in entry.get("optional-dependencies", {}), f"{requirement}: [{extra}]"


def test_lock_holds_nothing_that_is_not_declared_or_pulled_in() -> None:
    roots: list[dict[str, Any]] = [{"name": project} for project in PYPROJECTS]

    reachable = set(LOCK.closure(roots))
    for group in _declared(ROOT_PROJECT):
        if group is not None:
            reachable |= set(LOCK.group_closure(ROOT_PROJECT, group))

    assert reachable == set(LOCK.entries)


def test_requirements_txt_is_the_charm_dependencies_exported_from_the_lock() -> None:
    """Every package the charm needs is in requirements.txt (charmcraft's), at the lock's pin."""
    pins = read_pins(ROOT / "requirements.txt")
    locked = LOCK.group_closure(ROOT_PROJECT, None)

    assert set(pins) == set(locked), "requirements.txt is stale: run scripts/lock"
    for name, pin in pins.items():
        assert pin.version == Version(locked[name]["version"]), name
        assert pin.hashes == Lock.artifact_hashes(locked[name]), f"{name}: hashes"
    for requirement in _declared(ROOT_PROJECT)[None]:
        assert requirement.specifier.contains(
            pins[canonicalize_name(requirement.name)].version, prereleases=True
        ), requirement


def test_uv_itself_is_pinned_with_hashes_from_the_lock() -> None:
    pins = read_pins(ROOT / "scripts" / "uv-requirements.txt")
    locked = LOCK.group_closure(ROOT_PROJECT, "uv")

    assert set(pins) == set(locked) == {"uv"}
    assert pins["uv"].version == Version(locked["uv"]["version"])
    assert pins["uv"].hashes == Lock.artifact_hashes(locked["uv"])


def test_charm_build_installs_exactly_the_pinned_requirements() -> None:
    """Strict dependencies: charmcraft runs `pip install --no-deps` on requirements.txt alone.

    The packages allowed as wheels must be in requirements.txt, the others are built from their
    source distribution, which must exist; a package that ships compiled wheels only (Rust, C)
    would need a toolchain to build, so it has to be allowed as a wheel.
    """
    part = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())["parts"]["charm"]
    pins = read_pins(ROOT / "requirements.txt")
    binary = set(part["charm-binary-python-packages"])

    assert part["charm-strict-dependencies"] is True
    assert part["charm-requirements"] == ["requirements.txt"]
    # charmcraft matches the names as written, and the export writes normalized names.
    assert binary <= set(pins), "spell them as requirements.txt does (pyyaml, not PyYAML)"
    for name in set(pins) - binary:
        entry = LOCK.entry(name, str(pins[name].version))
        wheels = [w["url"].rsplit("/", 1)[-1] for w in entry.get("wheels", [])]
        assert "sdist" in entry, f"{name} has no source distribution: allow its wheel"
        assert any(w.endswith("-none-any.whl") for w in wheels) or not wheels, (
            f"{name} ships compiled wheels only: add it to charm-binary-python-packages"
        )
