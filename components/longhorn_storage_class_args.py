"""LonghornStorageClassArgs: the contract of LonghornStorageClass (components/longhorn_storage_class.py),
and Longhorn's data-locality rule, which LonghornInstallArgs shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.validation import check_literals, check_name, check_range, fail

DataLocality = Literal["disabled", "best-effort", "strict-local"]


ReclaimPolicy = Literal["Retain", "Delete"]


def check_locality(args: object, field: str, locality: str, count_field: str, replicas: int) -> None:
    """Longhorn's volume webhook refuses strict-local with more than one replica: longhorn-manager
    webhook/resources/volume/validator.go (validateReplicaCount, types.ValidateDataLocalityAndReplicaCount:
    "replica count should be 1 in data locality strict-local mode"). Volumes that leave both unset get
    them from the default-replica-count and default-data-locality settings (volume mutator.go)."""
    if locality == "strict-local" and replicas > 1:
        fail(
            args,
            field,
            locality,
            f"a locality that allows {count_field} {replicas}",
            examples=("best-effort", "disabled"),
            why="strict-local keeps a volume's only replica on the pod's node, and Longhorn's volume webhook refuses it "
            f"with more than one replica (for strict-local, set {count_field} to 1)",
            refs=(count_field,),
        )


@dataclass(frozen=True)
class LonghornStorageClassArgs:
    name: str
    """StorageClass name (a DNS-1123 subdomain); cluster-scoped, so unique per stack on a shared cluster."""
    replicas: int = 3
    """Longhorn replicas of each volume (numberOfReplicas), 1 to 20."""
    data_locality: DataLocality = "best-effort"
    """disabled, best-effort or strict-local (strict-local only with one replica)."""
    reclaim_policy: ReclaimPolicy = "Retain"
    """Copied into each PV when it is provisioned; changing it later does not touch existing PVs."""
    protect: bool = True
    """Pulumi protect: a delete or replacement of the class is refused."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_name(self, "name", self.name, "subdomain")
        check_range(self, "replicas", self.replicas, 1, 20)
        check_locality(self, "data_locality", self.data_locality, "replicas", self.replicas)
