"""LonghornInstall: the Longhorn CSI (Helm release) plus the StorageClass our database uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.naming import name_of, pod_security_labels

LONGHORN_REPO = "https://charts.longhorn.io"
LONGHORN_PROVISIONER = "driver.longhorn.io"


@dataclass(frozen=True)
class LonghornInstallArgs:
    chart_version: str
    namespace: str = "longhorn-system"
    default_replica_count: int = 3
    default_data_locality: str = "disabled"
    node_down_pod_deletion_policy: str = "delete-both-statefulset-and-deployment-pod"
    storage_class_name: str = "longhorn-postgres"
    storage_class_replicas: int = 3
    storage_class_data_locality: str = "best-effort"
    reclaim_policy: str = "Retain"


def longhorn_values(args: LonghornInstallArgs) -> dict[str, Any]:
    """Helm values for the Longhorn chart; every key exists in its values.yaml at 1.10.1.

    Checked against Rancher's repackage of upstream 1.10.1 (rancher/charts
    charts/longhorn/108.2.0+up1.10.1/values.yaml); the upstream file itself was not
    available to check (tests/fixtures/longhorn-1.10.1-value-keys.txt pins the keys).
    Setting values are strings in the chart (they land in a ConfigMap; 1.10.0 even
    refuses anything else), so we pass strings.
    """
    return {
        "defaultSettings": {
            "defaultReplicaCount": str(args.default_replica_count),
            "defaultDataLocality": args.default_data_locality,
            "nodeDownPodDeletionPolicy": args.node_down_pod_deletion_policy,
            # Uninstall refuses to run without this flag; Pulumi destroy would hang otherwise.
            "deletingConfirmationFlag": "true",
        },
        "persistence": {
            # The chart's own "longhorn" class stays, but not as the cluster default:
            # our database class is explicit so its parameters show up in our diffs.
            "defaultClass": False,
            "defaultClassReplicaCount": args.default_replica_count,
        },
    }


def storage_class_parameters(args: LonghornInstallArgs) -> dict[str, str]:
    """driver.longhorn.io StorageClass parameters (all strings, as the CSI driver expects)."""
    return {
        "numberOfReplicas": str(args.storage_class_replicas),
        "staleReplicaTimeout": "30",
        "dataLocality": args.storage_class_data_locality,
        "fsType": "ext4",
    }


class LonghornInstall(pulumi.ComponentResource):
    """Installs Longhorn with ``helm.v3.Release`` (v4 Chart drops the chart's hook jobs)."""

    storage_class_name: pulumi.Output[str]

    def __init__(self, name: str, args: LonghornInstallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:LonghornInstall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Longhorn's manager and CSI pods are privileged; restricted would block them.
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels=pod_security_labels("privileged"),
            ),
            opts=child,
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            k8s.helm.v3.ReleaseArgs(
                name="longhorn",
                chart="longhorn",
                version=args.chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=LONGHORN_REPO),
                namespace=name_of(self.namespace),
                values=longhorn_values(args),
                # Wait for the workloads so the StorageClass below is usable when created.
                skip_await=False,
                timeout=900,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-sc",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.storage_class_name),
            provisioner=LONGHORN_PROVISIONER,
            parameters=storage_class_parameters(args),
            allow_volume_expansion=True,
            reclaim_policy=args.reclaim_policy,
            volume_binding_mode="Immediate",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        self.storage_class_name = name_of(self.storage_class)
        self.register_outputs({"storage_class_name": self.storage_class_name})
