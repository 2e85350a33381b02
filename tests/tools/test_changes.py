"""Config changes on a live stack, table-driven: what each does to every stateful object.

The same table is README "Changing a live stack". Effects come from tools/changes.py,
which encodes pulumi-kubernetes' replace rules and Kubernetes' claim rules; the mock runs
provide the real before and after objects.
"""

from __future__ import annotations

import copy
import functools
import shutil
from pathlib import Path
from typing import Any

import pytest

from components import postgres_pod
from tests.conftest import STACKS, fixed_config, settings_of
from tools.changes import (
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
    deleted_before_replaced,
    dependent_replacements,
    effect,
)
from tools.mock_run import Options, Registered, Run, fake_password, run_program
from tools.stack_files import stack_config


def _merge(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        return {k: _merge(base.get(k), v) for k, v in change.items()} | {k: v for k, v in base.items() if k not in change}
    return change


def _run(stack: str, change: dict[str, Any], run: Run | None = None, fixed: bool = False) -> Run:
    """The stack's config (or with fixed, the tests' own configuration of that name) with a change."""
    config = copy.deepcopy(fixed_config(stack) if fixed else stack_config(stack))
    for key, value in change.items():
        full = key if ":" in key else f"pgstack:{key}"
        config[full] = _merge(config.get(full) or {}, value) if isinstance(value, dict) else value
    return run_program(config, stack=stack, run=run or Run(seed="same passwords for the same inputs"))


@functools.cache
def _base(stack: str, fixed: bool = False) -> Run:
    """The stack as committed (with fixed, the tests' own configuration), run once per stack and worker: the
    "before" of every row (never mutated: classify only reads; a changed "after" is always a fresh _run)."""
    return _run(stack, {}, fixed=fixed)


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
    # The protected marker refuses the preview (stacks/rollout.py); unprotected, the pods roll and init.sh
    # refuses the other major's data.
    (
        "prod",
        "image major",
        {"postgres": {"image": {"tag": "17.6", "digest": None}}},
        BOTH_SETS | {"RandomId postgres-data-major": REFUSED_PROTECT},
    ),
    ("dev", "image major", {"postgres": {"image": {"tag": "17.6", "digest": None}}}, BOTH_SETS),
    (
        "prod",
        "resources",
        {"postgres": {"resources": {"requests": {"memory": "8Gi"}, "limits": {"memory": "8Gi"}}}},
        BOTH_SETS,
    ),
    # New passwords (create-before-delete), the Secret updated in place (enableSecretMutable), pods roll.
    (
        "prod",
        "password rotation",
        {"postgres": {"passwordRotation": 2}},
        BOTH_SETS | {"Secret postgres-credentials": IN_PLACE} | dict.fromkeys(PASSWORDS, REPLACED),
    ),
    (
        "dev",
        "password rotation",
        {"postgres": {"passwordRotation": 2}},
        BOTH_SETS | {"Secret postgres-credentials": IN_PLACE} | dict.fromkeys(PASSWORDS, REPLACED),
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
            "RandomId postgres-data-major": REFUSED_PROTECT,
            "RandomId pg-data-major": CREATED,
        }
        | dict.fromkeys(PASSWORDS, DELETED)
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
    assert classify(_base(stack, fixed=True), _run(stack, change, fixed=True)) == expected


def test_unchanged_config_changes_nothing_and_a_plain_delete_is_a_delete() -> None:
    base = _base("dev", fixed=True)
    assert classify(base, _run("dev", {}, fixed=True)) == {}
    gone = classify(base, _run("dev", {"postgres": {"name": "pg"}}, fixed=True))
    # Without protect the old objects go (the claim stays: retain_on_delete).
    assert gone["StatefulSet postgres"] == DELETED and gone[f"{PVC}0"] == FORGOTTEN


def test_dev_volume_upgrade_from_1gi_expands_the_claim_in_place() -> None:
    """Pulumi.dev.yaml moved from 1Gi to 4Gi (README "Tests and benchmarks"): a dev stack deployed
    before gets its claim grown in place on the next up, and nothing else changes."""
    assert fixed_config("dev")["pgstack:postgres"]["storageSize"] == "4Gi"
    before = _run("dev", {"postgres": {"storageSize": "1Gi"}}, fixed=True)
    assert classify(before, _run("dev", {}, fixed=True)) == {f"{PVC}0": IN_PLACE}


def test_changed_paths() -> None:
    assert changed_paths({"a": {"b": 1, "c": [1]}}, {"a": {"b": 2, "c": [1]}, "d": 3}) == {"a.b", "d"}


# ---------------------------------------------------------------- upgrades and rotations


def _with_changed_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The next pgstack version: the program as it is, with one pod script's content changed."""
    scripts = tmp_path / "scripts"
    shutil.copytree(postgres_pod.SCRIPTS_DIR, scripts)
    init = scripts / "init.sh"
    init.write_text(init.read_text() + "\n# a later pgstack version\n")
    monkeypatch.setattr(postgres_pod, "SCRIPTS_DIR", scripts)


def _flag_off(run: Run, key: str) -> Run:
    """The provider as configured without one of Pulumi.yaml's flags (the program itself refuses a
    stack that turns one off: tests/stacks/test_config.py); the model reads the provider config from the run."""
    run.config = run.config | {key: False}
    return run


def _every_set_rolls(run: Run) -> dict[str, str]:
    return {f"StatefulSet {sts.name}": ROLLS for sts in run.of_type(STS_TYPE)}


@pytest.mark.parametrize("stack", STACKS)
def test_upgrade_pgstack_a_pod_script_changes(stack: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """README row "upgrade pgstack (a pod script changes)": the ConfigMap updates in place
    (enableConfigMapMutable) and every set rolls; nothing is replaced or refused, protected or not."""
    before = _base(stack)
    _with_changed_script(monkeypatch, tmp_path)
    after = _run(stack, {})
    cm = f"{settings_of(stack).postgres.name}-scripts"
    assert after.one(CM_TYPE, cm).inputs["data"] != before.one(CM_TYPE, cm).inputs["data"]
    assert classify(before, after) == _every_set_rolls(before)


def test_upgrade_pgstack_with_replace_only_configmaps_still_never_replaces_a_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Belt and braces: with the provider flag off, the ConfigMap is deleted and re-created, but no
    StatefulSet input property-depends on it (known names), so the engine drags none along."""
    before = _base("prod", fixed=True)
    _with_changed_script(monkeypatch, tmp_path)
    after = _flag_off(_run("prod", {}, fixed=True), "kubernetes:enableConfigMapMutable")
    assert classify(before, after) == BOTH_SETS


@pytest.mark.parametrize("stack", STACKS)
def test_replace_one_password(stack: str) -> None:
    """README row "`pulumi up --replace <password>`": a new superuser password, the Secret updated
    in place, the pods roll; the RandomPassword itself is not protected (the Secret is)."""
    name = settings_of(stack).postgres.name
    base = _base(stack)
    urn = base.one(PASSWORD_TYPE, f"{name}-superuser-password").urn

    def new_superuser(inputs: dict[str, Any], password: str) -> str:
        fresh = "a freshly generated superuser password" if password == f"{name}-superuser-password" else ""
        return fresh or fake_password(inputs, "same passwords for the same inputs", password)

    after = _run(stack, {}, Run(password=new_superuser))
    expected = _every_set_rolls(base) | {f"Secret {name}-credentials": IN_PLACE, f"RandomPassword {name}-superuser-password": REPLACED}
    assert classify(base, after, replace=(urn,)) == expected


def test_replace_only_secret_makes_rotation_refused_on_protected_stacks() -> None:
    """The model follows the provider flag: without enableSecretMutable the Secret's content is
    replace-only, so a rotation is refused on a protected stack (what the flag fixes)."""
    after = _flag_off(_run("prod", {"postgres": {"passwordRotation": 2}}, fixed=True), "kubernetes:enableSecretMutable")
    effects = classify(_base("prod", fixed=True), after)
    assert effects["Secret postgres-credentials"] == REFUSED_PROTECT


# ---------------------------------------------------------------- the engine's dependent replacement


def _reg(name: str, type_: str, deps: dict[str, list[str]] | None = None, protect: bool = False, **inputs: Any) -> Registered:
    meta = {"name": name, "namespace": "db"}
    return Registered(
        type=type_,
        name=name,
        urn=f"urn:{name}",
        inputs={"metadata": meta} | inputs,
        dependencies=[],
        parent="",
        property_dependencies=deps or {},
        options=Options(protect=protect),
    )


STS_TYPE, CM_TYPE, PASSWORD_TYPE = (
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:core/v1:ConfigMap",
    "random:index/randomPassword:RandomPassword",
)


def test_dependent_replacement_follows_property_dependencies_only() -> None:
    """step_generator.go calculateDependentReplacements: a dependent whose `spec` property-depends on the
    delete-before-replace root is re-diffed with `spec` unknown (StatefulSet spec.selector/serviceName are
    forceNew, so it goes, and so does what property-depends on it); a `depends_on` edge, or an unknown
    input with no forceNew path under it, drags nothing."""
    root = _reg("cm", CM_TYPE, data={"a": "1"})
    via_spec = _reg("sts", STS_TYPE, {"spec": ["urn:cm"]}, spec={})
    via_sts = _reg("sts2", STS_TYPE, {"spec": ["urn:sts"]}, spec={})
    plain_dep = _reg("sts3", STS_TYPE, spec={})
    plain_dep.dependencies.append("urn:cm")
    annotations_only = _reg("svc", "kubernetes:core/v1:Service", {"spec": ["urn:cm"]}, spec={})
    before = Run(resources=[root, via_spec, via_sts, plain_dep, annotations_only])
    assert dependent_replacements(before, {"urn:cm"}, {}) == ["urn:sts", "urn:sts2"]
    assert deleted_before_replaced(root, root)
    renamed = _reg("cm2", CM_TYPE, data={"a": "1"})
    assert not deleted_before_replaced(root, renamed), "a new name is created before the old one goes"
    assert not deleted_before_replaced(_reg("pw", PASSWORD_TYPE), _reg("pw", PASSWORD_TYPE))


def test_a_protected_dependent_refuses_the_change() -> None:
    root_before, root_after = _reg("cm", CM_TYPE, data={"a": "1"}), _reg("cm", CM_TYPE, data={"a": "2"})
    sts = _reg("sts", STS_TYPE, {"spec": ["urn:cm"]}, protect=True, spec={})
    effects = classify(Run(resources=[root_before, sts]), Run(resources=[root_after, sts]))
    assert effects == {"StatefulSet sts": REFUSED_PROTECT}


@pytest.mark.parametrize("stack", STACKS)
def test_no_workload_property_depends_on_an_object_that_is_deleted_before_it_is_replaced(stack: str) -> None:
    """Over the program's real registrations (prod has the dump CronJob): the StatefulSets' and the
    CronJob's inputs property-depend on nothing Kubernetes would delete first on a replacement
    (every object here has a fixed name); only on the RandomPasswords (the pods' checksum), which
    pulumi-random replaces create-before-delete."""
    s3 = {"provider": "Minio", "accessKeyId": "dumpkey0001", "secretAccessKey": "dump-s3cr3t-key", "endpoint": "https://minio.example:9000"}
    config = copy.deepcopy(stack_config(stack))
    config["pgstack:backup"] = _merge(config.get("pgstack:backup") or {}, {"dumps": {"s3Remote": "bucket/prefix"}})
    run = run_program(config | {"pgstack:dumpS3": s3}, stack=stack, secret_keys=["pgstack:dumpS3"])
    by_urn = {r.urn: r for r in run.resources}
    workloads = [*run.of_type(STS_TYPE), *run.of_type("kubernetes:batch/v1:CronJob")]
    # The dump CronJob, and the base-backup CronJob where the stack archives WAL (with the same S3 account).
    archives = run.of_type("pgstack:index:WalBaseBackup") != []
    assert len(workloads) == len(run.of_type(STS_TYPE)) + 1 + archives >= 2
    for workload in workloads:
        sources = {by_urn[u].type for deps in workload.property_dependencies.values() for u in deps}
        assert sources <= {PASSWORD_TYPE}, (workload.name, sources)
        assert all(not deleted_before_replaced(by_urn[u], by_urn[u]) for deps in workload.property_dependencies.values() for u in deps)


def test_policy_v1_pdb_spec_updates_in_place() -> None:
    """diff.go lists `.spec` as forceNew for policy/v1beta1 PodDisruptionBudgets only; ours is policy/v1."""
    pdb = _base("dev", fixed=True).one("kubernetes:policy/v1:PodDisruptionBudget", "postgres-pdb")
    changed = copy.deepcopy(pdb)
    changed.inputs["spec"]["maxUnavailable"] = 2.0
    assert effect(pdb, changed) == IN_PLACE
