"""One module owns the set's pod names, Service names and DNS (components/postgres_names.py)."""

from __future__ import annotations

import ast
import functools
import itertools
from pathlib import Path

import pytest

from components.naming import pod_dns, service_dns
from components.postgres_names import (
    claim_name,
    headless_service,
    pod_host,
    pod_names,
    primary_pod_name,
    read_only_service,
    standby_pod,
    standby_set,
    statefulsets,
)

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "components" / "postgres_names.py"


def test_the_standby_rule() -> None:
    assert standby_set("pg") == "pg-standby"
    assert standby_pod("pg", 3) == "pg-standby-3"
    assert statefulsets("pg", 3, replication=True) == [("pg", "primary", 1, 0), ("pg-standby", "standby", 2, 1)]
    # The standby set exists with no standby, so scaling 1 -> 2 never touches the primary's set.
    assert statefulsets("pg", 1, replication=True) == [("pg", "primary", 1, 0), ("pg-standby", "standby", 0, 1)]
    assert statefulsets("pg", 3, replication=False) == [("pg", "primary", 3, 0)]
    assert pod_names("pg", 3, replication=True) == ["pg-0", "pg-standby-1", "pg-standby-2"]
    assert pod_names("pg", 2, replication=False) == ["pg-0", "pg-1"]
    assert [claim_name(p) for p in pod_names("pg", 2, True)] == ["data-pg-0", "data-pg-standby-1"]


def test_primary_and_dns() -> None:
    assert primary_pod_name("pg") == "pg-0"
    assert primary_pod_name("pg", "pg-standby-2") == "pg-standby-2"
    assert (headless_service("pg"), read_only_service("pg")) == ("pg-hl", "pg-ro")
    assert pod_host("pg", "pg-0", "db") == "pg-0.pg-hl.db.svc.cluster.local"
    assert pod_dns("pg-0", "pg-hl", "db", "example.org") == "pg-0.pg-hl.db.svc.example.org"
    assert service_dns("pg-ro", "db") == "pg-ro.db.svc.cluster.local"


@functools.cache
def _nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of a file's syntax tree, parsed once for the three needles."""
    return tuple(ast.walk(ast.parse(path.read_text())))


def _spelled(path: Path, needle: str) -> list[str]:
    """Places that build a name with the rule: f"{name}-standby..." or name + "-standby" (prose does not count)."""
    hits = []
    for node in _nodes(path):
        parts = node.values if isinstance(node, ast.JoinedStr) else []
        built = any(
            isinstance(before, ast.FormattedValue) and isinstance(part, ast.Constant) and str(part.value).startswith(needle)
            for before, part in itertools.pairwise(parts)
        )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.Constant):
            built = built or str(node.right.value).startswith(needle)
        if built:
            hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return hits


PYTHON = sorted(p for d in ("components", "stacks") for p in (ROOT / d).rglob("*.py") if p != OWNER)


@pytest.mark.parametrize("needle", ["-standby", "-hl", "-ro"])
def test_no_other_module_spells_the_name_rules(needle: str) -> None:
    assert [hit for path in PYTHON for hit in _spelled(path, needle)] == []
    assert _spelled(OWNER, needle), "the check must find the rule where it lives"
