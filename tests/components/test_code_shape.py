"""The shape of components/: small files, short functions, and imports that follow the architecture.

Checked with ``ast`` over components/*.py, so a file that grows past the limits, or an import
that turns the layering around, fails here rather than in review. The import graph of every
program package (components/, stacks/ and tools/ once it exists) must have no cycle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ROOT / "components"
# The packages whose import graph must have no cycle (tools/: the stacks' tools, once moved there).
PACKAGES = ("components", "stacks", "tools")
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


@functools.cache
def tree(source: str) -> ast.Module:
    """A source's syntax tree, parsed once per worker: the checks below walk each file several times, and never
    change a tree."""
    return ast.parse(source)


def too_long(source: str, path: str = "<source>") -> list[str]:
    """Every file over MAX_FILE_LINES and every function (or method) over MAX_FUNCTION_LINES."""
    found = []
    lines = len(source.splitlines())
    if lines > MAX_FILE_LINES:
        found.append(f"{path}: {lines} lines (at most {MAX_FILE_LINES})")
    for node in ast.walk(tree(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})")
    return found


def imports(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(tree(source)):
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


GENERIC = ["headless_service.py", "headless_service_args.py", "naming.py", "validation.py", "quantity.py", "provider_annotations.py"]


@pytest.mark.parametrize("name", GENERIC)
def test_generic_modules_know_nothing_of_postgresql(name: str) -> None:
    assert not [m for m in imports(SOURCES[name]) if m.startswith("components.") and "postgres" in m]


def registers(source: str) -> bool:
    """A registration module: it defines a ``pulumi.ComponentResource``, the layer above the
    contract (the ``*Args``) and the pure builders."""
    return any(
        isinstance(node, ast.ClassDef) and any(ast.unparse(base) == "pulumi.ComponentResource" for base in node.bases)
        for node in ast.walk(tree(source))
    )


REGISTRATION = {f"components.{name.removesuffix('.py')}" for name, source in SOURCES.items() if registers(source)}


def test_the_registration_modules_are_found() -> None:
    assert {"components.postgres_statefulset", "components.logical_backup", "components.headless_service"} <= REGISTRATION
    assert not REGISTRATION & {"components.postgres_args", "components.logical_backup_args", "components.postgres_pod"}


@pytest.mark.parametrize("name", sorted(n for n, s in SOURCES.items() if not registers(s)))
def test_contracts_and_builders_import_no_registration_module(name: str) -> None:
    """Contract (Args) <- pure builders <- registration: a module that registers nothing (an Args
    module such as postgres_args.py, or a builder) never imports one that does."""
    assert not imports(SOURCES[name]) & REGISTRATION


CONTRACTS = sorted(name for name in SOURCES if name.endswith("_args.py"))
# Modules that build Kubernetes objects (pulumi_kubernetes): the builders and the registration.
BUILDS = {f"components.{name.removesuffix('.py')}" for name, source in SOURCES.items() if "pulumi_kubernetes" in imports(source)}


def test_the_contract_modules_are_found() -> None:
    assert {"postgres_args.py", "logical_backup_args.py", "network_args.py"} <= set(CONTRACTS)


def test_every_args_class_lives_in_a_contract_module() -> None:
    """One place to look for what a component accepts: its ``<module>_args.py``."""
    misplaced = [
        f"components/{name}: {node.name}"
        for name, source in SOURCES.items()
        for node in tree(source).body
        if isinstance(node, ast.ClassDef) and node.name.endswith("Args") and not name.endswith("_args.py")
    ]
    assert misplaced == []


@pytest.mark.parametrize("name", CONTRACTS)
def test_contracts_build_nothing(name: str) -> None:
    """An Args module is the bottom layer: it imports no Kubernetes types and no builder, so the
    builders and the stacks can read the contract without the code that acts on it."""
    found = imports(SOURCES[name])
    assert "pulumi_kubernetes" not in found and not found & BUILDS, sorted(found & (BUILDS | {"pulumi_kubernetes"}))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The known modules a module's source imports, wherever the import stands: at the top,
    in a function, or under ``if TYPE_CHECKING`` (a type-only import still ties the two modules
    together: neither can be read, moved or split without the other, and both cycles issue 18
    names close only through such imports). ``from package import module`` counts as the module."""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            # `import a.b.c` also imports a and a.b: the nearest known module is the edge.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    files = {module_name(p, root): p for pkg in packages if (root / pkg).is_dir() for p in sorted((root / pkg).rglob("*.py"))}
    known = set(files)
    return {m: imported_modules(p.read_text(), m, p.name == "__init__.py", known) for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each shown as one cycle
    through it, ``a -> b -> a``, so the message says which imports to cut."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, group) for group in groups]


def _cycle_through(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest import path from the group's first module back to itself (breadth first)."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {sorted(group)}")


def test_no_import_cycles() -> None:
    found = [" -> ".join(cycle) for cycle in cycles(import_graph())]
    assert found == [], "import cycles (cut one import of each):\n" + "\n".join(found)


def test_the_cycle_check_can_fail(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import x\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("def f() -> None:\n    import pkg.a\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.b"] == {"pkg.sub", "pkg.sub.c"} and graph["pkg.sub"] == {"pkg.sub.c"} and graph["pkg.a"] == {"pkg.b"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    (pkg / "sub" / "c.py").write_text("")
    assert cycles(import_graph(tmp_path, ("pkg",))) == []
