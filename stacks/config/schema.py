"""What a stack can set: the top-level Settings and its storage, Longhorn and backup blocks (the
postgres: block is in stacks/config/postgres.py), with the rules only the config knows (the components'
rules are checked on their Args: stacks/config/contract.py)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from components.cnpg_operator_args import CNPG_RELEASE
from components.logical_backup_args import S3_REMOTE
from components.longhorn_install_args import CHART_VERSION, NodeDownPodDeletionPolicy
from components.longhorn_storage_class_args import DataLocality, ReclaimPolicy
from stacks.config.cnpg import CNPG, CnpgSettings
from stacks.config.engine import engine_rules
from stacks.config.errors import FieldError, such_as
from stacks.config.formats import DnsName, DnsSubdomain, Model, NamespaceName, Schedule, StorageSize, and_join, explicit_fields
from stacks.config.metrics import MetricsSettings
from stacks.config.postgres import PostgresSettings
from stacks.config.runbooks import ANY_CONFIRMATION, BACKUP_TARGET_SECRET, LONGHORN_RELEASE, uninstall_confirmation
from stacks.config.tls import TlsSettings
from stacks.config.wal import WalSettings

# ---------------------------------------------------------------- storage


def _chart_version(value: str) -> str:
    if not CHART_VERSION.fullmatch(value):
        raise ValueError(f"a Helm chart version MAJOR.MINOR.PATCH, digits only (no v, no date), {such_as('1.10.1')}")
    return value


class LonghornSettings(Model):
    """Longhorn install (helm.v3.Release) and its cluster-wide default settings."""

    install: bool = True
    """Install Longhorn from this stack (one per cluster); false if it is installed already: then only namespace is read."""
    chartVersion: Annotated[str, AfterValidator(_chart_version)] = "1.10.1"
    """Pinned version of the Longhorn chart (https://charts.longhorn.io), MAJOR.MINOR.PATCH, digits only."""
    namespace: DnsName = "longhorn-system"
    """Namespace of the Longhorn release (Pod Security "privileged"); the recurring jobs live there too."""
    defaultReplicaCount: int = Field(3, ge=1, le=20)
    """Longhorn's defaultSettings.defaultReplicaCount: replicas of a volume that does not set its own."""
    defaultDataLocality: DataLocality = "disabled"
    """Longhorn's default data locality of a volume that does not set its own; strict-local needs defaultReplicaCount 1."""
    nodeDownPodDeletionPolicy: NodeDownPodDeletionPolicy = "delete-both-statefulset-and-deployment-pod"
    """What Longhorn does with the pods of a down node: Kubernetes never force-deletes them, so deleting recovers faster."""
    deleteAllVolumesOnUninstall: bool = False
    """Arm Longhorn's deleting-confirmation-flag: uninstalling the release then deletes EVERY Longhorn volume in the cluster."""
    uninstallConfirmation: str | None = None
    """Required to arm deleteAllVolumesOnUninstall: this stack's sentence, which the refusal without it prints."""


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

    className: DnsSubdomain = "longhorn-postgres"
    """StorageClass this stack creates on Longhorn (one per stack); at most 31 characters with snapshots or volumeBackups."""
    existingClass: DnsSubdomain | None = None
    """Use this existing StorageClass instead; needs longhorn.install false and the four Longhorn class fields unset."""
    numberOfReplicas: int = Field(3, ge=1, le=20)
    """Longhorn replicas of each database volume."""
    dataLocality: DataLocality = "best-effort"
    """Longhorn data locality of each database volume; strict-local needs numberOfReplicas 1."""
    reclaimPolicy: ReclaimPolicy = "Retain"
    """What happens to a volume when its claim is deleted: Retain keeps it and its data, Delete deletes it."""


# ---------------------------------------------------------------- backups


class LonghornJob(Model):
    """A Longhorn RecurringJob for the database volumes: when, and how many to keep per volume.

    No defaults: a stack that turns a job on says when it runs and how many it keeps."""

    schedule: Schedule
    """When the job runs: a five-field cron schedule or an @daily-style macro, as Kubernetes and Longhorn parse it."""
    retain: int = Field(ge=1, le=100)
    """Snapshots or backups kept per volume."""


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
    """When the dump CronJob runs: a five-field cron schedule or an @daily-style macro, as Kubernetes parses it."""
    keep: int = Field(7, ge=0)
    """Complete dumps kept by count, the newest (0: no count rule; keep and keepDays are not both 0)."""
    keepDays: int = Field(0, ge=0)
    """Complete dumps kept by age, those younger than this many days (0: no age rule)."""
    storageSize: StorageSize = "5Gi"
    """Size of the dumps' own volume on the stack's StorageClass; growing it expands the claim in place."""
    s3Remote: Annotated[str, AfterValidator(_s3_remote)] | None = None
    """Also copy every dump with rclone to this bucket/prefix, credentials in pgstack:dumpS3 (secret); null: no copy."""


class BackupSettings(Model):
    """Backups: Longhorn snapshots and off-cluster volume backups, and logical dumps. Each is off when null."""

    snapshots: LonghornJob | None = None
    """Crash-consistent Longhorn snapshots of every database volume, kept on its replicas in the cluster; null: none."""
    volumeBackups: LonghornJob | None = None
    """Longhorn backups of every database volume to the backup target, off the cluster (pgstack:backupTarget); null: none."""
    dumps: DumpSettings | None = None
    wal: WalSettings | None = None
    """Continuous WAL archiving and base backups (point-in-time recovery); null: off."""


# Namespaces a database must never live in: deleting the stack would delete them.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Settings(Model):
    """Everything a stack can set."""

    namespace: NamespaceName = "postgres"
    """Namespace of the database (Pod Security "restricted"): not default, kube-system, kube-public, kube-node-lease or Longhorn's."""
    protect: bool = True
    """Pulumi protect on every stateful resource: `pulumi destroy`, and any change that deletes or replaces one, is refused."""
    longhorn: LonghornSettings = LonghornSettings()
    storage: StorageSettings = StorageSettings()
    postgres: PostgresSettings = PostgresSettings()
    tls: TlsSettings = TlsSettings()
    backup: BackupSettings = BackupSettings()
    adopt: list[str] = Field(default_factory=list)
    """Live objects this stack takes over (Pulumi's import) instead of creating, each <kind>/<import id>."""
    holdDatabase: bool = False
    """Hold the database for a volume restore: no database pod and no data claim until the restored volume is bound."""
    metrics: MetricsSettings = MetricsSettings()
    cnpg: CnpgSettings = CnpgSettings()

    @model_validator(mode="after")
    def _engine(self) -> Settings:
        engine_rules(self.postgres, self.holdDatabase)
        if self.postgres.engine == CNPG and self.cnpg.install and self.namespace == self.cnpg.namespace:
            raise FieldError(
                "namespace",
                self.namespace,
                f"a namespace other than cnpg.namespace ({self.cnpg.namespace}), {such_as('postgres', 'orders-db')}: "
                "the operator's is its own",
            )
        return self

    @model_validator(mode="after")
    def _wal(self) -> Settings:
        """Base backups copy the primary as the replication role, which exists with replication only; under the
        CloudNativePG engine the Barman Cloud plugin archives, and restores are the operator's."""
        if self.backup.wal is None:
            return self
        if self.postgres.engine == CNPG:
            # The Barman Cloud plugin archives (stacks/args/cnpg.py); a Cluster restores with bootstrap.recovery.
            if self.backup.wal.restoreFrom is not None:
                raise FieldError(
                    "backup.wal.restoreFrom",
                    "an object",
                    "null with postgres.engine cloudnative-pg: a Cluster restores with the operator's bootstrap.recovery "
                    "from its ObjectStore, not rendered by pgstack yet",
                )
            return self
        if not self.postgres.replication.enabled:
            raise FieldError(
                "backup.wal",
                "an object",
                "null while postgres.replication.enabled is false: base backups stream from the primary as the replication role",
            )
        return self

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
    if settings.postgres.engine == CNPG:
        entries[f"cluster/{settings.namespace}/{settings.postgres.name}"] = "the CloudNativePG Cluster, retained when a stack forgot it"
        if settings.cnpg.install:
            entries[f"namespace/{settings.cnpg.namespace}"] = "the CloudNativePG operator's namespace, retained by a destroy"
            entries[f"release/{settings.cnpg.namespace}/{CNPG_RELEASE}"] = "the operator's Helm release, retained by a destroy"
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
