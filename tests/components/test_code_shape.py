"""The shape of components/: small files, short functions, and imports that follow the architecture.

Checked with ``ast`` over components/*.py, so a file that grows past the limits, or an import
that turns the layering around, fails here rather than in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def too_long(source: str, path: str = "<source>") -> list[str]:
    """Every file over MAX_FILE_LINES and every function (or method) over MAX_FUNCTION_LINES."""
    found = []
    lines = len(source.splitlines())
    if lines > MAX_FILE_LINES:
        found.append(f"{path}: {lines} lines (at most {MAX_FILE_LINES})")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})")
    return found


def imports(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
    return modules


SOURCES = {p.name: p.read_text() for p in sorted(COMPONENTS.glob("*.py"))}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_files_and_functions_stay_small(name: str) -> None:
    assert too_long(SOURCES[name], f"components/{name}") == []


def test_the_size_check_can_fail() -> None:
    long_function = "def f() -> None:\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    assert too_long(long_function) == [f"<source>:1 f: {MAX_FUNCTION_LINES + 1} lines (at most {MAX_FUNCTION_LINES})"]
    long_file = "x = 1\n" * (MAX_FILE_LINES + 1)
    assert too_long(long_file) == [f"<source>: {MAX_FILE_LINES + 1} lines (at most {MAX_FILE_LINES})"]
    assert too_long("def f() -> None:\n" + "    x = 1\n" * (MAX_FUNCTION_LINES - 1)) == []


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_components_never_import_the_stacks(name: str) -> None:
    assert not [m for m in imports(SOURCES[name]) if m == "stacks" or m.startswith("stacks.")]


@pytest.mark.parametrize("name", ["headless_service.py", "naming.py", "validation.py", "quantity.py", "provider_annotations.py"])
def test_generic_modules_know_nothing_of_postgresql(name: str) -> None:
    assert not [m for m in imports(SOURCES[name]) if m.startswith("components.") and "postgres" in m]
