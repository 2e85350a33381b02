"""The test tiers (tests/conftest.py): each test lands in exactly one, by rule, and the unit tier runs nothing external."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.components.scripts.pg_harness import require_pg_bin
from tests.conftest import program_tier, tier_of, tiers_marked


def test_every_collected_test_has_exactly_one_tier(request: pytest.FixtureRequest) -> None:
    items = request.session.items
    assert items
    assert [item.nodeid for item in items if len(tiers_marked(item)) != 1] == []


def _item(nodeid: str, fixtures: dict[str, Callable[..., Any]] | None = None, function: Callable[..., Any] | None = None) -> Any:
    defs = {name: [SimpleNamespace(func=func)] for name, func in (fixtures or {}).items()}
    return SimpleNamespace(nodeid=nodeid, fixturenames=list(defs), _fixtureinfo=SimpleNamespace(name2fixturedefs=defs), function=function)


def _a_fixture() -> None:
    pass


def _a_pg_fixture() -> None:
    require_pg_bin()


@pytest.mark.parametrize(
    ("item", "tier"),
    [
        (_item("tests/test_x.py::test_a", {"stack_run": _a_fixture}, _a_fixture), "unit"),
        (_item("tests/components/scripts/test_x.py::test_a"), "postgres"),
        (_item("tests/test_x.py::test_a[dev]", {"pg": _a_pg_fixture}), "postgres"),
        (_item("tests/test_x.py::test_a", function=_a_pg_fixture), "postgres"),
        (_item("tests/stacks/test_security.py::test_a[dev]", {"checkov_report": _a_fixture}), "scanner"),
    ],
    ids=["default", "directory", "pg harness fixture", "pg harness in the test", "scanner fixture"],
)
def test_tier_rules(item: Any, tier: str) -> None:
    assert tier_of(item) == tier


@pytest.mark.parametrize(
    ("args", "tier"),
    [
        (["/usr/bin/shellcheck", "-x", "a.sh"], "scanner"),
        ([Path("/x/.venv-checkov/bin/checkov"), "-d", "."], "scanner"),
        ("zizmor --offline .", "scanner"),
        (["/usr/lib/postgresql/15/bin/initdb", "-D", "x"], "postgres"),
        ("psql -c 'select 1'", "postgres"),
        (["bash", "-c", "echo psql"], None),
        ([Path("/usr/bin/python3"), "-m", "pytest"], None),
    ],
)
def test_the_unit_tier_refuses_scanners_and_postgres(args: Any, tier: str | None) -> None:
    assert program_tier(args) == tier
