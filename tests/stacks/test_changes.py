"""Config changes on a live stack, table-driven: what each does to every stateful object.

The same table is README "Changing a live stack". Effects come from stacks/changes.py,
which encodes pulumi-kubernetes' replace rules and Kubernetes' claim rules; the mock runs
provide the real before and after objects.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks.changes import (
    CREATED,
    DELETED,
    FORGOTTEN,
    IN_PLACE,
    NEW_CLAIM,
    REFUSED_K8S,
    REFUSED_PROTECT,
    REPLACED,
    ROLLS,
    changed_paths,
    classify,
)
from stacks.mock_run import Run, run_program, stack_config


def _merge(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        return {k: _merge(base.get(k), v) for k, v in change.items()} | {k: v for k, v in base.items() if k not in change}
    return change


def _run(stack: str, change: dict[str, Any]) -> Run:
    config = copy.deepcopy(stack_config(stack))
    for key, value in change.items():
        config[f"pgstack:{key}"] = _merge(config.get(f"pgstack:{key}") or {}, value) if isinstance(value, dict) else value
    return run_program(config, stack=stack, run=Run(seed="same passwords for the same inputs"))


PVC = "PersistentVolumeClaim postgres-data-postgres-"
PROD_CLAIMS = (f"{PVC}0", f"{PVC}standby-1", f"{PVC}standby-2")
DUMPS = "PersistentVolumeClaim dumps-claim"
BOTH_SETS = {"StatefulSet postgres": ROLLS, "StatefulSet postgres-standby": ROLLS}
PASSWORDS = (
    "RandomPassword postgres-app-password",
    "RandomPassword postgres-replication-password",
    "RandomPassword postgres-superuser-password",
)

# (stack, change, expected effect per stateful object; objects left out do not change)
TABLE: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
    ("prod", "storage size up", {"postgres": {"storageSize": "40Gi"}}, dict.fromkeys(PROD_CLAIMS, IN_PLACE)),
    ("prod", "storage size down", {"postgres": {"storageSize": "10Gi"}}, dict.fromkeys(PROD_CLAIMS, REFUSED_K8S)),
    ("prod", "class parameters", {"storage": {"numberOfReplicas": 2}}, {"StorageClass longhorn-sc": REFUSED_PROTECT}),
    ("dev", "class parameters", {"storage": {"dataLocality": "disabled"}}, {"StorageClass longhorn-sc": REPLACED}),
    ("prod", "reclaim policy", {"storage": {"reclaimPolicy": "Delete"}}, {"StorageClass longhorn-sc": REFUSED_PROTECT}),
    ("dev", "reclaim policy", {"storage": {"reclaimPolicy": "Delete"}}, {"StorageClass longhorn-sc": REPLACED}),
    (
        "prod",
        "class name",
        {"storage": {"className": "longhorn-fast"}},
        {"StorageClass longhorn-sc": REFUSED_PROTECT} | dict.fromkeys((*PROD_CLAIMS, DUMPS), REFUSED_K8S),
    ),
    ("prod", "replicas up", {"postgres": {"replicas": 4}}, {"StatefulSet postgres-standby": IN_PLACE, f"{PVC}standby-3": CREATED}),
    ("prod", "replicas down", {"postgres": {"replicas": 2}}, {"StatefulSet postgres-standby": IN_PLACE, f"{PVC}standby-2": FORGOTTEN}),
    ("prod", "image minor", {"postgres": {"image": {"tag": "18.2", "digest": None}}}, BOTH_SETS),
    ("prod", "image major", {"postgres": {"image": {"tag": "17.6", "digest": None}}}, BOTH_SETS),
    (
        "prod",
        "resources",
        {"postgres": {"resources": {"requests": {"memory": "8Gi"}, "limits": {"memory": "8Gi"}}}},
        BOTH_SETS,
    ),
    (
        "prod",
        "password rotation",
        {"postgres": {"passwordRotation": 2}},
        BOTH_SETS | {"Secret postgres-credentials": REFUSED_PROTECT} | dict.fromkeys(PASSWORDS, REFUSED_PROTECT),
    ),
    (
        "dev",
        "password rotation",
        {"postgres": {"passwordRotation": 2}},
        BOTH_SETS | {"Secret postgres-credentials": REPLACED} | dict.fromkeys(PASSWORDS, REPLACED),
    ),
    ("prod", "service type", {"postgres": {"service": {"type": "NodePort"}}}, {}),
    (
        "prod",
        "namespace",
        {"namespace": "postgres-new"},
        {
            "Namespace database-ns": REFUSED_PROTECT,
            "Secret postgres-credentials": REFUSED_PROTECT,
            "StatefulSet postgres": REFUSED_PROTECT,
            "StatefulSet postgres-standby": REFUSED_PROTECT,
        }
        | dict.fromkeys((*PROD_CLAIMS, DUMPS), NEW_CLAIM),
    ),
    (
        "dev",
        "namespace",
        {"namespace": "postgres-new"},
        {
            "Namespace database-ns": REPLACED,
            "Secret postgres-credentials": REPLACED,
            "StatefulSet postgres": REPLACED,
            "StatefulSet postgres-standby": REPLACED,
            f"{PVC}0": NEW_CLAIM,
        },
    ),
    (
        "prod",
        "name",
        {"postgres": {"name": "pg"}},
        {
            "StatefulSet postgres": REFUSED_PROTECT,
            "StatefulSet postgres-standby": REFUSED_PROTECT,
            "Secret postgres-credentials": REFUSED_PROTECT,
            "StatefulSet pg": CREATED,
            "StatefulSet pg-standby": CREATED,
            "Secret pg-credentials": CREATED,
        }
        | dict.fromkeys(PASSWORDS, REFUSED_PROTECT)
        | dict.fromkeys(PROD_CLAIMS, FORGOTTEN)
        | {f"PersistentVolumeClaim pg-data-pg-{p}": CREATED for p in ("0", "standby-1", "standby-2")}
        | {f"RandomPassword pg-{r}-password": CREATED for r in ("app", "replication", "superuser")}
        | {DUMPS: NEW_CLAIM},
    ),
    (
        "prod",
        "longhorn install off",
        {"longhorn": {"install": False}},
        {"Namespace longhorn-ns": REFUSED_PROTECT, "Release longhorn-release": REFUSED_PROTECT},
    ),
    (
        "dev",
        "longhorn install off",
        {"longhorn": {"install": False}},
        {"Namespace longhorn-ns": FORGOTTEN, "Release longhorn-release": FORGOTTEN},
    ),
    ("prod", "protect off", {"protect": False}, {}),
]


@pytest.mark.parametrize(("stack", "what", "change", "expected"), TABLE, ids=[f"{t[0]}: {t[1]}" for t in TABLE])
def test_config_change_effects(stack: str, what: str, change: dict[str, Any], expected: dict[str, str]) -> None:
    assert classify(_run(stack, {}), _run(stack, change)) == expected


def test_unchanged_config_changes_nothing_and_a_plain_delete_is_a_delete() -> None:
    base = _run("dev", {})
    assert classify(base, _run("dev", {})) == {}
    gone = classify(base, _run("dev", {"postgres": {"name": "pg"}}))
    # Without protect the old objects go (the claim stays: retain_on_delete).
    assert gone["StatefulSet postgres"] == DELETED and gone[f"{PVC}0"] == FORGOTTEN


def test_dev_volume_upgrade_from_1gi_expands_the_claim_in_place() -> None:
    """Pulumi.dev.yaml moved from 1Gi to 4Gi (README "Tests and benchmarks"): a dev stack deployed
    before gets its claim grown in place on the next up, and nothing else changes."""
    assert stack_config("dev")["pgstack:postgres"]["storageSize"] == "4Gi"
    before = _run("dev", {"postgres": {"storageSize": "1Gi"}})
    assert classify(before, _run("dev", {})) == {f"{PVC}0": IN_PLACE}


def test_changed_paths() -> None:
    assert changed_paths({"a": {"b": 1, "c": [1]}}, {"a": {"b": 2, "c": [1]}, "d": 3}) == {"a.b", "d"}
