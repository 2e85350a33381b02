"""The primary's rollouts (stacks/rollout.py): a major change is refused in the preview of a protected stack,
and every change of the primary's pod template warns that a pod that never gets ready needs bin/recover-rollout.

The refusal is the engine's: a RandomId whose keepers change is replaced (terraform-provider-random
resource_id.go, keepers RequiresReplaceIfValuesNotNull) and a protected resource is never replaced
(pulumi step_generator.go:1957). These tests pin what the program sends for that: the keepers, protect,
and the StatefulSets' dependency on the marker (so `up` stops before any pod rolls).
"""

from __future__ import annotations

import logging
import runpy
import sys
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from stacks.rollout import ENGINE_KEEPER, MAJOR_KEEPER, TEMPLATE_KEEPER
from tests.conftest import fixed_config, fixed_settings, program_run
from tests.stacks.test_database_cnpg import CLUSTER, cnpg_run
from tools.mock_run import RecordingMocks, RecordingMonitor, Registered, Run, plain, run_program
from tools.stack_files import ROOT, as_pulumi_config

RANDOM_ID = "random:index/randomId:RandomId"
STS = "kubernetes:apps/v1:StatefulSet"
SEED = "7"


def _run(stack: str, **postgres: Any) -> Run:
    config = fixed_config(stack)  # the tests' own dev and prod: a user's may differ
    if postgres:
        config |= {"pgstack:postgres": {**config["pgstack:postgres"], **postgres}}
    return run_program(config, stack=stack, run=Run(seed=SEED))


def _image(tag: str) -> dict[str, Any]:
    return {"image": {"repository": "docker.io/library/postgres", "tag": tag, "digest": None, "pullPolicy": "IfNotPresent"}}


def _marker(run: Run, name: str) -> Registered:
    return run.one(RANDOM_ID, name)


# ids without the stack names: these are not per-stack tests (tests/stacks/test_new_stacks.py reads "[dev]" as one)
@pytest.mark.parametrize("stack", ["prod", "dev"], ids=["protected", "unprotected"])
def test_a_major_change_replaces_the_data_major_marker_which_is_protected_with_the_stack(stack: str) -> None:
    protected = fixed_settings(stack).protect
    now, other_major, minor = _run(stack, **_image("18.1")), _run(stack, **_image("17.6")), _run(stack, **_image("18.6"))
    marker = _marker(now, "postgres-data-major")
    assert plain(marker.inputs) == {"keepers": {MAJOR_KEEPER: "18"}, "byteLength": 4}
    assert marker.options.protect is protected
    assert not marker.options.delete_before_replace  # create-before-delete: no dependent replacement
    # A major change changes the keeper (replace: refused when protected); a minor change keeps it.
    assert plain(_marker(other_major, "postgres-data-major").inputs)["keepers"] == {MAJOR_KEEPER: "17"}
    assert plain(_marker(minor, "postgres-data-major").inputs) == plain(marker.inputs)


def test_the_statefulsets_wait_for_the_data_major_marker() -> None:
    """In `up` (--skip-preview too) the engine stops at the refused marker before it updates a StatefulSet."""
    run = _run("prod")
    marker = _marker(run, "postgres-data-major")
    for sts in run.of_type(STS):
        assert marker.urn in sts.dependencies, sts.name
    assert not [r for r in run.resources if marker.urn in [u for us in r.property_dependencies.values() for u in us]]


def test_the_primary_template_marker_follows_the_primary_pod_template_only() -> None:
    base = _run("prod")
    fingerprint = plain(_marker(base, "postgres-primary-template").inputs)["keepers"][TEMPLATE_KEEPER]
    assert len(fingerprint) == 64
    assert _marker(base, "postgres-primary-template").options.protect is False

    def of(run: Run) -> str:
        return str(plain(_marker(run, "postgres-primary-template").inputs)["keepers"][TEMPLATE_KEEPER])

    assert of(_run("prod")) == fingerprint  # same config, same passwords: same template
    assert of(_run("prod", **_image("18.6"))) != fingerprint
    assert of(_run("prod", resources={"requests": {"cpu": "2"}, "limits": {"cpu": "4"}})) != fingerprint


