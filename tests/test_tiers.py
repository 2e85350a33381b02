"""The test tiers (tests/conftest.py): each test lands in exactly one, from its mark or its directory."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import tier_of, tiers_marked


def test_every_collected_test_has_exactly_one_tier(request: pytest.FixtureRequest) -> None:
    items = request.session.items
    assert items
    assert [item.nodeid for item in items if len(tiers_marked(item)) != 1] == []


def _item(nodeid: str) -> Any:
    return SimpleNamespace(nodeid=nodeid)


@pytest.mark.parametrize(
    ("nodeid", "tier"),
    [
        ("tests/stacks/test_x.py::test_a[dev]", "unit"),
        ("tests/components/scripts/test_x.py::test_a", "postgres"),
        ("tests/bin/test_x.py::test_a", "cli"),
        ("tests/binary/test_x.py::test_a", "unit"),
    ],
    ids=["default", "pg scripts directory", "bin directory", "a prefix is not a directory"],
)
def test_tier_rules(nodeid: str, tier: str) -> None:
    assert tier_of(_item(nodeid)) == tier
