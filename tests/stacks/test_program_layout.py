"""The program apart from its tools: stacks/ holds what `pulumi up` imports and nothing else, tools/ holds the
rest.

The import closure is read in a fresh interpreter: this test process has imported everything already.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.components.test_code_shape import too_long

ROOT = Path(__file__).resolve().parents[2]


def fresh_import(modules: list[str]) -> set[str]:
    """The modules a new interpreter holds after importing `modules`."""
    probe = f"import json, sys\nfor m in {modules!r}:\n    __import__(m)\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(result.stdout))


def main_imports() -> list[str]:
    """The modules __main__.py (what `pulumi up` runs) imports."""
    tree = ast.parse((ROOT / "__main__.py").read_text())
    found = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    found += [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module]
    return found


def project_modules(package: str) -> set[str]:
    """Every module of a package directory, by dotted name (stacks.config.schema)."""
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_pulumi_up_imports_every_stacks_module_and_no_tool() -> None:
    """stacks/ is the program: each of its modules is in __main__.py's import closure, and no tools/ module is."""
    imported = fresh_import(main_imports())
    assert sorted(m for m in imported if m == "tools" or m.startswith("tools.")) == []
    assert sorted(project_modules("stacks") - imported) == [], "a module in stacks/ that pulumi up never imports belongs in tools/"


def test_the_tools_are_found() -> None:
    """The closure check above compares against real packages: the tools exist where it looks."""
    assert {"tools.mock_run", "tools.render", "tools.changes", "tools.verify", "tools.collisions", "tools.recover"} <= project_modules(
        "tools"
    )
    assert {"stacks.database", "stacks.rollout", "stacks.config.load"} <= project_modules("stacks")


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for d in ("stacks", "tools") for p in (ROOT / d).rglob("*.py")))
def test_program_and_tool_modules_stay_small(path: str) -> None:
    assert too_long((ROOT / path).read_text(), path) == []
