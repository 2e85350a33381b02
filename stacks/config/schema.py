"""What a stack can set: the top-level Settings and its storage, Longhorn and backup blocks (the
postgres: block is in stacks/config/postgres.py), with the rules only the config knows (the components'
rules are checked on their Args: stacks/config/contract.py)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    model_validator,
)

from components.logical_backup_args import S3_REMOTE
from components.longhorn_install_args import CHART_VERSION, NodeDownPodDeletionPolicy
from components.longhorn_storage_class_args import DataLocality, ReclaimPolicy
from stacks.config.errors import FieldError, such_as
from stacks.config.formats import DnsName, DnsSubdomain, Model, NamespaceName, Schedule, StorageSize, and_join, explicit_fields
from stacks.config.postgres import PostgresSettings
from stacks.config.runbooks import ANY_CONFIRMATION, BACKUP_TARGET_SECRET, LONGHORN_RELEASE, uninstall_confirmation

# ---------------------------------------------------------------- storage


def _chart_version(value: str) -> str:
    if not CHART_VERSION.fullmatch(value):
        raise ValueError(f"a Helm chart version MAJOR.MINOR.PATCH, digits only (no v, no date), {such_as('1.10.1')}")
    return value


class LonghornSettings(Model):
    """Longhorn install (helm.v3.Release) and its cluster-wide default settings."""

    install: bool = Field(
        True,
        description="Install Longhorn from this stack; false when another stack (or a platform team) already installed it",
    )
    chartVersion: Annotated[str, AfterValidator(_chart_version)] = Field("1.10.1", description="Pinned Longhorn chart version")
    namespace: DnsName = Field("longhorn-system", description="Namespace for the Longhorn release")
    defaultReplicaCount: int = Field(3, ge=1, le=20, description="Longhorn's default replica count for volumes")
    defaultDataLocality: DataLocality = "disabled"
    nodeDownPodDeletionPolicy: NodeDownPodDeletionPolicy = Field(
        "delete-both-statefulset-and-deployment-pod",
        description="What Longhorn does with pods on a down node; seed 000's reboot recovers faster when it deletes them",
    )
    deleteAllVolumesOnUninstall: bool = Field(
        False,
        description=(
            "Arm Longhorn's deleting-confirmation-flag: uninstalling the release then deletes EVERY Longhorn volume in the "
            "cluster, whatever the reclaim policy. Off: destroy leaves Longhorn and its volumes installed"
        ),
    )
    uninstallConfirmation: str | None = Field(
        None,
        description="With deleteAllVolumesOnUninstall: the sentence uninstall_confirmation() gives for this stack (runbooks section)",
    )


# Read only when this stack installs Longhorn (namespace is read either way: the recurring jobs live there).
LONGHORN_INSTALL_ONLY = (
    "chartVersion",
    "defaultReplicaCount",
    "defaultDataLocality",
    "nodeDownPodDeletionPolicy",
    "deleteAllVolumesOnUninstall",
    "uninstallConfirmation",
)
# Settings of the StorageClass this stack creates on Longhorn; an existing class is used as it is.
LONGHORN_CLASS_ONLY = ("className", "numberOfReplicas", "dataLocality", "reclaimPolicy")


class StorageSettings(Model):
    """The StorageClass the database volumes use."""

    className: DnsSubdomain = Field("longhorn-postgres", description="Name of the StorageClass we create")
    existingClass: DnsSubdomain | None = Field(None, description="Use this existing class instead of creating className on Longhorn")
    numberOfReplicas: int = Field(3, ge=1, le=20, description="Longhorn replicas of each database volume")
    dataLocality: DataLocality = "best-effort"
    reclaimPolicy: ReclaimPolicy = Field("Retain", description="Retain keeps the volume when a PVC is deleted")


# ---------------------------------------------------------------- backups


class LonghornJob(Model):
    """A Longhorn RecurringJob for the database volumes: when, and how many to keep per volume.

    No defaults: a stack that turns a job on says when it runs and how many it keeps."""

    schedule: Schedule
    retain: int = Field(ge=1, le=100, description="Snapshots or backups kept per volume")


def _s3_remote(value: str) -> str:
    if not S3_REMOTE.fullmatch(value):
        raise ValueError(
            "an rclone bucket/prefix without a scheme: letters, digits, '.', '_', '/' and '-', starting with a letter or "
            f"digit, {such_as('backups/orders-db', 'my-bucket')}"
        )
    return value


class DumpSettings(Model):
    """The logical backup CronJob: pg_dumpall globals plus pg_dump -Fc per database."""

    schedule: Schedule = "30 2 * * *"
    keep: int = Field(7, ge=0, description="Complete dumps kept by count (0: no count rule)")
    keepDays: int = Field(0, ge=0, description="Complete dumps kept by age in days (0: no age rule)")
    storageSize: StorageSize = Field("5Gi", description="The dumps volume; grows in place like the data volumes")
    s3Remote: Annotated[str, AfterValidator(_s3_remote)] | None = Field(
        None,
        description="bucket/prefix to copy every dump to with rclone; credentials in pgstack:dumpS3 (secret)",
    )


class BackupSettings(Model):
    """Backups: Longhorn snapshots and off-cluster volume backups, and logical dumps. Each is off when null."""

    snapshots: LonghornJob | None = Field(None, description="Crash-consistent Longhorn snapshots, on the volumes' replicas")
    volumeBackups: LonghornJob | None = Field(None, description="Longhorn backups to the cluster's backup target (off-cluster)")
    dumps: DumpSettings | None = Field(None, description="pg_dump CronJob writing to a PVC of its own (and S3)")


# Namespaces a database must never live in: deleting the stack would delete them.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Settings(Model):
    """Everything a stack can set."""

    namespace: NamespaceName = "postgres"
    protect: bool = Field(True, description="Pulumi protect on every stateful resource: delete and replace are refused")
    longhorn: LonghornSettings = LonghornSettings()
    storage: StorageSettings = StorageSettings()
    postgres: PostgresSettings = PostgresSettings()
    backup: BackupSettings = BackupSettings()
    adopt: list[str] = Field(default_factory=list, description="Live objects this stack takes over instead of creating")
    holdDatabase: bool = Field(False, description="No database pod and no data claim: a restored volume is bound first")

    @model_validator(mode="after")
    def _runbook_keys(self, info: ValidationInfo) -> Settings:
        stack = info.context.get("stack") if isinstance(info.context, dict) else None
        check_runbook_keys(self, stack)
        return self

    @model_validator(mode="after")
    def _storage_class_source(self) -> Settings:
        if self.namespace in SYSTEM_NAMESPACES:
            raise FieldError(
                "namespace",
                self.namespace,
                f"a namespace of its own, not one of {', '.join(SYSTEM_NAMESPACES)}, {such_as('postgres', 'orders-db')}",
            )
        if self.namespace == self.longhorn.namespace:
            raise FieldError(
                "namespace",
                self.namespace,
                f"a namespace other than longhorn.namespace ({self.longhorn.namespace}), {such_as('postgres', 'orders-db')}: "
                "the database namespace is Pod Security restricted, Longhorn's is privileged",
            )
        existing = self.storage.existingClass
        if existing is not None:
            if self.longhorn.install:
                raise FieldError("storage.existingClass", existing, "unset while longhorn.install is true")
            ignored = explicit_fields(self.storage, LONGHORN_CLASS_ONLY)
            if ignored:
                raise FieldError(
                    f"storage.{ignored[0]}",
                    getattr(self.storage, ignored[0]),
                    f"unset with storage.existingClass ({existing}): {and_join(['storage.' + f for f in ignored])} "
                    "configure the Longhorn StorageClass this stack would otherwise create, and an existing class is "
                    "used as it is",
                )
        longhorn_jobs = [k for k in ("snapshots", "volumeBackups") if getattr(self.backup, k) is not None]
        if longhorn_jobs and existing is not None:
            raise FieldError(
                f"backup.{longhorn_jobs[0]}",
                "an object",
                "null with storage.existingClass: Longhorn snapshots and backups need the volumes on Longhorn",
            )
        return self

    @property
    def storage_class(self) -> str:
        return self.storage.existingClass or self.storage.className


def adoptable(settings: Settings) -> dict[str, str]:
    """adopt entries this stack accepts -> what each takes over. An entry is <kind>/<import id>: the id the
    provider's Read takes (a cluster-scoped object's name, else <namespace>/<name>; a Helm release's is
    <namespace>/<release>, pulumi-kubernetes provider/pkg/provider/util.go parseFqName)."""
    entries = {f"namespace/{settings.namespace}": "the database namespace (made by kubectl, or kept from before)"}
    if settings.longhorn.install:
        ns = settings.longhorn.namespace
        entries[f"namespace/{ns}"] = "Longhorn's namespace, retained by a destroy"
        entries[f"release/{ns}/{LONGHORN_RELEASE}"] = "the Longhorn Helm release, retained by a destroy"
        entries[f"secret/{ns}/{BACKUP_TARGET_SECRET}"] = "the backup target's Secret, retained by a destroy"
    return entries


def check_runbook_keys(settings: Settings, stack: str | None) -> None:
    """adopt names only objects this stack registers; an armed uninstall carries this stack's confirmation."""
    accepted = adoptable(settings)
    for entry in settings.adopt:
        if entry not in accepted:
            raise FieldError(
                "adopt",
                entry,
                f"one of the objects this stack creates: {', '.join(accepted)} "
                "(<kind>/<import id>; docs/operations.md#bring-a-destroyed-stack-back)",
            )
    twice = [e for e in settings.adopt if settings.adopt.count(e) > 1]
    if twice:
        raise FieldError("adopt", twice[0], "each object once")
    longhorn = settings.longhorn
    if not (longhorn.install and longhorn.deleteAllVolumesOnUninstall):
        return
    given = longhorn.uninstallConfirmation
    if stack is not None:
        expected = uninstall_confirmation(stack, longhorn.namespace)
        if given != expected:
            raise FieldError(
                "longhorn.uninstallConfirmation",
                given,
                f"with longhorn.deleteAllVolumesOnUninstall true, exactly {json.dumps(expected)}: deleting the release then "
                "deletes every Longhorn volume in the cluster, other stacks' included; set it only once no other stack uses "
                "this Longhorn",
            )
    elif given is None or not (m := ANY_CONFIRMATION.fullmatch(given)) or m.group(1) != longhorn.namespace:
        raise FieldError("longhorn.uninstallConfirmation", given, "this stack's uninstall confirmation (uninstall_confirmation)")


# Top-level config keys: each is an object under the project namespace.
CONFIG_KEYS: tuple[str, ...] = tuple(Settings.model_fields)
