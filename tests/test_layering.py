"""The layers stay as docs/architecture.md draws them: no package imports one above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lower numbers lie further down; a package may import its own layer and those below.
LAYERS = {
    "ground": 0,
    "collector": 1,
    "rules": 1,
    "records": 1,
    "tickets": 2,
    "patrol": 2,
    "simulators": 2,
    "gateway": 2,
    "grafana": 2,
    "accounts": 2,
    "maintenance": 2,
    "quality": 2,
    "api": 3,
    "console": 4,
    "facility": 5,
}


def imported_packages(source: str) -> set[str]:
    """The product's top-level packages a module imports, anywhere in it (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & LAYERS.keys()


def upward_imports(root: Path) -> list[str]:
    """Every import of a higher layer under `root`, as 'file: package → package'."""
    problems = []
    for package, layer in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            for imported in sorted(imported_packages(path.read_text(encoding="utf-8"))):
                above = LAYERS[imported]
                if above > layer:
                    where = path.relative_to(root)
                    problems.append(f"{where}: {package} (layer {layer}) imports {imported} ({above})")
    return problems


def test_no_package_imports_a_layer_above_it() -> None:
    assert upward_imports(ROOT) == []


def test_every_package_of_the_product_has_its_layer() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == set(LAYERS)


@pytest.mark.parametrize(
    ("package", "line"),
    [
        ("ground", "from collector.inbox import Inbox"),
        ("collector", "import tickets.service"),
        ("rules", "from api.app import create_app"),
        ("tickets", "from facility.service import Service"),
    ],
)
def test_an_upward_import_is_found(tmp_path: Path, package: str, line: str) -> None:
    """The check itself: a copy of the tree with one upward import added fails it, naming it."""
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / package / "added.py").write_text(f"def later() -> None:\n    {line}\n")
    [problem] = upward_imports(tmp_path)
    assert problem.startswith(f"{package}/added.py: {package}")
