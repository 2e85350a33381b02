"""The PodMonitor and the alerts (PostgresMonitoring), from the settings, for either engine.

Pure: no resource is created here (stacks/args/__init__.py).
"""

from __future__ import annotations

import pulumi

from components.longhorn_backups_args import recurring_job_name
from components.postgres_cluster_spec import cluster_labels
from components.postgres_monitoring_args import CertManagerExpiry, GeneratedExpiry, LonghornBackupAge, MonitoringArgs, WalArchiveAlerts
from components.postgres_names import backup_job, instance_labels, wal_job
from components.wal_archive_args import WalArchiveArgs, archive_timeout_seconds
from stacks.args.storage import backup_group
from stacks.config.schema import Settings

# PostgreSQL's archive_timeout of a stack that leaves pgstack:backup.wal.archiveTimeout at its default, 5min.
DEFAULT_ARCHIVE_TIMEOUT = 300


def monitoring_args(
    settings: Settings,
    namespace: pulumi.Input[str],
    volume_backups: bool,
    tls_expiry: GeneratedExpiry | CertManagerExpiry | None,
    wal: WalArchiveArgs | None = None,
) -> MonitoringArgs | None:
    """The PodMonitor and the alerts (metrics.podMonitor, metrics.prometheusRule); None when neither is asked for.
    volume_backups: Longhorn backups are scheduled (the backup-age alert); tls_expiry: where the certificate's end
    of validity comes from (components/postgres_tls.py), None without TLS or with an existing Secret; wal: the
    stack archives (the archiving and base-backup alerts)."""
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
        wal_archiving=wal_alerts(pg.name, wal) if wal is not None else None,
        labels=dict(m.labels),
    )


def wal_alerts(name: str, wal: WalArchiveArgs) -> WalArchiveAlerts:
    """The archive may lag archiveTimeout plus as long again for an upload before it is behind."""
    seconds = archive_timeout_seconds(wal.archive_timeout) or DEFAULT_ARCHIVE_TIMEOUT
    return WalArchiveAlerts(max_age_seconds=max(2 * seconds, 60), backup_cronjob=wal_job(name))


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
