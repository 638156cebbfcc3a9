"""The pure rules stay pure: no web framework, database, queue or outer package."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"flask", "flask_smorest", "sqlalchemy", "rq", "redis", "gateway", "adapters"}
PURE_FILES = [
    *[(path, FORBIDDEN | {"tenants"}) for path in sorted((ROOT / "routing").glob("*.py"))],
    (ROOT / "tenants" / "classification.py", FORBIDDEN | {"tenants", "routing"}),
]


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # A relative import stays inside the module's own package.
            found.add("." if node.level else node.module.split(".")[0])
    return found


def test_pure_modules_exist():
    assert len(PURE_FILES) >= 9  # routing: __init__ + 7 modules, and classification


@pytest.mark.parametrize(("path", "forbidden"), PURE_FILES, ids=[p.name for p, _ in PURE_FILES])
def test_pure_module_imports_only_stdlib_and_its_own_package(path, forbidden):
    imported = imported_modules(path)
    assert not imported & forbidden
    own = {"routing", "."} if path.parent.name == "routing" else set()
    assert imported <= set(sys.stdlib_module_names) | own


OUTWARD = {"tenants": {"gateway", "adapters"}, "adapters": {"gateway"}}


@pytest.mark.parametrize(
    "path", [p for pkg in OUTWARD for p in sorted((ROOT / pkg).rglob("*.py"))],
    ids=lambda p: str(p.relative_to(ROOT)))
def test_dependencies_point_inwards(path):
    package = path.relative_to(ROOT).parts[0]
    assert not imported_modules(path) & OUTWARD[package]
