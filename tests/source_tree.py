"""The project's Python sources, parsed once when the test modules are collected.

Python 3.11 keeps the AST converter's recursion counter per interpreter, not per thread: an
`ast.parse` running while another thread formats a traceback (which parses too) can fail with
"AST constructor recursion depth mismatch". Collection runs before any test starts a server
or worker thread, so the static tests read these trees instead of parsing while others run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "adapters", "tenants", "routing")

TREES: dict[Path, ast.Module] = {
    path: ast.parse(path.read_text(), filename=str(path))
    for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
}


def tree(path: Path) -> ast.Module:
    return TREES[path.resolve()]
