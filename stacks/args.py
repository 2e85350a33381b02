"""Validated settings -> the components' Args: one mapping, used twice.

stacks/database.py builds the stack from these Args, and stacks/config/contract.py builds them while
validating the config, so every rule the Args check (their ``__post_init__``, the rules' only home)
refuses a bad stack file before any resource is registered, under the YAML key it came from.
Pure: no resource is created here, and no registration module is imported.
"""

from __future__ import annotations

import pulumi

from components.cnpg_operator_args import CnpgOperatorArgs
from components.logical_backup_args import DumpS3, LogicalBackupArgs, backup_labels
from components.longhorn_backups_args import LonghornRecurringJobsArgs, Schedule, recurring_job_labels, recurring_job_name
from components.longhorn_install_args import Adoptable, LonghornInstallArgs
from components.longhorn_storage_class_args import LonghornStorageClassArgs
from components.network_args import DnsEgress, NetworkPolicyPeer
from components.postgres_args import PostgresStatefulSetArgs
from components.postgres_cluster_args import MigrateFrom, PostgresClusterArgs
from components.postgres_cluster_spec import cluster_labels, operator_ca_secret
from components.postgres_metrics_args import MetricsArgs
from components.postgres_monitoring_args import CertManagerExpiry, GeneratedExpiry, LonghornBackupAge, MonitoringArgs
from components.postgres_names import backup_job, credentials_secret, instance_labels, scripts_config_map
from components.postgres_tls_args import IssuerRef, TlsArgs
from stacks.config.cnpg import CNPG, operator_adoptions
from stacks.config.postgres import ClientPeer
from stacks.config.runbooks import BACKUP_TARGET_SECRET, LONGHORN_RELEASE
from stacks.config.schema import LonghornJob, Settings


def dns_egress_of(settings: Settings) -> DnsEgress:
    dns = settings.postgres.networkPolicy.dns
    return DnsEgress(namespace_labels=dict(dns.namespaceLabels), pod_labels=dict(dns.podLabels), cidrs=tuple(dns.cidrs), any=dns.any)


def peer_of(client: ClientPeer) -> NetworkPolicyPeer:
    return NetworkPolicyPeer(pod_labels=dict(client.podLabels), namespace_labels=client.namespaceLabels, cidr=client.cidr)


def metrics_args(settings: Settings) -> MetricsArgs | None:
    """The exporter sidecar and its scrapers; None while metrics are off."""
    m = settings.metrics
    if not m.enabled:
        return None
    return MetricsArgs(
        image=m.image.reference,
        image_pull_policy=m.image.pullPolicy,
        allow_from=tuple(peer_of(c) for c in m.allowFrom),
        pod_monitor=m.podMonitor,
        prometheus_rule=m.prometheusRule,
    )


def monitoring_args(
    settings: Settings, namespace: pulumi.Input[str], volume_backups: bool, tls_expiry: GeneratedExpiry | CertManagerExpiry | None
) -> MonitoringArgs | None:
    """The PodMonitor and the alerts (metrics.podMonitor, metrics.prometheusRule); None when neither is asked for.
    volume_backups: Longhorn backups are scheduled (the backup-age alert); tls_expiry: where the certificate's end
    of validity comes from (components/postgres_tls.py), None without TLS or with an existing Secret."""
    m, pg, group = settings.metrics, settings.postgres, backup_group(settings)
    if not (m.enabled and (m.podMonitor or m.prometheusRule)):
        return None
    dumps = settings.backup.dumps is not None and not settings.holdDatabase
    return MonitoringArgs(
        namespace=namespace,
        name=pg.name,
        selector=instance_labels(pg.name),
        pod_monitor=m.podMonitor,
        prometheus_rule=m.prometheusRule,
        replication=pg.replication.enabled,
        max_lag_bytes=pg.replication.maxLagBytes,
        dump_cronjob=backup_job(pg.name) if dumps else None,
        longhorn_backups=LonghornBackupAge(recurring_job_name(group, "backup")) if volume_backups and group else None,
        tls_expiry=tls_expiry,
        labels=dict(m.labels),
    )


def cluster_monitoring_args(settings: Settings, namespace: pulumi.Input[str]) -> MonitoringArgs | None:
    """The CloudNativePG engine's PodMonitor, on the operator's exporter (port "metrics", 9187, in every instance:
    pkg/specs/pods.go:269-270 at v1.30.0), which replaces our sidecar. Not spec.monitoring.enablePodMonitor: the
    1.30 webhook warns it is deprecated (cluster_webhook.go:2790-2800). pgstack's alerts read postgres_exporter's
    metric names, which that exporter does not serve: no PrometheusRule on this engine (docs/alerts.md)."""
    m, pg = settings.metrics, settings.postgres
    if not (m.enabled and m.podMonitor):
        return None
    return MonitoringArgs(
        namespace=namespace,
        name=pg.name,
        selector=cluster_labels(pg.name),
        pod_monitor=True,
        prometheus_rule=False,
        labels=dict(m.labels),
    )


