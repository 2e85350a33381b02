"""LonghornInstall: the Longhorn CSI as a Helm release in its own namespace.

One stack per cluster installs it; the database StorageClass is LonghornStorageClass, so
stacks that share the cluster create their own class on the same Longhorn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.naming import name_of, pod_security_labels

LONGHORN_REPO = "https://charts.longhorn.io"


@dataclass(frozen=True)
class LonghornInstallArgs:
    chart_version: str
    namespace: str = "longhorn-system"
    default_replica_count: int = 3
    default_data_locality: str = "disabled"
    node_down_pod_deletion_policy: str = "delete-both-statefulset-and-deployment-pod"
    # Longhorn's deleting-confirmation-flag. Armed, deleting the release runs the chart's
    # uninstall hook, which deletes EVERY Longhorn volume in the cluster whatever the
    # reclaim policy (longhorn-manager's uninstall controller). Unarmed, the release and
    # its namespace are retained on delete: `pulumi destroy` leaves Longhorn and the volumes.
    delete_all_volumes_on_uninstall: bool = False
    # Pulumi protect on the namespace and the release: delete and replace are refused.
    protect: bool = True


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
            # The uninstall hook deletes every Longhorn volume only with this flag armed.
            "deletingConfirmationFlag": "true" if args.delete_all_volumes_on_uninstall else "false",
        },
        "persistence": {
            # The chart's own "longhorn" class stays, but not as the cluster default:
            # our database class is explicit so its parameters show up in our diffs.
            "defaultClass": False,
            "defaultClassReplicaCount": args.default_replica_count,
        },
    }


class LonghornInstall(pulumi.ComponentResource):
    """Installs Longhorn with ``helm.v3.Release`` (v4 Chart drops the chart's hook jobs)."""

    namespace_name: pulumi.Output[str]

    def __init__(self, name: str, args: LonghornInstallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:LonghornInstall", name, None, opts)
        # Unarmed, a delete (destroy, install: false) forgets the release instead of running
        # the uninstall hook, which would fail without the flag and leave the stack stuck.
        keep = not args.delete_all_volumes_on_uninstall
        child = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=keep)

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
                # Wait for the workloads so the database's StorageClass is usable when created.
                skip_await=False,
                timeout=900,
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.namespace])),
        )
        self.namespace_name = name_of(self.namespace)
        self.register_outputs({"namespace_name": self.namespace_name})
