"""The composition every stack runs: storage first, then the database, then the outputs."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cnpg_operator import CnpgOperator
from components.logical_backup import LogicalBackup
from components.logical_backup_args import DumpS3, s3_endpoint_port
from components.longhorn_backups import LonghornRecurringJobs
from components.longhorn_backups_args import Schedule
from components.longhorn_install import LonghornInstall
from components.longhorn_storage_class import LonghornStorageClass
from components.naming import pod_security_labels
from components.outputs import name_of
from components.postgres_cluster import PostgresCluster
from components.postgres_monitoring import PostgresMonitoring
from components.postgres_monitoring_args import CertManagerExpiry, GeneratedExpiry, MonitoringArgs
from components.postgres_statefulset import PostgresStatefulSet
from components.wal_archive_args import WalArchiveArgs
from components.wal_backup import WalBaseBackup
from stacks.args import (
    backup_group,
    cluster_args,
    cluster_monitoring_args,
    cnpg_operator_args,
    dump_args,
    longhorn_install_args,
    monitoring_args,
    postgres_args,
    recurring_jobs_args,
    schedule_of,
    storage_class_args,
    wal_args,
    wal_backup_args,
)
from stacks.config import Secrets, Settings
from stacks.config.cnpg import CNPG
from stacks.rollout import (
    data_major_marker,
    engine_marker,
    engine_warning,
    major_warning,
    primary_template_marker,
    template_warning,
    warn_when_replaced,
)

Database = PostgresStatefulSet | PostgresCluster


def storage(settings: Settings, secrets: Secrets) -> list[pulumi.Resource]:
    """Longhorn (when this stack installs it) and the database StorageClass (unless an existing one is used)."""
    created: list[pulumi.Resource] = []
    if settings.longhorn.install:
        target = secrets.backupTarget
        url = pulumi.Output.secret(target.url) if target else None
        credentials = pulumi.Output.secret(dict(target.credentials)) if target else None
        created.append(LonghornInstall("longhorn", longhorn_install_args(settings, url, credentials)))
    if settings.storage.existingClass is None:
        # The class used to be a child of LonghornInstall "longhorn"; the alias keeps its URN's identity.
        old_parent = f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::pgstack:index:LonghornInstall::longhorn"
        created.append(
            LonghornStorageClass(
                "longhorn",
                storage_class_args(settings),
                # Longhorn's CSI driver must be running before a volume can be provisioned (seed 000).
                opts=pulumi.ResourceOptions(depends_on=list(created)),
                class_aliases=[pulumi.Alias(parent=old_parent)],
            )
        )
    return created


def volume_backup_schedule(settings: Settings, secrets: Secrets, warn: bool = True) -> Schedule | None:
    """Volume backups need a backup target. The Longhorn stack knows whether it set one; a
    stack on a shared Longhorn uses the cluster's."""
    if settings.backup.volumeBackups is not None and settings.longhorn.install and secrets.backupTarget is None:
        if not warn:
            return None
        pulumi.log.warn(
            "pgstack:backup.volumeBackups is set but pgstack:backupTarget is not: volume backups are not scheduled "
            "until a target is set (pulumi config set --secret --path backupTarget.url s3://bucket@region/path ...)"
        )
        return None
    return schedule_of(settings.backup.volumeBackups)


