"""The runbooks' program side (docs/operations.md#bring-a-destroyed-stack-back, the restores): what `pulumi destroy`
deletes on a protected stack, how retained objects are adopted, and how a restore holds the database.

Everything is read from the program's real registrations under mocks: options (protect, retain, import),
dependencies, and the inputs the provider receives.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from stacks.config import PROJECT, ConfigError, adoptable, parse_settings, uninstall_confirmation
from tests.conftest import CLAIM, STS, SVC, fixed_config, fixed_settings, program_run, run_with, settings_of
from tools.mock_run import Registered, Run, plain, run_program
from tools.stack_files import stack_config

GUARD = ("random:index/randomId:RandomId", "destroy-guard")
NAMESPACE = "kubernetes:core/v1:Namespace"
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
CRONJOB = "kubernetes:batch/v1:CronJob"

# ------------------------------------------------------------------ destroy


def _dependencies(r: Registered, known: set[str]) -> set[str]:
    """What the engine's delete scheduling counts as r's dependencies: its dependencies, property
    dependencies and parent (pulumi pkg/resource/graph/dependency_graph.go DependenciesOf)."""
    deps = set(r.dependencies) | {u for us in r.property_dependencies.values() for u in us} | {r.parent}
    return deps & known


def _transitive(urn: str, deps: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [urn]
    while todo:
        for d in deps[todo.pop()] - seen:
            seen.add(d)
            todo.append(d)
    return seen


def destroy(run: Run) -> tuple[set[str], set[str]]:
    """`pulumi destroy --skip-preview` as the engine runs it: (deleted, refused) URNs.

    pulumi pkg/resource/deploy/step_generator.go ScheduleDeletes: repeatedly take the condemned resources
    with no condemned dependency, then reverse the list of antichains (dependents first).
    deployment_executor.go (the antichain loop after GenerateDeletes): before each antichain, every
    transitive dependency of a failed step is skipped. step.go DeleteStep.Apply: a protected resource fails
    with deleteProtectedError before its provider is called; the others are deleted.
    """
    res = {r.urn: r for r in run.resources}
    deps = {u: _dependencies(r, set(res)) for u, r in res.items()}
    condemned, chains = set(res), []
    while condemned:
        chain = {u for u in condemned if not deps[u] & condemned}
        condemned -= chain
        chains.append(chain)
    deleted: set[str] = set()
    refused: set[str] = set()
    for chain in reversed(chains):
        skipped = set().union(*(_transitive(u, deps) for u in refused))
        for urn in chain - skipped:
            (refused if res[urn].options.protect else deleted).add(urn)
    return deleted, refused


def test_destroy_of_a_protected_stack_deletes_nothing(stack_run: Run, stack: str) -> None:
    deleted, refused = destroy(stack_run)
    guard = stack_run.one(*GUARD)
    if settings_of(stack).protect:
        assert deleted == set(), sorted(deleted)
        assert guard.urn in refused
    else:
        # dev: destroy works, every object of the stack goes (or is forgotten, where retained).
        assert refused == set() and deleted == {r.urn for r in stack_run.resources}


def test_the_guard_depends_on_every_object_and_drags_no_replacement(stack_run: Run, stack: str) -> None:
    guard = stack_run.one(*GUARD)
    assert guard.options.protect == settings_of(stack).protect
    assert guard.parent.endswith(f"::pulumi:pulumi:Stack::{PROJECT}-{stack}")
    objects = {r.urn for r in stack_run.resources if not r.type.startswith("pgstack:index:")} - {guard.urn}
    assert objects <= set(guard.dependencies)
    # A depends_on edge, no input from another resource: the engine never re-diffs it when a dependency
    # is replaced (step_generator.go calculateDependentReplacements), so a Service can still be replaced.
    assert not any(guard.property_dependencies.values())


# ------------------------------------------------------------------ adoption


def _import_ids(run: Run) -> dict[tuple[str, str], str]:
    return {(r.type, r.name): r.options.import_id for r in run.resources if r.options.import_id}


def test_nothing_is_adopted_unless_named(stack_run: Run) -> None:
    assert _import_ids(stack_run) == {}


BACKUP_TARGET = {"backupTarget": {"url": "s3://b@us-east-1/lh", "credentials": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}}}


def _run_secret(overrides: dict[str, Any], secrets: dict[str, Any], stack: str = "dev") -> Run:
    """A fixed configuration (tests/conftest.py fixed_config) with overrides and secret config."""
    config = fixed_config(stack) | {f"{PROJECT}:{k}": v for k, v in (overrides | secrets).items()}
    return program_run(config, stack, [f"{PROJECT}:{k}" for k in secrets])


def test_adopt_imports_exactly_the_named_objects() -> None:
    every = ["namespace/postgres", "namespace/longhorn-system", "release/longhorn-system/longhorn"]
    every.append("secret/longhorn-system/longhorn-backup-target")
    run = _run_secret({"adopt": every}, BACKUP_TARGET)
    assert _import_ids(run) == {
        (NAMESPACE, "database-ns"): "postgres",
        (NAMESPACE, "longhorn-ns"): "longhorn-system",
        (RELEASE, "longhorn-release"): "longhorn-system/longhorn",
        (SECRET, "longhorn-backup-target"): "longhorn-system/longhorn-backup-target",
    }
    # One entry adopts one object; the rest are created.
    assert _import_ids(run_with({f"{PROJECT}:adopt": ["namespace/longhorn-system"]})) == {(NAMESPACE, "longhorn-ns"): "longhorn-system"}


@pytest.mark.parametrize(
    ("adopt", "secrets", "message"),
    [
        (["namespace/postgress"], {}, r'pgstack:adopt: got "namespace/postgress"; expected one of the objects this stack creates: '),
        (["namespace/postgres", "namespace/postgres"], {}, r'pgstack:adopt: got "namespace/postgres"; expected each object once'),
        (["secret/longhorn-system/longhorn-backup-target"], {}, r"pgstack:adopt: .*expected it only with pgstack:backupTarget set"),
    ],
    ids=["a typo", "twice", "a Secret this stack does not create"],
)
def test_a_bad_adopt_entry_fails_before_anything_is_registered(adopt: list[str], secrets: dict[str, Any], message: str) -> None:
    run = Run()
    with pytest.raises(pulumi.RunError, match=message):
        run_program(fixed_config("dev") | {f"{PROJECT}:adopt": adopt}, stack="dev", run=run)
    assert run.resources == []


def test_a_stack_without_longhorn_adopts_only_its_namespace() -> None:
    run = Run()
    with pytest.raises(pulumi.RunError, match=r"expected one of the objects this stack creates: namespace/postgres-staging \("):
        run_program(fixed_config("staging") | {f"{PROJECT}:adopt": ["namespace/longhorn-system"]}, stack="staging", run=run)
    assert run.resources == []


# ------------------------------------------------------------------ holding the database for a restore


def test_hold_runs_no_pod_and_applies_no_claim(stack: str) -> None:
    normal = program_run(stack_config(stack), stack)
    held = program_run(stack_config(stack) | {f"{PROJECT}:holdDatabase": True}, stack)
    assert normal.of_type(CLAIM) and not held.of_type(CLAIM)
    assert [plain(s.inputs["spec"]["replicas"]) for s in held.of_type(STS)] == [0] * len(normal.of_type(STS))
    name = settings_of(stack).postgres.name
    # No pod behind the read-write Service: `pulumi up` must not wait for its endpoint.
    rw = held.one(SVC, name)
    assert rw.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert normal.one(SVC, name).inputs["metadata"].get("annotations") is None
    assert not held.of_type(CRONJOB)
    # Everything else stays as it is: the namespace, storage, Secret, passwords and StatefulSets keep their URNs.
    # (The dump job goes with all its children: its volume's claim, policy and S3 Secret.)
    kept = {r.urn for r in normal.resources} - {r.urn for r in held.resources}
    assert {r.type for r in normal.resources if r.urn in kept and "pgstack:index:LogicalBackup" not in r.urn} <= {CLAIM}
    held_names = {(r.type, r.name) for r in held.resources}
    assert {(STS, name), (SECRET, f"{name}-credentials"), (NAMESPACE, "database-ns"), GUARD} <= held_names


def test_after_the_hold_the_claims_are_applied_not_created() -> None:
    # PersistentVolumeClaimPatch is server-side apply (pulumi-kubernetes provider/pkg/await/await.go Creation:
    # Patch resources always apply), so the claim bound to the restored volume is taken over as it is.
    run = run_with({})
    assert {c.inputs["metadata"]["name"] for c in run.of_type(CLAIM)} == {"data-postgres-0"}


# ------------------------------------------------------------------ arming Longhorn's uninstall


def _armed(confirmation: str | None) -> dict[str, Any]:
    longhorn = dict(fixed_config("dev")[f"{PROJECT}:longhorn"], deleteAllVolumesOnUninstall=True, uninstallConfirmation=confirmation)
    return {f"{PROJECT}:longhorn": longhorn}


@pytest.mark.parametrize(
    "confirmation",
    [None, "yes", uninstall_confirmation("staging", "longhorn-system"), uninstall_confirmation("dev", "longhorn-system").lower()],
    ids=["missing", "a yes", "another stack's", "a typo"],
)
def test_an_armed_uninstall_without_this_stacks_confirmation_fails_first(confirmation: str | None) -> None:
    run = Run()
    expected = uninstall_confirmation("dev", "longhorn-system")
    with pytest.raises(pulumi.RunError, match=r"pgstack:longhorn\.uninstallConfirmation: got ") as caught:
        run_program(fixed_config("dev") | _armed(confirmation), stack="dev", run=run)
    assert f'exactly "{expected}"' in str(caught.value)
    assert run.resources == []


def test_a_confirmed_uninstall_is_armed_and_recorded_on_the_release() -> None:
    confirmed = uninstall_confirmation("dev", "longhorn-system")
    assert confirmed == "dev: no other stack uses longhorn-system/longhorn; delete every Longhorn volume in this cluster"
    run = program_run(fixed_config("dev") | _armed(confirmed), "dev")
    release = plain(run.one(RELEASE, "longhorn-release").inputs)
    assert release["values"]["defaultSettings"]["deletingConfirmationFlag"] == "true"
    assert release["description"] == confirmed
    assert "description" not in plain(run_with({}).one(RELEASE, "longhorn-release").inputs)


# ------------------------------------------------------------------ the backup target's Secret


# The committed Longhorn-installing stacks, by what they show (ids that are not stack names: a per-stack test
# runs for every stack file, tests/stacks/test_new_stacks.py, and a new stack may not install Longhorn).
@pytest.mark.parametrize("stack", ["dev", "prod"], ids=["unprotected", "protected"])
def test_the_backup_target_secret_is_kept_like_the_release(stack: str) -> None:
    """Without it every Longhorn backup fails, silently: protected where the stack protects, and retained on
    delete like the release that reads it (an unarmed destroy leaves Longhorn running with its target)."""
    run = _run_secret({}, BACKUP_TARGET, stack=stack)
    secret, release = run.one(SECRET, "longhorn-backup-target"), run.one(RELEASE, "longhorn-release")
    assert secret.options.protect == fixed_settings(stack).protect == release.options.protect
    assert secret.options.retain_on_delete and release.options.retain_on_delete
    deleted, _ = destroy(run)
    if fixed_settings(stack).protect:
        assert secret.urn not in deleted
    # Armed, the uninstall takes Longhorn and the Secret goes with the release.
    armed = _run_secret(_armed_overrides(stack), BACKUP_TARGET, stack=stack)
    assert not armed.one(SECRET, "longhorn-backup-target").options.retain_on_delete


def _armed_overrides(stack: str) -> dict[str, Any]:
    longhorn = dict(fixed_config(stack)[f"{PROJECT}:longhorn"], deleteAllVolumesOnUninstall=True)
    longhorn["uninstallConfirmation"] = uninstall_confirmation(stack, "longhorn-system")
    return {"longhorn": longhorn, "protect": False}


def test_what_a_destroy_leaves_behind_is_exactly_what_adopt_takes_back() -> None:
    """A destroyed stack comes back with `pulumi up`: every object its destroy retains, and that a re-up would
    create with Create (not a server-side-apply Patch resource, which upserts), can be named in adopt."""
    run = _run_secret({}, BACKUP_TARGET)
    deleted, refused = destroy(run)
    assert refused == set()
    retained = {
        (r.type, r.name)
        for r in run.resources
        if r.urn in deleted and r.options.retain_on_delete and not r.type.endswith("Patch") and r.type.startswith("kubernetes:")
    }
    assert retained == {(NAMESPACE, "longhorn-ns"), (RELEASE, "longhorn-release"), (SECRET, "longhorn-backup-target")}
    entries = [e for e in adoptable(fixed_settings("dev")) if e != "namespace/postgres"]
    again = _run_secret({"adopt": entries}, BACKUP_TARGET)
    assert set(_import_ids(again)) == retained


def test_settings_read_outside_a_run_still_need_a_confirmation_of_this_release() -> None:
    """tools/verify.py reads settings without a Pulumi run (no stack name): the sentence's form and release count."""
    armed = {"deleteAllVolumesOnUninstall": True}
    assert parse_settings({"longhorn": armed | {"uninstallConfirmation": uninstall_confirmation("qa", "longhorn-system")}})
    for wrong in (None, "yes", uninstall_confirmation("qa", "lh-other")):
        with pytest.raises(ConfigError, match=r"pgstack:longhorn\.uninstallConfirmation: got "):
            parse_settings({"longhorn": armed | {"uninstallConfirmation": wrong}})
