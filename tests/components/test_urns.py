"""URN guard: refactoring the components never changes a resource's URN.

A URN is the resource's identity in the state: a new name, type or parent means Pulumi
deletes the old resource and creates a new one (a RandomPassword under a new parent is a
new password for every role; a claim patch or a StatefulSet under a new URN is a delete).
Every case must still register exactly the URNs in tests/fixtures/urns/<case>.txt, no more, no fewer.

The cases are the tests' own fixed configurations, never the user's stack files: dev, prod and
staging are tests/fixtures/urns/configs/<stack>.yaml (the stack files as the URNs were captured), each
variant one of them plus overrides; Pulumi.yaml's defaults come from the live file (they are the
program's). Editing or adding a Pulumi.<stack>.yaml never trips the guard.

Regenerate only for an intended change of identity (with aliases in the code, so live stacks keep
their resources):
    .venv/bin/python -m tests.components.test_urns
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXED_CONFIGS, fixed_config, program_run
from tests.stacks.test_backups import DUMP_S3, TARGET

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "urns"
PROJECT = "pgstack"
REGENERATE = (
    "a renamed or re-parented resource is deleted and re-created by the next `pulumi up` (its data, or its "
    "password, with it). If the change of identity is intended, add aliases for it (README, components) and "
    "regenerate the fixtures: .venv/bin/python -m tests.components.test_urns"
)

# case -> (fixed configuration, overrides merged into its config (a key ending in "!" replaces), secret config)
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
    # Generated TLS: PostgresTls and its children under PostgresStatefulSet, every other URN as in prod.
    "prod-tls": ("prod", {"tls": {"enabled": True, "required": True}}, {}),
}


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


def cases() -> list[str]:
    return [*sorted(p.stem for p in FIXED_CONFIGS.glob("*.yaml")), *VARIANTS]


CAPTURED = sorted(p.stem for p in FIXTURES.glob("*.txt"))


def urns(case: str) -> list[str]:
    """The sorted URNs the whole program registers for a case (duplicates kept)."""
    stack, overrides, secrets = VARIANTS.get(case, (case, {}, {}))
    config = fixed_config(stack)
    for key, value in (overrides | secrets).items():
        full = f"{PROJECT}:{key.removesuffix('!')}"
        config[full] = copy.deepcopy(value) if key.endswith("!") else _merge(config.get(full), value)
    run = program_run(config, stack, [f"{PROJECT}:{k}" for k in secrets])
    return sorted(r.urn for r in run.resources)


@pytest.mark.parametrize("case", CAPTURED)
def test_urns_match_the_fixture(case: str) -> None:
    expected = (FIXTURES / f"{case}.txt").read_text().splitlines()
    got = urns(case)
    assert len(got) == len(set(got)), f"duplicate URNs: {sorted({u for u in got if got.count(u) > 1})}"
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    assert not missing and not extra, f"URNs changed for {case}:\n  gone: {missing}\n  new:  {extra}\n{REGENERATE}"
    assert got == expected, f"URNs of {case} in another order or count\n{REGENERATE}"


def test_every_fixture_has_a_case_and_every_case_a_fixture() -> None:
    assert set(CAPTURED) == set(cases()), "a fixture without its case, or a case without its fixture"
    assert {"dev", "prod", "staging"} <= set(CAPTURED)


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in cases():
        (FIXTURES / f"{name}.txt").write_text("".join(f"{u}\n" for u in urns(name)))
        print(name)
