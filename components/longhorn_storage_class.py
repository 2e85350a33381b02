"""LonghornStorageClass: the database's StorageClass on a Longhorn that is already installed.

A component of its own so that a stack sharing a cluster (Longhorn installed by another
stack) still gets a tuned class whose parameters show up in its diffs.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.longhorn_storage_class_args import LonghornStorageClassArgs
from components.outputs import dependencies_of

LONGHORN_PROVISIONER = "driver.longhorn.io"


def storage_class_parameters(args: LonghornStorageClassArgs) -> dict[str, str]:
    """driver.longhorn.io StorageClass parameters (all strings, as the CSI driver expects)."""
    return {
        "numberOfReplicas": str(args.replicas),
        "staleReplicaTimeout": "30",
        "dataLocality": args.data_locality,
        "fsType": "ext4",
    }


# Kubernetes refuses updates to these StorageClass fields, but pulumi-kubernetes only marks
# parameters and provisioner as replace-forcing (provider/pkg/provider/diff.go, forceNew);
# without this an edit would fail `pulumi up` instead of replacing the class.
REPLACE_ON_CHANGES = ["reclaimPolicy", "volumeBindingMode"]


class LonghornStorageClass(pulumi.ComponentResource):
    """A Longhorn StorageClass with volume expansion, replaced (never updated) on immutable changes.

    Replacing a StorageClass touches no volume: each PV keeps the reclaim policy and the
    Longhorn volume keeps the replica count it was created with.
    """

    storage_class_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: LonghornStorageClassArgs,
        opts: pulumi.ResourceOptions | None = None,
        class_aliases: list[pulumi.Alias] | None = None,
    ) -> None:
        """class_aliases: earlier URNs of the class, so moving it here does not replace it."""
        super().__init__("pgstack:index:LonghornStorageClass", name, None, opts)
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-sc",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.name),
            provisioner=LONGHORN_PROVISIONER,
            parameters=storage_class_parameters(args),
            allow_volume_expansion=True,
            reclaim_policy=args.reclaim_policy,
            volume_binding_mode="Immediate",
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                replace_on_changes=REPLACE_ON_CHANGES,
                # The name is fixed, so the old class must go before the new one is created.
                delete_before_replace=True,
                aliases=class_aliases,
                depends_on=dependencies_of(opts),
            ),
        )
        self.storage_class_name = pulumi.Output.from_input(args.name)
        self.register_outputs({"storage_class_name": self.storage_class_name})
