"""LonghornInstallArgs: the contract of LonghornInstall (components/longhorn_install.py), field by field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

import pulumi

from components.longhorn_storage_class_args import DataLocality, check_locality
from components.validation import check_literals, check_name, check_range, fail

# A pinned Helm chart version: MAJOR.MINOR.PATCH in ASCII digits (no v, no date, no range).
CHART_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
Adoptable = Literal["namespace", "release", "backup_secret"]
NodeDownPodDeletionPolicy = Literal[
    "do-nothing", "delete-statefulset-pod", "delete-deployment-pod", "delete-both-statefulset-and-deployment-pod"
]


@dataclass(frozen=True)
class LonghornInstallArgs:
    chart_version: str
    """The pinned Longhorn chart version, MAJOR.MINOR.PATCH (the values set here are checked against 1.10.1)."""
    namespace: str = "longhorn-system"
    """Namespace of the release (a DNS-1123 label), labelled Pod Security privileged."""
    default_replica_count: int = 3
    """Longhorn's default replicas per volume (1 to 20), for volumes that do not set their own."""
    default_data_locality: DataLocality = "disabled"
    """disabled, best-effort or strict-local (strict-local only with one replica: Longhorn's webhook)."""
    node_down_pod_deletion_policy: NodeDownPodDeletionPolicy = "delete-both-statefulset-and-deployment-pod"
    """What Longhorn does with pods on a down node; deleting them brings a StatefulSet pod back sooner."""
    delete_all_volumes_on_uninstall: bool = False
    """Longhorn's deleting-confirmation-flag. Armed, deleting the release runs the chart's
    uninstall hook, which deletes EVERY Longhorn volume in the cluster whatever the
    reclaim policy (longhorn-manager's uninstall controller). Unarmed, the release and
    its namespace are retained on delete: `pulumi destroy` leaves Longhorn and the volumes."""
    uninstall_confirmation: str | None = None
    """Required with delete_all_volumes_on_uninstall: the stack's confirmation sentence that no other stack
    uses this Longhorn. It becomes the release's description (`helm history` keeps it), where the policy
    pack checks it."""
    adopt: frozenset[Adoptable] = frozenset()
    """Objects left in the cluster by an earlier destroy (retained on delete) that this install takes over
    with the import option instead of creating: pulumi-kubernetes >= 4.29 creates with Create, AlreadyExists on an
    existing object (CHANGELOG 4.29.0 #2926; provider/pkg/await/await.go:190-252 Creation)."""
    protect: bool = True
    """Pulumi protect on the namespace, the release and the backup target's Secret: delete and replace are refused."""
    backup_target: pulumi.Input[str] | None = None
    """The cluster's default BackupTarget (chart defaultBackupStore), e.g. s3://bucket@region/path
    or nfs://host:/path, from secret config (the component keeps it secret)."""
    backup_credentials: pulumi.Output[dict[str, str]] | None = None
    """The Secret keys Longhorn reads for the target (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_ENDPOINTS, ...), from secret config; only with backup_target."""

    def __post_init__(self) -> None:
        check_literals(self)
        if not CHART_VERSION.fullmatch(self.chart_version):
            accepted = "a Helm chart version MAJOR.MINOR.PATCH, digits only (no v, no date)"
            fail(self, "chart_version", self.chart_version, accepted, examples=("1.10.1",))
        check_name(self, "namespace", self.namespace)
        check_range(self, "default_replica_count", self.default_replica_count, 1, 20)
        check_locality(self, "default_data_locality", self.default_data_locality, "default_replica_count", self.default_replica_count)
        if self.backup_credentials is not None and self.backup_target is None:
            fail(self, "backup_credentials", "<secret>", "None without backup_target (credentials for no target)")
        if self.delete_all_volumes_on_uninstall and not self.uninstall_confirmation:
            fail(self, "uninstall_confirmation", self.uninstall_confirmation, "the stack's confirmation sentence while armed")
        unknown = sorted(set(self.adopt) - set(get_args(Adoptable)))
        if unknown:
            fail(self, "adopt", unknown, "a set of " + ", ".join(repr(a) for a in get_args(Adoptable)))
        if "backup_secret" in self.adopt and self.backup_target is None:
            fail(self, "adopt", sorted(self.adopt), "backup_secret only with a backup_target (no Secret without one)")