# ------------------------------------------------------------------ preview warnings


class _PreviewMocks(RecordingMocks):
    """A preview in which the named RandomIds are (re)created: the engine gives their outputs as unknown."""

    def __init__(self, run: Run, replaced: set[str]) -> None:
        super().__init__(run)
        self.replaced = replaced

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name, state = super().new_resource(args)
        if args.typ == RANDOM_ID and args.name in self.replaced:
            state |= {"hex": rpc.UNKNOWN}
        elif args.typ == RANDOM_ID:
            state |= {"hex": "0a1b2c3d"}
        return name, state


def _preview(stack: str, replaced: set[str], caplog: pytest.LogCaptureFixture) -> list[str]:
    run = Run(seed=SEED)
    m = _PreviewMocks(run, replaced)
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(m, project="pgstack", stack=stack, preview=True, monitor=RecordingMonitor(m, run))
    pulumi.runtime.set_all_config(as_pulumi_config(fixed_config(stack)), secret_keys=[])
    sys.path.insert(0, str(ROOT))
    caplog.clear()
    try:
        with caplog.at_level(logging.WARNING):
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
    finally:
        sys.path.remove(str(ROOT))
    return [r.getMessage() for r in caplog.records if "pod template" in r.getMessage() or "major" in r.getMessage()]


def test_a_preview_warns_when_the_primary_template_changes_and_only_then(caplog: pytest.LogCaptureFixture) -> None:
    assert _preview("prod", set(), caplog) == []
    [warning] = _preview("prod", {"postgres-primary-template"}, caplog)
    assert "the pod template of postgres-0, the primary, changes" in warning
    assert "bin/recover-rollout prod" in warning and "docs/operations.md#recover-a-stuck-rollout" in warning


@pytest.mark.parametrize(
    ("stack", "says"),
    [("prod", "preview fails on the protected postgres-data-major"), ("dev", "not protected")],
    ids=["protected", "unprotected"],
)
def test_a_preview_warns_when_the_major_is_new_to_the_stack(stack: str, says: str, caplog: pytest.LogCaptureFixture) -> None:
    [warning] = _preview(stack, {"postgres-data-major"}, caplog)
    assert "pgstack:postgres.image.tag" in warning and "is not the major this stack last deployed" in warning
    assert says in warning and "docs/operations.md#upgrade-major" in warning


# ------------------------------------------------------------------ the engine


def test_the_engine_marker_is_protected_with_the_stack_and_awaited_by_either_engine() -> None:
    """Switching postgres.engine changes the keeper: the protected marker's replacement is refused in the preview,
    before the other engine's objects are created or deleted (tests/stacks/test_database_cnpg.py runs the engine)."""
    sts, cluster = program_run(fixed_config("prod"), "prod"), cnpg_run("prod")
    for run, engine, workloads in ((sts, "statefulset", sts.of_type(STS)), (cluster, "cloudnative-pg", cluster.of_type(CLUSTER))):
        marker = _marker(run, "database-engine")
        assert plain(marker.inputs) == {"keepers": {ENGINE_KEEPER: engine}, "byteLength": 4}
        assert marker.options.protect is True and not marker.options.delete_before_replace
        assert workloads
        for workload in workloads:
            assert marker.urn in workload.dependencies, workload.name
    assert "database-engine" not in {r.name for r in program_run(fixed_config("dev"), "dev").resources if r.options.protect}


def test_a_preview_warns_when_the_engine_is_new_to_the_stack(caplog: pytest.LogCaptureFixture) -> None:
    _preview("prod", {"database-engine"}, caplog)
    [warning] = [r.getMessage() for r in caplog.records if "postgres.engine" in r.getMessage()]
    assert "pgstack:postgres.engine statefulset is not the engine this stack last deployed" in warning
    assert "preview fails on the protected database-engine" in warning and "docs/operations.md#move-to-cloudnative-pg" in warning
