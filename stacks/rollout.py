"""Rollouts of the primary's StatefulSet: what the preview refuses, and what it can only warn about.

The primary's set has one pod and podManagementPolicy OrderedReady. When its template changes the
controller deletes pod 0, creates it from the new revision and waits for it to be ready. A pod that
never gets ready (an image whose major does not match the data, a tag that does not exist, requests
no node can fit, a crash at start) stops the rollout there, and reverting the config does not help:
the controller keeps waiting on the broken pod (kubernetes/kubernetes#67250; Kubernetes docs
"StatefulSets", Forced rollback). bin/recover-rollout deletes that pod once the fix is applied.

What the program knows in advance, it refuses: the image's major against the major this stack last
deployed, kept in the state by a protected marker (below). What it cannot know (the registry, the
nodes, the start), it says in a preview warning whenever the primary's pod template changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_random as random

from stacks.config import PROJECT, Settings

# A RandomId replaces itself when a keeper changes (terraform-provider-random internal/provider/resource_id.go:
# keepers RequiresReplaceIfValuesNotNull), and the engine refuses to replace a protected resource, in the
# preview too (pulumi pkg/resource/deploy/step_generator.go:1957-1970 "unable to replace resource ... marked for
# protection"). Setting protect false and changing the major in one `up` is allowed (the check needs old and
# new protect both true), which is the deliberate way through.
MAJOR_KEEPER = "postgresMajor"
ENGINE_KEEPER = "engine"
TEMPLATE_KEEPER = "podTemplateSha256"


def data_major_marker(settings: Settings) -> random.RandomId:
    """The PostgreSQL major this stack deployed last, protected like the data it describes."""
    return random.RandomId(
        f"{settings.postgres.name}-data-major",
        byte_length=4,
        keepers={MAJOR_KEEPER: str(settings.postgres.image.major)},
        opts=pulumi.ResourceOptions(protect=settings.protect),
    )


def engine_marker(settings: Settings) -> random.RandomId:
    """The engine this stack runs (postgres.engine), protected like the data: switching a protected stack in place
    would delete the StatefulSets or the Cluster with the data's claims, so its replacement is refused in the
    preview, before anything else changes (the same mechanism as data_major_marker)."""
    return random.RandomId(
        "database-engine",
        byte_length=4,
        keepers={ENGINE_KEEPER: settings.postgres.engine},
        opts=pulumi.ResourceOptions(protect=settings.protect),
    )


def engine_warning(settings: Settings) -> str:
    pg = settings.postgres
    refusal = (
        "this stack is protected, so the preview fails on the protected database-engine"
        if settings.protect
        else "this stack is not protected, so `pulumi up` deletes the other engine's objects, and the data's claims "
        "are left to the new engine to find (or not)"
    )
    return (
        f"{PROJECT}:postgres.engine {pg.engine} is not the engine this stack last deployed (or this is its first deploy). "
        f"An engine is never switched in place, and {refusal}. Keep the old engine here and move the data to a new "
        "stack (docs/operations.md#move-to-cloudnative-pg)"
    )


def _data(value: Any, outputs: list[pulumi.Output[Any]]) -> Any:
    """A pod template as plain data, each Output inside replaced by its index in ``outputs`` (collected here):
    one walk over the Args objects (their fields are their __dict__) instead of an Output per node."""
    if isinstance(value, pulumi.Output):
        outputs.append(value)
        return {"output": len(outputs) - 1}
    if isinstance(value, dict):
        return {str(k): _data(v, outputs) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_data(v, outputs) for v in value]
    if hasattr(value, "__dict__"):
        return {type(value).__name__: _data(vars(value), outputs)}
    return value


def template_fingerprint(shape: Any, resolved: Sequence[Any]) -> str:
    """sha256 of a pod template's plain data (keys sorted, from _data) with its Outputs' values: equal
    templates, equal fingerprints."""
    return hashlib.sha256(json.dumps([shape, list(resolved)], sort_keys=True, default=str).encode()).hexdigest()


def primary_template_marker(name: str, template: Any) -> random.RandomId:
    """Replaced whenever the primary's pod template changes; never protected (it guards nothing)."""
    outputs: list[pulumi.Output[Any]] = []
    shape = _data(template, outputs)
    fingerprint = pulumi.Output.all(*outputs).apply(lambda values: template_fingerprint(shape, values))
    return random.RandomId(f"{name}-primary-template", byte_length=4, keepers={TEMPLATE_KEEPER: fingerprint})


def major_warning(settings: Settings) -> str:
    pg = settings.postgres
    refusal = (
        f"this stack is protected, so the preview fails on the protected {pg.name}-data-major"
        if settings.protect
        else "this stack is not protected, so `pulumi up` rolls the primary onto that data and it stops"
    )
    return (
        f"{PROJECT}:postgres.image.tag {pg.image.tag}: PostgreSQL {pg.image.major} is not the major this stack last "
        f"deployed (or this is its first deploy). If its volumes hold data of another major, init.sh refuses to start "
        f"on them, and {refusal}. Keep the old tag, and move the data by dump and restore "
        "(docs/operations.md#upgrade-major)"
    )


def template_warning(name: str, stack: str) -> str:
    return (
        f"the pod template of {name}-0, the primary, changes (or is new): `pulumi up` replaces the pod. The preview "
        "cannot know whether the new pod starts: a tag or digest the registry does not have, requests no node can "
        "fit, or a crash at start leave it never ready, the StatefulSet waits on it (OrderedReady), and reverting the "
        f"config alone does not replace it. Then revert, `pulumi up`, and run bin/recover-rollout {stack} "
        "(docs/operations.md#recover-a-stuck-rollout)"
    )


def warn_when_replaced(marker: random.RandomId, message: str) -> None:
    """In a preview, a marker the engine will (re)create has an unknown id; one it keeps has its old id."""

    def warn(known: bool) -> None:
        if pulumi.runtime.is_dry_run() and not known:
            pulumi.log.warn(message, resource=marker)

    known: pulumi.Output[bool] = pulumi.Output.from_input(marker.hex.is_known())
    known.apply(warn)
