"""URN guard: refactoring the components never changes a resource's URN.

A URN is the resource's identity in the state: a new name, type or parent means Pulumi
deletes the old resource and creates a new one (a RandomPassword under a new parent is a
new password for every role; a claim patch or a StatefulSet under a new URN is a delete).
The fixtures in tests/fixtures/urns/ were captured from the program before the component
split; every case must still register exactly those URNs, no more, no fewer.

Regenerate only for an intended change of identity (with aliases in the code):
    .venv/bin/python -m tests.components.test_urns
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from stacks.mock_run import run_program, stack_config, stacks
from tests.stacks.test_backups import DUMP_S3, TARGET

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "urns"
PROJECT = "pgstack"

# case -> (stack, overrides merged into the stack's config (a key ending in "!" replaces), secret config)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "dev-replicas-3": ("dev", {"postgres": {"replicas": 3}}, {}),
    "dev-replication-off-replicas-2": ("dev", {"postgres": {"replicas": 2, "replication": {"enabled": False}}}, {}),
    "dev-username-null": ("dev", {"postgres": {"username": None}}, {}),
    "dev-existing-class": ("dev", {"longhorn": {"install": False}, "storage!": {"existingClass": "csi-disk"}}, {}),
    "prod-backups-all": (
        "prod",
        {"backup": {"dumps": {"s3Remote": "pg-dumps/prod"}}},
        {"backupTarget": TARGET, "dumpS3": DUMP_S3},
    ),
    "prod-longhorn-install-false": ("prod", {"longhorn": {"install": False}, "storage": {"className": "longhorn-postgres-prod"}}, {}),
    "prod-network-policy-off": ("prod", {"postgres": {"networkPolicy": {"enabled": False}}}, {}),
}


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


def cases() -> list[str]:
    return [*stacks(), *VARIANTS]


# The guarded cases are the captured ones: a stack file added later has no earlier identity to keep.
CAPTURED = sorted(p.stem for p in FIXTURES.glob("*.txt"))


def urns(case: str) -> list[str]:
    """The sorted URNs the whole program registers for a case (duplicates kept)."""
    stack, overrides, secrets = VARIANTS.get(case, (case, {}, {}))
    config = stack_config(stack)
    for key, value in (overrides | secrets).items():
        full = f"{PROJECT}:{key.removesuffix('!')}"
        config[full] = copy.deepcopy(value) if key.endswith("!") else _merge(config.get(full), value)
    run = run_program(config, stack=stack, secret_keys=[f"{PROJECT}:{k}" for k in secrets])
    return sorted(r.urn for r in run.resources)


@pytest.mark.parametrize("case", CAPTURED)
def test_urns_match_the_fixture(case: str) -> None:
    expected = (FIXTURES / f"{case}.txt").read_text().splitlines()
    got = urns(case)
    assert len(got) == len(set(got)), f"duplicate URNs: {sorted({u for u in got if got.count(u) > 1})}"
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    assert not missing and not extra, f"URNs changed for {case}:\n  gone: {missing}\n  new:  {extra}"
    assert got == expected


def test_every_fixture_has_a_case_and_every_variant_a_fixture() -> None:
    assert set(CAPTURED) <= set(cases()), "a fixture whose stack file or variant is gone"
    assert set(VARIANTS) | {"dev", "prod", "staging"} <= set(CAPTURED)


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in cases():
        (FIXTURES / f"{name}.txt").write_text("".join(f"{u}\n" for u in urns(name)))
        print(name)
