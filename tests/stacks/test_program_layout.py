"""The program apart from its tools: stacks/ holds what `pulumi up` imports and nothing else, tools/ holds the
rest, and the tools that only read stack files run without importing Pulumi.

Each import is checked in a fresh interpreter: this test process has imported everything already.
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
PULUMI = ("pulumi", "pulumi_kubernetes")


def fresh_import(modules: list[str]) -> tuple[set[str], dict[str, list[str]]]:
    """Import `modules` in a new interpreter: the project's modules it then holds, and for each Pulumi package
    imported, the project modules on the stack when it was first imported (who pulled it in)."""
    probe = f"""
import json, sys, traceback

class Spy:
    chains = {{}}
    def find_spec(self, name, path=None, target=None):
        if name in {PULUMI!r} and name not in Spy.chains:
            Spy.chains[name] = [f.filename for f in traceback.extract_stack()]
        return None

sys.meta_path.insert(0, Spy())
for module in {modules!r}:
    __import__(module)
print(json.dumps({{"modules": sorted(sys.modules), "chains": Spy.chains}}))
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    found = json.loads(result.stdout)
    return set(found["modules"]), found["chains"]


def importers(chain: list[str]) -> list[str]:
    """The project modules in an import chain, outermost first (stacks/config/formats.py -> stacks.config.formats)."""
    names = []
    for filename in chain:
        path = Path(filename)
        if path.is_relative_to(ROOT) and path.suffix == ".py":
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return list(dict.fromkeys(names))


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
    imported, _ = fresh_import(main_imports())
    assert sorted(m for m in imported if m == "tools" or m.startswith("tools.")) == []
    assert sorted(project_modules("stacks") - imported) == [], "a module in stacks/ that pulumi up never imports belongs in tools/"


def test_the_tools_are_found() -> None:
    """The closure check above compares against real packages: the tools exist where it looks."""
    assert {"tools.mock_run", "tools.render", "tools.changes", "tools.verify", "tools.collisions", "tools.recover"} <= project_modules(
        "tools"
    )
    assert {"stacks.database", "stacks.rollout", "stacks.config.load"} <= project_modules("stacks")


# Import chains that still reach Pulumi through components/ (another part of issue 18 owns those modules):
# the pure names these tools need live beside Pulumi-bound code there. strict: once fixed, drop the mark.
_THROUGH_COMPONENTS = pytest.mark.xfail(
    strict=True,
    reason="components.validation (grammars), components.pod_security (POSTGRES_UID), components.longhorn_backups "
    "(RECURRING_JOB_NAME_MAX) and, for verify, components.postgres_pod (SECRETS_MOUNT, SUPERUSER) import Pulumi",
)


@pytest.mark.parametrize(
    "module",
    [
        "components.naming",
        pytest.param("tools.stack_files", marks=_THROUGH_COMPONENTS),
        pytest.param("stacks.config", marks=_THROUGH_COMPONENTS),
        pytest.param("tools.recover", marks=_THROUGH_COMPONENTS),
        pytest.param("tools.collisions", marks=_THROUGH_COMPONENTS),
        pytest.param("tools.verify", marks=_THROUGH_COMPONENTS),
    ],
)
def test_the_stack_file_tools_import_no_pulumi(module: str) -> None:
    """bin/recover-rollout, bin/verify and the collision check read stack files: importing Pulumi costs them
    ~0.15 s (pulumi_kubernetes ~0.45 s) a run for nothing. The message names who imported it."""
    _, chains = fresh_import([module])
    assert {name: " -> ".join(importers(chain)) for name, chain in chains.items()} == {}


def test_the_pulumi_check_can_fail() -> None:
    """The probe sees an import of Pulumi, and names the project module that made it."""
    _, chains = fresh_import(["components.outputs"])
    assert importers(chains["pulumi"]) == ["components.outputs"]


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for d in ("stacks", "tools") for p in (ROOT / d).rglob("*.py")))
def test_program_and_tool_modules_stay_small(path: str) -> None:
    assert too_long((ROOT / path).read_text(), path) == []
