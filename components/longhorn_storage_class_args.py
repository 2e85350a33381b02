"""LonghornStorageClassArgs: the contract of LonghornStorageClass (components/longhorn_storage_class.py),
and Longhorn's data-locality rule, which LonghornInstallArgs shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.validation import check_literals, check_name, check_range, fail

DataLocality = Literal["disabled", "best-effort", "strict-local"]


def check_locality(args: object, field: str, locality: str, replicas: int) -> None:
    """Longhorn's volume webhook refuses strict-local with more than one replica (longhorn-manager
    webhook/resources/volume/validator.go: "replica count should be 1 in data locality strict-local mode")."""
    if locality == "strict-local" and replicas > 1:
        fail(args, field, locality, f"'disabled' or 'best-effort' with {replicas} replicas: strict-local allows only one replica")


@dataclass(frozen=True)
class LonghornStorageClassArgs:
    name: str
    """StorageClass name (a DNS-1123 subdomain); cluster-scoped, so unique per stack on a shared cluster."""
    replicas: int = 3
    """Longhorn replicas of each volume (numberOfReplicas), 1 to 20."""
    data_locality: DataLocality = "best-effort"
    """disabled, best-effort or strict-local (strict-local only with one replica)."""
    reclaim_policy: Literal["Retain", "Delete"] = "Retain"
    """Copied into each PV when it is provisioned; changing it later does not touch existing PVs."""
    protect: bool = True
    """Pulumi protect: a delete or replacement of the class is refused."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_name(self, "name", self.name, "subdomain")
        check_range(self, "replicas", self.replicas, 1, 20)
        check_locality(self, "data_locality", self.data_locality, self.replicas)
