"""Routes call the service, the service calls `db/`: no page or API route reads the database.

The modules under `ui/` and `management/` (routes, serializers, the login flow, the warning
texts) reach the database only through `service` (the domain layer) and `auth` (who is
calling, and the browser's sessions). The graph is the one `test_import_graph` reads with
`ast`, so a deferred import counts as much as one at the top of a module.
"""

from __future__ import annotations

from pathlib import Path

from tests.workload.test_import_graph import PACKAGE_DIR, import_graph

ROUTE_PACKAGES = ("ui", "management")
"""The layers that answer requests (pages and the JSON API)."""
DATABASE = "db"


def direct_database_imports(root: Path) -> dict[str, list[str]]:
    """Each module under a route package of `root` -> the `db` modules it imports itself."""
    top = root.name
    layers = tuple(f"{top}.{package}" for package in ROUTE_PACKAGES)
    database = f"{top}.{DATABASE}"
    found: dict[str, list[str]] = {}
    for module, targets in import_graph(root).items():
        if not any(module == layer or module.startswith(layer + ".") for layer in layers):
            continue
        reads = sorted(t for t in targets if t == database or t.startswith(database + "."))
        if reads:
            found[module] = reads
    return found


def test_no_route_module_imports_the_database() -> None:
    found = direct_database_imports(PACKAGE_DIR)

    assert found == {}, "read `db/` through `service` or `auth` instead:\n" + "\n".join(
        f"{module} imports {', '.join(targets)}" for module, targets in sorted(found.items())
    )


def test_the_rule_finds_a_deferred_import_of_the_database(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    for package in ("db", "ui", "service"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "db" / "fleet.py").write_text("")
    (root / "service" / "fleet.py").write_text("from ..db import fleet\n")
    (root / "ui" / "routes.py").write_text("def page():\n    from ..db.fleet import x\n")
    (root / "ui" / "charts.py").write_text("from ..service import fleet\n")

    assert direct_database_imports(root) == {"pkg.ui.routes": ["pkg.db.fleet"]}