def backup_group(settings: Settings) -> str | None:
    """The stack's Longhorn recurring-job group (named after its StorageClass), when it has jobs."""
    if settings.backup.snapshots is None and settings.backup.volumeBackups is None:
        return None
    return settings.storage.className


def tls_args(settings: Settings) -> TlsArgs | None:
    """TLS of the database and its clients; None while tls.enabled is false."""
    tls = settings.tls
    if not tls.enabled:
        return None
    ref = tls.certManager.issuerRef if tls.certManager is not None else None
    return TlsArgs(
        required=tls.required,
        min_protocol=tls.minProtocol,
        validity_days=tls.validityDays,
        renew_before_days=tls.renewBeforeDays,
        ca_validity_days=tls.caValidityDays,
        issuer=IssuerRef(name=ref.name, kind=ref.kind, group=ref.group) if ref is not None else None,
        existing_secret=tls.existingSecret,
    )


def postgres_args(settings: Settings, namespace: pulumi.Input[str], storage_class: pulumi.Input[str]) -> PostgresStatefulSetArgs:
    """Map validated settings onto the component's typed arguments."""
    pg = settings.postgres
    group = backup_group(settings)
    return PostgresStatefulSetArgs(
        claim_labels=recurring_job_labels(group) if group else {},
        backup_clients=backup_labels(pg.name) if settings.backup.dumps is not None else None,
        namespace=namespace,
        storage_class=storage_class,
        protect=settings.protect,
        image=pg.image.reference,
        image_pull_policy=pg.image.pullPolicy,
        replicas=pg.replicas,
        storage_size=pg.storageSize,
        requests=pg.resources.requests.model_dump(),
        limits=pg.resources.limits.model_dump(),
        database=pg.database,
        password_rotation=pg.passwordRotation,
        username=pg.username,
        service_type=pg.service.type,
        service_port=pg.service.port,
        node_port=pg.service.nodePort,
        replication=pg.replication.enabled,
        replication_user=pg.replication.user,
        max_lag_bytes=pg.replication.maxLagBytes,
        anti_affinity=pg.replication.podAntiAffinity,
        primary_pod=pg.replication.primary,
        accept_wal_loss_up_to=pg.replication.acceptWalLossUpTo,
        shm_size=pg.shmSize,
        hold=settings.holdDatabase,
        network_policy=pg.networkPolicy.enabled,
        dns=dns_egress_of(settings),
        allowed_clients=tuple(peer_of(c) for c in pg.networkPolicy.allowFrom),
        metrics=metrics_args(settings),
        tls=tls_args(settings),
    )


def migrate_from_of(settings: Settings) -> MigrateFrom | None:
    src = settings.postgres.migrateFrom
    if src is None:
        return None
    return MigrateFrom(
        host=src.host, password_secret=src.passwordSecret, port=src.port, user=src.user, password_key=src.passwordKey, ssl_mode=src.sslMode
    )


def cluster_args(settings: Settings, storage_class: str) -> PostgresClusterArgs:
    """The CloudNativePG engine's Cluster from the same settings (postgres.engine cloudnative-pg)."""
    pg = settings.postgres
    group = backup_group(settings)
    return PostgresClusterArgs(
        namespace=settings.namespace,
        storage_class=storage_class,
        image=pg.image.reference,
        image_pull_policy=pg.image.pullPolicy,
        instances=pg.replicas,
        storage_size=pg.storageSize,
        requests=pg.resources.requests.model_dump(),
        limits=pg.resources.limits.model_dump(),
        database=pg.database,
        username=pg.username,
        password_rotation=pg.passwordRotation,
        anti_affinity=pg.replication.podAntiAffinity,
        protect=settings.protect,
        claim_labels=recurring_job_labels(group) if group else {},
        backup_clients=backup_labels(pg.name) if settings.backup.dumps is not None else None,
        network_policy=pg.networkPolicy.enabled,
        dns=dns_egress_of(settings),
        allowed_clients=tuple(peer_of(c) for c in pg.networkPolicy.allowFrom),
        metrics=metrics_args(settings),
        tls=tls_args(settings),
        migrate_from=migrate_from_of(settings),
        adopt=f"cluster/{settings.namespace}/{pg.name}" in settings.adopt,
        operator_namespace=settings.cnpg.namespace,
    )


