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


# -- no import cycle inside the project -------------------------------------------------------
PACKAGES = ("gateway", "adapters", "tenants", "routing")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at module level AND inside functions (a
    function-level import is still a dependency; deferring it only hides a cycle until run
    time). A package's own __init__ is not counted as imported by its submodules: Python runs
    it first, but it is not a dependency the submodule chose."""
    files = {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
             if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import module` depends on the module; `from module import name`
                # on the module.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_sees_function_level_imports():
    graph = import_graph()
    # gateway/__init__.py imports the wiring inside create_app(); it must still be an edge
    assert "gateway.wiring" in graph["gateway"]
    assert "gateway.orders.lifecycle" in graph["gateway.orders.jobs"]


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_project():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_order_lifecycle_is_called_downwards():
    graph = import_graph()
    assert not {m for m in graph["gateway.orders.lifecycle"]
                if m.startswith(("gateway.orders.jobs", "gateway.orders.dispatch", "gateway.services",
                                 "gateway.api"))} - {"gateway.services.views"}
