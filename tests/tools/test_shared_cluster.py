"""Several stacks on one cluster: dev installs Longhorn, staging shares it (docs/operations.md#several-stacks-on-one-cluster),
and stack files that would collide on one cluster are refused or warned about (tools/collisions.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import FIXED_CONFIGS, STACKS, fixed_config, program_run, stack_file_problem
from tools.collisions import ClusterNames, clash, cluster_names, collisions
from tools.mock_run import Run
from tools.render import helm_releases, kubernetes_objects
from tools.stack_files import ROOT

# The documented layout, as the tests' own fixed configurations (the committed stack files as captured for the
# URN guard): these stacks run on one cluster. The user's stack files are checked by test_no_two_stack_files_collide.
SHARED_CLUSTER = ("dev", "staging")


def identities(run: Run) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of everything a stack creates in the cluster, Helm releases included."""
    out = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in kubernetes_objects(run)]
    out += [("HelmRelease", r["namespace"], r["name"]) for r in helm_releases(run)]
    return out


def object_collisions(*stacks: str) -> list[tuple[str, str, str]]:
    seen: Counter[tuple[str, str, str]] = Counter()
    for stack in stacks:
        seen.update(set(identities(program_run(fixed_config(stack), stack))))
    return sorted(k for k, n in seen.items() if n > 1)


def names(stack: str, context: str | None = None) -> ClusterNames:
    config = fixed_config(stack) | ({"kubernetes:context": context} if context else {})
    return cluster_names(stack, config)


def test_documented_layout_has_no_colliding_object() -> None:
    assert object_collisions(*SHARED_CLUSTER) == []
    dev, staging = names("dev", "lab"), names("staging", "lab")
    # Exactly one stack owns Longhorn; the other brings its own namespace and StorageClass.
    assert (dev.installs_longhorn, staging.installs_longhorn) == (True, False)
    assert clash(dev, staging) is None  # on one cluster too


def test_the_object_check_and_the_name_check_agree() -> None:
    # dev and prod each install Longhorn and use the default class: they belong on separate clusters.
    found = object_collisions("dev", "prod")
    assert ("Namespace", "", "longhorn-system") in found
    assert ("StorageClass", "", "longhorn-postgres") in found
    assert ("HelmRelease", "longhorn-system", "longhorn") in found
    # Every colliding object is named by the render's check, which needs no program run.
    assert {kind for kind, _, _ in found} <= {"Namespace", "StorageClass", "HelmRelease", "Secret", "ConfigMap", "ServiceAccount"}
    level, line = clash(names("dev"), names("prod")) or ("", "")
    assert level == "warning"
    for what in ("namespace longhorn-system", "StorageClass longhorn-postgres", "a Longhorn install"):
        assert what in line


@pytest.mark.parametrize(
    ("contexts", "level"),
    [((None, None), "warning"), (("lab", None), "warning"), (("lab", "lab"), "error"), (("lab", "prod-cluster"), None)],
    ids=["clusters unknown", "one cluster unknown", "same cluster", "different clusters"],
)
def test_a_copy_of_dev_is_refused_on_its_cluster_warned_about_if_unknown(
    contexts: tuple[str | None, str | None], level: str | None
) -> None:
    found = clash(names("dev", contexts[0]), cluster_names("qa", fixed_config("dev") | _context(contexts[1])))
    assert (found[0] if found else None) == level
    if found:
        assert found[1].startswith("Pulumi.dev.yaml and Pulumi.qa.yaml ")
        for what in ("namespace postgres ", "namespace longhorn-system ", "StorageClass longhorn-postgres ", "a Longhorn install"):
            assert what in found[1]


def _context(context: str | None) -> dict[str, str]:
    return {"kubernetes:context": context} if context else {}


def test_each_kind_of_collision_alone() -> None:
    base = fixed_config("staging") | _context("lab")
    staging = cluster_names("staging", base)
    other_ns = {"pgstack:namespace": "postgres-other"}
    other_class = {"pgstack:storage": {"className": "longhorn-postgres-other"}}
    # Only the namespace, only the class, or a second Longhorn installer: each alone is a collision.
    assert "namespace postgres-staging" in clash(staging, cluster_names("x", base | other_class))[1]  # type: ignore[index]
    assert "StorageClass longhorn-postgres-staging" in clash(staging, cluster_names("x", base | other_ns))[1]  # type: ignore[index]
    assert clash(staging, cluster_names("x", base | other_ns | other_class)) is None
    # An existing class is not created, so two stacks may both use it.
    existing = {"pgstack:storage": {"existingClass": "standard"}}
    assert clash(cluster_names("a", base | existing), cluster_names("b", base | other_ns | existing)) is None
    # Two Longhorn installers in different namespaces still collide (one Longhorn per cluster).
    dev = cluster_names("dev", fixed_config("dev") | _context("lab"))
    lh2 = {"pgstack:longhorn": {"install": True, "namespace": "longhorn-two"}, "pgstack:storage": {"className": "c2"}}
    found = clash(dev, cluster_names("two", base | lh2))
    assert found is not None and found[0] == "error" and "a Longhorn install" in found[1] and "namespace" not in found[1]


def test_collisions_reads_every_stack_file_and_skips_an_invalid_one(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    dev = (FIXED_CONFIGS / "dev.yaml").read_text()
    (tmp_path / "Pulumi.dev.yaml").write_text(dev + "  kubernetes:context: lab\n")
    (tmp_path / "Pulumi.qa.yaml").write_text(dev + "  kubernetes:context: lab\n")
    (tmp_path / "Pulumi.far.yaml").write_text(dev + "  kubernetes:context: elsewhere\n")
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  pgstack:postgres:\n    replicas: abc\n")
    errors, warnings = collisions("qa", tmp_path)
    assert len(errors) == 1 and errors[0].startswith("Pulumi.qa.yaml and Pulumi.dev.yaml deploy to one cluster (kubernetes:context lab)")
    assert warnings == []


@pytest.mark.parametrize("stack", STACKS)
def test_no_two_stack_files_collide(stack: str) -> None:
    """The user's stack files: none collides for certain with another (same kubernetes:context). Stacks on
    clusters this cannot know only warn, at render time."""
    if stack_file_problem(stack) is None:
        assert collisions(stack)[0] == []


def test_two_cloudnative_pg_operator_installs_collide_and_one_does_not() -> None:
    # The operator's chart owns cluster-wide CRDs and webhooks: one install per cluster, whatever its namespace.
    base = fixed_config("dev") | _context("lab")
    storage = {"pgstack:longhorn": {"install": False}}
    engine = {"engine": "cloudnative-pg"}
    a = cluster_names(
        "a", base | storage | {"pgstack:namespace": "db-a", "pgstack:storage": {"className": "c-a"}, "pgstack:postgres": engine}
    )
    b_config = base | storage | {"pgstack:namespace": "db-b", "pgstack:storage": {"className": "c-b"}, "pgstack:postgres": engine}
    b = cluster_names("b", b_config | {"pgstack:cnpg": {"namespace": "cnpg-two"}})
    found = clash(a, b)
    assert found is not None and found[0] == "error" and "a CloudNativePG operator install" in found[1], found
    assert "namespace" not in found[1]
    # The second stack uses the first one's operator: no collision.
    assert clash(a, cluster_names("b", b_config | {"pgstack:cnpg": {"install": False}})) is None
    # The same operator namespace is named as such.
    same_ns = clash(a, cluster_names("b", b_config))
    assert same_ns is not None and "namespace cnpg-system" in same_ns[1]
