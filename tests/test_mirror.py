"""tests/ mirrors the source tree: each module of components/, stacks/, tools/ and policy/ has its test file
tests/<path>/test_<module>.py (a package's __init__.py: tests/<parent>/test_<package>.py), or the table in
docs/testing.md#where-modules-are-tested names the test files that test it. Checked both ways: the table names
only existing modules, without a test file of their own, and existing test files.

An __init__.py that only re-exports (a docstring, imports, __all__) holds nothing to test: its names are tested
where they are defined.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

from tools.stack_files import ROOT

PACKAGES = ("components", "stacks", "tools", "policy")
TESTING = ROOT / "docs" / "testing.md"
ANCHOR = "where-modules-are-tested"
ROW = re.compile(r"^\| `([^`]+)` \| ((?:`[^`]+`(?:, )?)+) \|", re.MULTILINE)


def reexports_only(source: str) -> bool:
    for node in ast.parse(source).body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        names_all = isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]
        if not (docstring or names_all or isinstance(node, ast.Import | ast.ImportFrom)):
            return False
    return True


def modules() -> list[str]:
    """Every module of the packages, as a path from the repository root (the policy pack's own venv left out)."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if {"venv", "__pycache__"} & set(relative.parts):
                continue
            if path.name == "__init__.py" and reexports_only(path.read_text()):
                continue
            found.append(relative.as_posix())
    return found


def mirror(module: str) -> str:
    """components/cron.py -> tests/components/test_cron.py; tools/verify/__init__.py -> tests/tools/test_verify.py."""
    path = Path(module)
    if path.name == "__init__.py":
        return (Path("tests") / path.parent.parent / f"test_{path.parent.name}.py").as_posix()
    return (Path("tests") / path.parent / f"test_{path.name}").as_posix()


def table(text: str) -> list[tuple[str, list[str]]]:
    """(module, test files) of each row of the section under the anchor, up to the next anchor."""
    start = text.index(f'<a id="{ANCHOR}"></a>')
    end = text.find("<a id=", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return [(module, re.findall(r"`([^`]+)`", files)) for module, files in ROW.findall(section)]


def problems(found: list[str], rows: list[tuple[str, list[str]]], exists: Callable[[str], bool]) -> list[str]:
    """What breaks the rule, one line each: a module with neither a test file nor a row, and a row that names a
    module that is not one, that has its own test file, twice, or a test file that does not exist."""
    listed = [module for module, _ in rows]
    wrong = [f"{m}: no {mirror(m)}, and no row in docs/testing.md#{ANCHOR}" for m in found if not exists(mirror(m)) and m not in listed]
    for module, tests in rows:
        if module not in found:
            wrong.append(f"docs/testing.md#{ANCHOR}: {module} is not a module of {', '.join(PACKAGES)}")
        elif exists(mirror(module)):
            wrong.append(f"docs/testing.md#{ANCHOR}: {module} has its own {mirror(module)}; drop its row")
        if listed.count(module) > 1:
            wrong.append(f"docs/testing.md#{ANCHOR}: {module} has more than one row")
        wrong += [
            f"docs/testing.md#{ANCHOR}: {module} names {test}, which is not a test file"
            for test in tests
            if not (exists(test) and test.startswith("tests/") and Path(test).name.startswith("test_"))
        ]
    return sorted(set(wrong))


def test_every_module_has_its_test_file_or_a_row_and_every_row_is_true() -> None:
    rows = table(TESTING.read_text())
    assert rows, f"no table found under docs/testing.md#{ANCHOR}"
    assert problems(modules(), rows, lambda path: (ROOT / path).is_file()) == []


def test_the_modules_are_found() -> None:
    """The rule is checked against the real tree: re-export packages skipped, the others and __main__ kept."""
    found = modules()
    assert {"components/cron.py", "stacks/config/schema.py", "tools/verify/steps.py", "policy/rules.py"} <= set(found)
    assert "policy/__main__.py" in found
    assert "stacks/config/__init__.py" not in found
    assert "components/__init__.py" not in found


def test_the_rule_fails_each_way() -> None:
    files = {"tests/a/test_b.py", "tests/a/test_other.py", "tests/test_pkg.py"}
    exists = files.__contains__
    assert problems(["a/b.py", "pkg/__init__.py"], [], exists) == []
    assert problems(["a/c.py"], [], exists) == [f"a/c.py: no tests/a/test_c.py, and no row in docs/testing.md#{ANCHOR}"]
    assert problems(["a/c.py"], [("a/c.py", ["tests/a/test_other.py"])], exists) == []
    assert problems([], [("a/gone.py", ["tests/a/test_other.py"])], exists) == [
        f"docs/testing.md#{ANCHOR}: a/gone.py is not a module of {', '.join(PACKAGES)}"
    ]
    assert problems(["a/b.py"], [("a/b.py", ["tests/a/test_other.py"])], exists) == [
        f"docs/testing.md#{ANCHOR}: a/b.py has its own tests/a/test_b.py; drop its row"
    ]
    assert problems(["a/c.py"], [("a/c.py", ["tests/a/test_missing.py"])], exists) == [
        f"docs/testing.md#{ANCHOR}: a/c.py names tests/a/test_missing.py, which is not a test file"
    ]
    assert problems(["a/c.py"], [("a/c.py", ["tests/a/test_other.py"])] * 2, exists) == [
        f"docs/testing.md#{ANCHOR}: a/c.py has more than one row"
    ]


def test_the_table_is_read_as_written() -> None:
    text = "\n".join(
        [
            f'<a id="{ANCHOR}"></a>',
            "| module | test files | how |",
            "|---|---|---|",
            "| `a/c.py` | `tests/x/test_y.py`, `tests/test_z.py` | via y |",
            '<a id="next"></a>',
            "| `a/d.py` | `tests/test_d.py` | |",
        ]
    )
    assert table(text) == [("a/c.py", ["tests/x/test_y.py", "tests/test_z.py"])]


def test_reexport_packages_are_recognised() -> None:
    assert reexports_only('"""Doc."""\nfrom a import b\nimport c\n__all__ = ["b"]\n')
    assert not reexports_only('"""Doc."""\nfrom a import b\nX = 1\n')