def cnpg_operator_args(settings: Settings) -> CnpgOperatorArgs:
    ns, adopt = settings.cnpg.namespace, operator_adoptions(settings.cnpg.namespace, settings.adopt)
    return CnpgOperatorArgs(chart_version=settings.cnpg.chartVersion, namespace=ns, protect=settings.protect, adopt=adopt)


def dump_ca_secret(settings: Settings) -> str | None:
    """The Secret whose ca.crt the dump verifies the server with: the stack's TLS Secret, or on the CloudNativePG
    engine (always TLS) the operator's CA unless cert-manager or an existing Secret serves the certificate."""
    tls, name = tls_args(settings), settings.postgres.name
    if settings.postgres.engine == CNPG:
        return tls.secret_name(name) if tls is not None and (tls.issuer is not None or tls.existing_secret) else operator_ca_secret(name)
    return None if tls is None else tls.secret_name(name)


def longhorn_adoptions(settings: Settings) -> frozenset[Adoptable]:
    """The adopt entries (stacks/config/schema.py adoptable) that name a part of the Longhorn install."""
    ns = settings.longhorn.namespace
    entries: dict[str, Adoptable] = {
        f"namespace/{ns}": "namespace",
        f"release/{ns}/{LONGHORN_RELEASE}": "release",
        f"secret/{ns}/{BACKUP_TARGET_SECRET}": "backup_secret",
    }
    return frozenset(entries[e] for e in settings.adopt if e in entries)


def longhorn_install_args(
    settings: Settings,
    backup_target: pulumi.Input[str] | None = None,
    backup_credentials: pulumi.Output[dict[str, str]] | None = None,
) -> LonghornInstallArgs:
    """The Longhorn install; the backup target (secret config) comes wrapped as a secret Output."""
    lh = settings.longhorn
    return LonghornInstallArgs(
        chart_version=lh.chartVersion,
        namespace=lh.namespace,
        default_replica_count=lh.defaultReplicaCount,
        default_data_locality=lh.defaultDataLocality,
        node_down_pod_deletion_policy=lh.nodeDownPodDeletionPolicy,
        delete_all_volumes_on_uninstall=lh.deleteAllVolumesOnUninstall,
        uninstall_confirmation=lh.uninstallConfirmation,
        adopt=longhorn_adoptions(settings),
        protect=settings.protect,
        backup_target=backup_target,
        backup_credentials=backup_credentials,
    )


def storage_class_args(settings: Settings) -> LonghornStorageClassArgs:
    st = settings.storage
    return LonghornStorageClassArgs(
        name=st.className,
        replicas=st.numberOfReplicas,
        data_locality=st.dataLocality,
        reclaim_policy=st.reclaimPolicy,
        protect=settings.protect,
    )


def schedule_of(job: LonghornJob | None) -> Schedule | None:
    return Schedule(job.schedule, job.retain) if job else None


def recurring_jobs_args(settings: Settings, group: str, snapshot: Schedule | None, backup: Schedule | None) -> LonghornRecurringJobsArgs:
    return LonghornRecurringJobsArgs(namespace=settings.longhorn.namespace, group=group, snapshot=snapshot, backup=backup)


def dump_args(
    settings: Settings,
    namespace: pulumi.Input[str],
    hosts: list[pulumi.Input[str]],
    database_pods: dict[str, str],
    s3: DumpS3 | None = None,
) -> LogicalBackupArgs:
    """The dump job of a stack with backup.dumps set; where it reads from comes from the database."""
    dumps, pg, group = settings.backup.dumps, settings.postgres, backup_group(settings)
    assert dumps is not None
    return LogicalBackupArgs(
        name=pg.name,
        namespace=namespace,
        image=pg.image.reference,
        image_pull_policy=pg.image.pullPolicy,
        # Known names (plus depends_on db): the CronJob's spec never property-depends on an object
        # that can be deleted before it is replaced (components/postgres_names.py).
        scripts_config_map=scripts_config_map(pg.name),
        credentials_secret=credentials_secret(pg.name),
        hosts=hosts,
        port=pg.service.port,
        database_pods=database_pods,
        storage_class=settings.storage_class,
        schedule=dumps.schedule,
        keep=dumps.keep,
        keep_days=dumps.keepDays,
        storage_size=dumps.storageSize,
        claim_labels=recurring_job_labels(group) if group else {},
        s3=s3,
        network_policy=pg.networkPolicy.enabled,
        dns=dns_egress_of(settings),
        # The CA (ca.crt) of the Secret the database mounts: the dump verifies the server (verify-full).
        tls_secret=dump_ca_secret(settings),
    )
