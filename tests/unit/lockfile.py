"""Reading uv.lock and the requirements files scripts/lock exports from it (no uv, no network).

uv.lock (TOML) has one `[[package]]` entry per locked distribution: its version, its artifacts
(`sdist`, `wheels`, each with a sha256 hash), its `dependencies` (and `optional-dependencies`
per extra) and, for the workspace's own packages, the `metadata` they were locked from
(`requires-dist`, and `requires-dev` for dependency groups).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK_PATH = ROOT / "uv.lock"
ROOT_PROJECT = "microcloud-cluster-manager-k8s"
WORKLOAD_PROJECT = "cluster-manager"


@dataclasses.dataclass(frozen=True)
class Pin:
    """One line of an exported requirements file: `name==version [; marker]` and its hashes."""

    name: str
    version: Version
    extras: frozenset[str]
    hashes: frozenset[str]


class Lock:
    """uv.lock, indexed by package name."""

    def __init__(self, path: Path = LOCK_PATH) -> None:
        self.data: dict[str, Any] = tomllib.loads(path.read_text())
        self.entries: dict[str, list[dict[str, Any]]] = {}
        for entry in self.data["package"]:
            self.entries.setdefault(canonicalize_name(entry["name"]), []).append(entry)

    def workspace_members(self) -> set[str]:
        return {canonicalize_name(name) for name in self.data["manifest"]["members"]}

    def entry(self, name: str, version: str | None = None) -> dict[str, Any]:
        """The one entry of NAME (the one at VERSION when the lock holds several)."""
        entries = self.entries[canonicalize_name(name)]
        if version is not None:
            entries = [e for e in entries if e["version"] == version]
        assert len(entries) == 1, f"{name}: {len(entries)} entries in uv.lock"
        return entries[0]

    def versions(self, name: str) -> list[Version]:
        return [Version(e["version"]) for e in self.entries.get(canonicalize_name(name), [])]

    def closure(self, roots: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Every package the dependency references ROOTS pull in, transitively, by name.

        A reference is `{name, extra?, version?, marker?}` as in an entry's `dependencies`;
        markers are kept (an exported file lists a Windows-only package with its marker).
        """
        found: dict[str, dict[str, Any]] = {}
        extras_seen: set[tuple[str, str]] = set()
        todo = list(roots)
        while todo:
            ref = todo.pop()
            entry = self.entry(ref["name"], ref.get("version"))
            name = canonicalize_name(entry["name"])
            if name not in found:
                found[name] = entry
                todo.extend(entry.get("dependencies", []))
            for extra in ref.get("extra", []):
                if (name, extra) not in extras_seen:
                    extras_seen.add((name, extra))
                    todo.extend(entry.get("optional-dependencies", {}).get(extra, []))
        return found

    def group_closure(self, project: str, group: str | None) -> dict[str, dict[str, Any]]:
        """What installing PROJECT's dependencies (GROUP None) or one group of it brings."""
        entry = self.entry(project)
        roots = (
            entry.get("dependencies", [])
            if group is None
            else entry.get("dev-dependencies", {}).get(group, [])
        )
        members = self.workspace_members()
        return {k: v for k, v in self.closure(roots).items() if k not in members}

    @staticmethod
    def artifact_hashes(entry: dict[str, Any]) -> frozenset[str]:
        artifacts = [*entry.get("wheels", []), *([entry["sdist"]] if "sdist" in entry else [])]
        return frozenset(a["hash"] for a in artifacts)


def read_pins(path: Path) -> dict[str, Pin]:
    """The `name==version` lines of a requirements file, with their continuations and hashes."""
    logical: list[str] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        continued = line.endswith("\\")
        current += " " + line.removesuffix("\\").strip()
        if not continued:
            logical.append(current.strip())
            current = ""
    if current.strip():
        logical.append(current.strip())

    pins: dict[str, Pin] = {}
    for line in logical:
        words = line.split(" --hash=")
        requirement = Requirement(words[0])
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {line!r} is not pinned with =="
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{path.name}: {name} twice"
        pins[name] = Pin(
            name=name,
            version=Version(spec.version),
            extras=frozenset(requirement.extras),
            hashes=frozenset(w.strip() for w in words[1:]),
        )
    return pins
