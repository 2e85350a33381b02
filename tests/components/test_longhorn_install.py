"""LonghornInstall: namespace, pinned helm.v3.Release, and our StorageClass after the release."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pulumi
import pytest

from components.longhorn_install import LonghornInstall, longhorn_values
from components.longhorn_install_args import LonghornInstallArgs
from components.longhorn_storage_class import LonghornStorageClass
from components.longhorn_storage_class_args import LonghornStorageClassArgs
from tests.conftest import program_run, run_component
from tools.mock_run import plain as _plain
from tools.stack_files import stack_config

# Key paths present in the Longhorn chart's values.yaml at 1.10.1, read from the stored
# rancher/charts copy charts/longhorn/108.2.0+up1.10.1/values.yaml (upstream 1.10.1 keys).
VERIFIED_KEYS = set((Path(__file__).parent.parent / "fixtures" / "longhorn-1.10.1-value-keys.txt").read_text().split())

ARGS = LonghornInstallArgs(
    chart_version="1.10.1",
    default_replica_count=2,
    default_data_locality="best-effort",
    node_down_pod_deletion_policy="delete-statefulset-pod",
)
CLASS_ARGS = LonghornStorageClassArgs(name="db-class", replicas=2, reclaim_policy="Retain")


def _build(args: LonghornInstallArgs = ARGS) -> None:
    lh = LonghornInstall("lh", args)
    sc = LonghornStorageClass("db", CLASS_ARGS, opts=pulumi.ResourceOptions(depends_on=[lh]))
    pulumi.export("storageClass", sc.storage_class_name)


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


def test_release_and_namespace_default_to_kept_on_destroy() -> None:
    run = run_component(_build)
    component = run.one("pgstack:index:LonghornInstall", "lh")
    ns = run.one("kubernetes:core/v1:Namespace", "lh-ns")
    release = run.one("kubernetes:helm.sh/v3:Release", "lh-release")
    assert {ns.parent, release.parent} == {component.urn}

    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    rel = _plain(release.inputs)
    assert (rel["chart"], rel["version"], rel["repositoryOpts"]["repo"]) == ("longhorn", "1.10.1", "https://charts.longhorn.io")
    assert rel["namespace"] == "longhorn-system"
    # Unarmed by default: the uninstall hook would delete every Longhorn volume in the cluster.
    assert rel["values"]["defaultSettings"] == {
        "defaultReplicaCount": "2",
        "defaultDataLocality": "best-effort",
        "nodeDownPodDeletionPolicy": "delete-statefulset-pod",
        "deletingConfirmationFlag": "false",
    }
    assert rel["skipAwait"] is False
    assert ns.urn in release.dependencies
    # Destroy forgets Longhorn instead of uninstalling it; protect refuses even that.
    for r in (ns, release):
        assert r.options.retain_on_delete and r.options.protect, r.name


def test_armed_uninstall_is_a_deliberate_choice() -> None:
    confirmed = "dev: no other stack uses longhorn-system/longhorn; delete every Longhorn volume in this cluster"
    armed = dataclasses.replace(ARGS, delete_all_volumes_on_uninstall=True, uninstall_confirmation=confirmed, protect=False)
    run = run_component(lambda: _build(armed))
    release = run.one("kubernetes:helm.sh/v3:Release", "lh-release")
    assert _plain(release.inputs)["values"]["defaultSettings"]["deletingConfirmationFlag"] == "true"
    # Helm keeps the confirmation in the release history, and the policy pack reads it there.
    assert _plain(release.inputs)["description"] == confirmed
    for r in (release, run.one("kubernetes:core/v1:Namespace", "lh-ns")):
        assert not r.options.retain_on_delete and not r.options.protect, r.name


def test_storage_class_is_replaced_never_updated_on_immutable_fields() -> None:
    run = run_component(_build)
    sc = run.one("kubernetes:storage.k8s.io/v1:StorageClass", "db-sc")
    assert sc.parent == run.one("pgstack:index:LonghornStorageClass", "db").urn
    # Longhorn's driver first: a component dependency reaches the class as the release's URN.
    assert run.one("kubernetes:helm.sh/v3:Release", "lh-release").urn in sc.dependencies
    s = _plain(sc.inputs)
    assert s["provisioner"] == "driver.longhorn.io"
    assert s["parameters"] == {"numberOfReplicas": "2", "staleReplicaTimeout": "30", "dataLocality": "best-effort", "fsType": "ext4"}
    assert s["allowVolumeExpansion"] is True and s["reclaimPolicy"] == "Retain"
    assert s["metadata"]["name"] == "db-class"
    # Kubernetes refuses updates to both; the provider only replaces on parameters/provisioner.
    assert set(sc.options.replace_on_changes) == {"reclaimPolicy", "volumeBindingMode"}
    assert sc.options.delete_before_replace and sc.options.protect
    assert run.outputs == {"storageClass": "db-class"}


def test_storage_class_args_are_checked() -> None:
    with pytest.raises(ValueError, match=r"LonghornStorageClassArgs.replicas: got 0; expected an integer from 1 to 20"):
        LonghornStorageClassArgs(name="x", replicas=0)


SC = "kubernetes:storage.k8s.io/v1:StorageClass"


def test_a_stack_on_an_installed_longhorn_still_gets_its_tuned_class() -> None:
    config = stack_config("prod") | {
        "pgstack:longhorn": {"install": False},
        "pgstack:storage": {"className": "pg-prod", "numberOfReplicas": 2},
    }
    run = program_run(config, "prod")
    assert not run.of_type("pgstack:index:LonghornInstall") and not run.of_type("kubernetes:helm.sh/v3:Release")
    (sc,) = run.of_type(SC)
    assert sc.parent == run.one("pgstack:index:LonghornStorageClass", "longhorn").urn
    s = _plain(sc.inputs)
    assert (s["metadata"]["name"], s["parameters"]["numberOfReplicas"]) == ("pg-prod", "2")
    assert run.one("kubernetes:apps/v1:StatefulSet", "postgres").inputs["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == (
        "pg-prod"
    )


def test_several_classes_on_one_longhorn() -> None:
    def program() -> None:
        for name, replicas in (("orders", 2), ("billing", 3)):
            LonghornStorageClass(name, LonghornStorageClassArgs(name=f"longhorn-{name}", replicas=replicas))

    run = run_component(program)
    classes = {c.name: _plain(c.inputs) for c in run.of_type(SC)}
    assert {k: (v["metadata"]["name"], v["parameters"]["numberOfReplicas"]) for k, v in classes.items()} == {
        "orders-sc": ("longhorn-orders", "2"),
        "billing-sc": ("longhorn-billing", "3"),
    }
    assert not run.of_type("kubernetes:helm.sh/v3:Release")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"adopt": frozenset({"releas"})}, r"LonghornInstallArgs.adopt: got \['releas'\]; expected a set of 'namespace', 'release'"),
        ({"adopt": frozenset({"backup_secret"})}, r"LonghornInstallArgs.adopt: .*backup_secret only with a backup_target"),
        ({"delete_all_volumes_on_uninstall": True}, r"LonghornInstallArgs.uninstall_confirmation: got None"),
    ],
    ids=["an unknown part", "a Secret without a target", "armed unconfirmed"],
)
def test_adoption_and_arming_are_checked(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ARGS, **change)


def test_adopted_parts_get_their_import_ids() -> None:
    args = dataclasses.replace(ARGS, adopt=frozenset({"namespace", "release"}))
    run = run_component(lambda: _build(args))
    ids = {r.name: r.options.import_id for r in run.resources if r.options.import_id}
    assert ids == {"lh-ns": "longhorn-system", "lh-release": "longhorn-system/longhorn"}
    assert not [r for r in run_component(_build).resources if r.options.import_id]