def backups(settings: Settings, secrets: Secrets, db: Database, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
    """Longhorn recurring jobs for the stack's volumes, and the logical dump CronJob (none while the database
    is held: there is nothing to dump, and its claim is retained on delete)."""
    created: list[pulumi.Resource] = []
    group = backup_group(settings)
    snapshot, backup = schedule_of(settings.backup.snapshots), volume_backup_schedule(settings, secrets)
    if group is not None and (snapshot or backup):
        jobs = LonghornRecurringJobs(
            "backups",
            recurring_jobs_args(settings, group, snapshot, backup),
            # Longhorn's CRDs come with its chart.
            opts=pulumi.ResourceOptions(depends_on=after),
        )
        created.append(jobs)
    dumps = settings.backup.dumps
    if dumps is None or settings.holdDatabase:
        return created
    s3 = None
    if dumps.s3Remote is not None and secrets.dumpS3 is not None:
        cred = secrets.dumpS3
        values = {"provider": cred.provider, "access_key_id": cred.accessKeyId, "secret_access_key": cred.secretAccessKey}
        values |= {k: v for k, v in (("endpoint", cred.endpoint), ("region", cred.region)) if v}
        s3 = DumpS3(remote=dumps.s3Remote, credentials=pulumi.Output.secret(values), endpoint_port=s3_endpoint_port(cred.endpoint))
    dump_job = LogicalBackup(
        "dumps",
        dump_args(settings, db.namespace, list(db.replica_hosts), db.pod_labels, s3),
        opts=pulumi.ResourceOptions(depends_on=[db, *after]),
    )
    return [*created, dump_job]


def archiving(settings: Settings, secrets: Secrets) -> WalArchiveArgs | None:
    """WAL archiving of a StatefulSet-engine stack with backup.wal set; off, with a warning, until pgstack:dumpS3
    (the S3 account) is set."""
    wal = settings.backup.wal
    if wal is not None and secrets.dumpS3 is None:
        pulumi.log.warn(
            "pgstack:backup.wal is set but pgstack:dumpS3 is not: WAL is not archived until the S3 account is set "
            '(pulumi config set --secret dumpS3 \'{"accessKeyId": ..., "secretAccessKey": ...}\')'
        )
    return wal_args(settings, secrets.dumpS3)


def wal_base_backups(settings: Settings, db: PostgresStatefulSet, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
    """The base-backup CronJob while the database archives and is not held (no primary to copy)."""
    wal = db.wal
    if wal is None or settings.holdDatabase:
        return []
    args = wal_backup_args(settings, wal, db.pod_labels)
    return [WalBaseBackup("wal-base-backups", args, opts=pulumi.ResourceOptions(depends_on=[db, *after]))]


def tls_expiry(db: Database) -> GeneratedExpiry | CertManagerExpiry | None:
    """Where the certificate-expiry alert reads the server certificate's end of validity."""
    if not isinstance(db, PostgresStatefulSet) or db.tls is None:
        return None
    if db.tls.not_after is not None:
        return GeneratedExpiry(db.tls.not_after)
    return CertManagerExpiry(db.tls.certificate_name) if db.tls.certificate_name else None


def monitoring(settings: Settings, secrets: Secrets, db: Database, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
    """The PodMonitor and PrometheusRule (prometheus-operator CRDs), when metrics ask for them."""
    volume_backups = volume_backup_schedule(settings, secrets, warn=False) is not None
    args: MonitoringArgs | None
    if isinstance(db, PostgresCluster):
        args = cluster_monitoring_args(settings, db.namespace)
    else:
        wal = None if settings.holdDatabase else wal_args(settings, secrets.dumpS3)
        args = monitoring_args(settings, db.namespace, volume_backups, tls_expiry(db), wal)
    if args is None:
        return []
    name = f"{settings.postgres.name}-monitoring"
    return [PostgresMonitoring(name, args, opts=pulumi.ResourceOptions(depends_on=[*after, db]))]


def adopted_namespace(settings: Settings) -> str | None:
    """The import option of the database namespace: its name when adopt names it (stacks/config/schema.py adoptable)."""
    return settings.namespace if f"namespace/{settings.namespace}" in settings.adopt else None


def destroy_guard(settings: Settings, everything: list[pulumi.Resource]) -> random.RandomId:
    """A protected stack's `pulumi destroy` deletes nothing, --skip-preview included.

    The engine deletes in antichains, dependents first (pulumi pkg/resource/deploy/step_generator.go:2747
    ScheduleDeletes), refuses a protected resource inside its DeleteStep (step.go:644-648, deleteProtectedError),
    and before each later antichain skips every transitive dependency of a failed step (deployment_executor.go:
    515-547). Unprotected objects nothing protected depends on (Services, PDB, NetworkPolicy, CronJob...) were
    deleted before the refusal. This guard depends on every resource of the stack (the SDK expands a component
    to its children), so it is deleted first and fails first. Being a depends_on edge, not an input, it never
    drags a replacement along (step_generator.go:3287, 3337 calculateDependentReplacements), so a Service can
    still be replaced on a protected stack. (pulumi/pulumi at 1b5949891b.)
    """
    return random.RandomId(
        "destroy-guard",
        byte_length=4,
        opts=pulumi.ResourceOptions(protect=settings.protect, depends_on=everything),
    )


def database_namespace(settings: Settings) -> k8s.core.v1.Namespace:
    return k8s.core.v1.Namespace(
        "database-ns",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=settings.namespace,
            labels=pod_security_labels("restricted"),
        ),
        # Deleting the namespace deletes the PVCs in it (protect does not cover those). A namespace that
        # already exists (kubectl create namespace, a restore) is adopted only when adopt names it.
        opts=pulumi.ResourceOptions(protect=settings.protect, import_=adopted_namespace(settings)),
    )


def export_outputs(settings: Settings, namespace: k8s.core.v1.Namespace, db: Database) -> None:
    """The same outputs from either engine (the headless Service and the CA certificate are the StatefulSet engine's)."""
    pulumi.export("namespace", name_of(namespace))
    pulumi.export("storageClass", settings.storage_class)
    if isinstance(db, PostgresStatefulSet):
        pulumi.export("headlessService", db.headless_service_name)
    pulumi.export("host", db.host)
    pulumi.export("readOnlyHost", db.read_only_host)
    pulumi.export("port", db.port)
    pulumi.export("database", db.database)
    pulumi.export("user", db.user)
    pulumi.export("secretName", db.secret_name)
    pulumi.export("connectionUri", db.connection_uri)
    if settings.tls.enabled and isinstance(db, PostgresStatefulSet):
        # The generated CA's certificate (not secret): clients verify the server with it (sslmode=verify-full).
        # With cert-manager or an existing Secret it is None: the CA is that Secret's ca.crt (docs/security.md#tls).
        pulumi.export("caCertificate", db.ca_certificate)


def build_cluster(settings: Settings, secrets: Secrets) -> PostgresCluster:
    """The CloudNativePG engine: the operator (when this stack installs it), storage, namespace, the Cluster."""
    operator = [CnpgOperator("cnpg", cnpg_operator_args(settings))] if settings.cnpg.install else []
    storage_deps = storage(settings, secrets)
    namespace = database_namespace(settings)
    # Refused in the preview when a protected stack changes engine (stacks/rollout.py).
    engine = engine_marker(settings)
    db = PostgresCluster(
        settings.postgres.name,
        cluster_args(settings, settings.storage_class, secrets.dumpS3),
        # The operator's CRDs and webhook before the Cluster (CnpgOperator awaits the release), the class before its claims.
        opts=pulumi.ResourceOptions(depends_on=[namespace, *operator, *storage_deps, engine]),
    )
    warn_when_replaced(engine, engine_warning(settings))
    jobs = backups(settings, secrets, db, [namespace, *storage_deps])
    observed = monitoring(settings, secrets, db, [namespace])
    destroy_guard(settings, [namespace, *operator, *storage_deps, engine, db, *jobs, *observed])
    export_outputs(settings, namespace, db)
    return db


def build(settings: Settings, secrets: Secrets | None = None) -> Database:
    """Create storage, namespace and database in dependency order and export the outputs."""
    secrets = secrets or Secrets()
    if settings.postgres.engine == CNPG:
        return build_cluster(settings, secrets)
    storage_deps = storage(settings, secrets)
    # A known string, not the class resource's output: a replaced class must never make the
    # StatefulSets' volumeClaimTemplates unknown, which would replace them too.
    storage_class = settings.storage_class

    if settings.postgres.replicas > 1 and not settings.postgres.replication.enabled:
        pulumi.log.warn(
            f"pgstack:postgres.replicas is {settings.postgres.replicas} with replication.enabled false: "
            "that is that many unrelated databases (seed 000), and only pod 0 gets client traffic"
        )

    namespace = database_namespace(settings)
    # Refused in the preview when the major changes on a protected stack: before any pod rolls (stacks/rollout.py).
    major = data_major_marker(settings)
    engine = engine_marker(settings)
    db = PostgresStatefulSet(
        settings.postgres.name,
        # The namespace as a known string (depends_on orders it): nothing in the database
        # property-depends on the Namespace resource, so no replacement of it can cascade.
        postgres_args(settings, settings.namespace, storage_class, archiving(settings, secrets)),
        # The StatefulSet's PVCs would sit Pending until the storage class exists (seed 000).
        opts=pulumi.ResourceOptions(depends_on=[namespace, *storage_deps, major, engine]),
    )
    warn_when_replaced(major, major_warning(settings))
    warn_when_replaced(engine, engine_warning(settings))
    template = primary_template_marker(settings.postgres.name, db.templates["primary"])
    warn_when_replaced(template, template_warning(settings.postgres.name, pulumi.get_stack()))
    # The dump job's namespace is a known string too: it waits for the Namespace explicitly.
    jobs = backups(settings, secrets, db, [namespace, *storage_deps]) + wal_base_backups(settings, db, [namespace])
    observed = monitoring(settings, secrets, db, [namespace])
    destroy_guard(settings, [namespace, *storage_deps, major, engine, db, template, *jobs, *observed])
    export_outputs(settings, namespace, db)
    return db
