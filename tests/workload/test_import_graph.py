"""No import cycle in `cluster_manager`, not even one hidden behind a function-level import.

The graph is read from the source with `ast`, so a deferred import counts as much as one at
the top of a module: it only moves the cycle from import time to call time. An edge goes from
a module to every `cluster_manager` module it names: `import a.b` names `a.b`; `from a import
b` names `a` and, when `a.b` is a module, `a.b` too (`from . import charts` needs the package
`ui` as well as `ui.charts`). The implicit import of a module's parent packages is not an
edge, so a package's `__init__` may import its own submodules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import cluster_manager

PACKAGE_DIR = Path(cluster_manager.__file__).parent


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at `root`, by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The package's modules that module `name` (at `path`) imports, at any nesting level."""
    known = set(known)
    top = name.split(".")[0]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name.split(".")[0] == top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                assert node.level <= len(parts), f"{path}:{node.lineno}: import beyond {top}"
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if source.split(".")[0] != top:
                continue
            targets.add(source)
            targets.update(
                f"{source}.{alias.name}"
                for alias in node.names
                if f"{source}.{alias.name}" in known
            )
    unknown = targets - known
    assert not unknown, f"{path} imports modules that do not exist: {sorted(unknown)}"
    return targets


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports."""
    found = modules(root)
    return {name: imported(name, path, found) for name, path in found.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan), as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_through(group, graph) for group in groups]


def _path_through(group: set[str], graph: Mapping[str, set[str]]) -> list[str]:
    """A cycle inside `group`, from its first module back to it (breadth-first: shortest)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for successor in sorted(graph[node] & group):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle in {sorted(group)}")


def test_cluster_manager_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE_DIR)

    found = cycles(graph)

    assert len(graph) > 40, "the package was not found where the test looks"
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_a_cycle_behind_a_deferred_relative_import_is_found(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "top.py").write_text("def later():\n    from .sub import inner\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "inner.py").write_text("from .. import top\n")

    found = cycles(import_graph(root))

    assert found == [["pkg.sub.inner", "pkg.top", "pkg.sub.inner"]]


def test_a_submodule_importing_its_own_package_that_imports_it_is_a_cycle(
    tmp_path: Path,
) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("def install():\n    import pkg.routes\n")
    (root / "routes.py").write_text("from . import charts\n")
    (root / "charts.py").write_text("")

    found = cycles(import_graph(root))

    assert found == [["pkg", "pkg.routes", "pkg"]]


def test_a_package_importing_its_submodules_is_no_cycle(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("from .config import render\n")
    (root / "config.py").write_text("from .rates import parse\n")
    (root / "rates.py").write_text("import re\n")

    assert cycles(import_graph(root)) == []
