"""Several stacks on one cluster: dev installs Longhorn, staging shares it (README "Several stacks on one cluster")."""

from __future__ import annotations

from collections import Counter

from stacks.mock_run import Run, run_program, stack_config
from stacks.render import helm_releases, kubernetes_objects
from tests.conftest import settings_of

# The documented layout: these stacks run on one cluster.
SHARED_CLUSTER = ("dev", "staging")


def identities(run: Run) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of everything a stack creates in the cluster, Helm releases included."""
    out = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in kubernetes_objects(run)]
    out += [("HelmRelease", r["namespace"], r["name"]) for r in helm_releases(run)]
    return out


def collisions(*stacks: str) -> list[tuple[str, str, str]]:
    seen: Counter[tuple[str, str, str]] = Counter()
    for stack in stacks:
        seen.update(set(identities(run_program(stack_config(stack), stack=stack))))
    return sorted(k for k, n in seen.items() if n > 1)


def test_documented_layout_has_no_colliding_object() -> None:
    assert collisions(*SHARED_CLUSTER) == []
    # Exactly one stack owns Longhorn; the others bring their own StorageClass.
    assert [s for s in SHARED_CLUSTER if settings_of(s).longhorn.install] == ["dev"]
    classes = {settings_of(s).storage_class for s in SHARED_CLUSTER}
    assert len(classes) == len(SHARED_CLUSTER)


def test_the_check_finds_collisions() -> None:
    # dev and prod each install Longhorn and use the default class: they belong on separate clusters.
    found = collisions("dev", "prod")
    assert ("Namespace", "", "longhorn-system") in found
    assert ("StorageClass", "", "longhorn-postgres") in found
    assert ("HelmRelease", "longhorn-system", "longhorn") in found
