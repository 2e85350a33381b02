"""LonghornInstall: namespace, pinned helm.v3.Release, and our StorageClass after the release."""

from __future__ import annotations

from pathlib import Path

import pulumi

from components.longhorn_install import LonghornInstall, LonghornInstallArgs, longhorn_values
from stacks.render import _plain
from tests.conftest import run_component

# Key paths present in the Longhorn chart's values.yaml at 1.10.1, read from the stored
# rancher/charts copy charts/longhorn/108.2.0+up1.10.1/values.yaml (upstream 1.10.1 keys).
VERIFIED_KEYS = set((Path(__file__).parent.parent / "fixtures" / "longhorn-1.10.1-value-keys.txt").read_text().split())

ARGS = LonghornInstallArgs(
    chart_version="1.10.1",
    default_replica_count=2,
    default_data_locality="best-effort",
    node_down_pod_deletion_policy="delete-statefulset-pod",
    storage_class_name="db-class",
    storage_class_replicas=2,
    reclaim_policy="Retain",
)


def _build() -> None:
    lh = LonghornInstall("lh", ARGS)
    pulumi.export("storageClass", lh.storage_class_name)


def _paths(values: dict[str, object], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        out |= _paths(value, path + ".") if isinstance(value, dict) else {path}
    return out


def test_every_helm_value_exists_in_the_pinned_chart() -> None:
    assert _paths(longhorn_values(ARGS)) <= VERIFIED_KEYS
    # defaultSettings land in a ConfigMap: the chart wants strings (1.10.0 even fails on others).
    assert all(isinstance(v, str) for v in longhorn_values(ARGS)["defaultSettings"].values())


def test_release_namespace_and_storage_class() -> None:
    run = run_component(_build)
    component = run.one("pgstack:index:LonghornInstall", "lh")
    ns = run.one("kubernetes:core/v1:Namespace", "lh-ns")
    release = run.one("kubernetes:helm.sh/v3:Release", "lh-release")
    sc = run.one("kubernetes:storage.k8s.io/v1:StorageClass", "lh-sc")
    assert {ns.parent, release.parent, sc.parent} == {component.urn}

    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    rel = _plain(release.inputs)
    assert (rel["chart"], rel["version"], rel["repositoryOpts"]["repo"]) == ("longhorn", "1.10.1", "https://charts.longhorn.io")
    assert rel["namespace"] == "longhorn-system"
    assert rel["values"]["defaultSettings"] == {
        "defaultReplicaCount": "2",
        "defaultDataLocality": "best-effort",
        "nodeDownPodDeletionPolicy": "delete-statefulset-pod",
        "deletingConfirmationFlag": "true",
    }
    assert rel["skipAwait"] is False
    assert ns.urn in release.dependencies

    assert release.urn in sc.dependencies, "the StorageClass waits for the release"
    s = _plain(sc.inputs)
    assert s["provisioner"] == "driver.longhorn.io"
    assert s["parameters"]["numberOfReplicas"] == "2"
    assert s["allowVolumeExpansion"] is True and s["reclaimPolicy"] == "Retain"
    assert s["metadata"]["name"] == "db-class"
    assert run.outputs == {"storageClass": "db-class"}
