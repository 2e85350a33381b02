"""Pure builders: the PodMonitor spec and the PrometheusRule spec with pgstack's alerts (docs/alerts.md).

Every metric name below is cited from its exporter's source. The exporter's metrics carry the target labels the
PodMonitor gives them: ``namespace`` and ``pod`` (prometheus-operator v0.93.0 pkg/prometheus/promcfg.go:1601-1612)
and ``job="<namespace>/<PodMonitor>"`` (:1634); the alerts select by namespace and pod, so a Prometheus that
scrapes the pods with its own config keeping those two labels works the same. Metrics of other exporters
(kube-state-metrics, kubelet, cert-manager) name the object's namespace in ``namespace``, or in
``exported_namespace`` when Prometheus scrapes them without honorLabels (cert-manager's chart v1.21.1 default):
``_either`` matches both.
"""

from __future__ import annotations

from typing import Any

from components.postgres_monitoring_args import CertManagerExpiry, LonghornBackupAge, MonitoringArgs, WalArchiveAlerts
from components.postgres_names import claim_name, standby_set

METRICS_PORT = "metrics"  # the exporter sidecar's container port name (issue 19, shared with its builder)
ALERTS_DOC = "docs/alerts.md"
DAY = 86400
CERT_WARNING_DAYS = 14
# PostgreSQL stops assigning XIDs near 2^31 (docs "Preventing Transaction ID Wraparound Failures"); 1e9 is half way,
# five times the default autovacuum_freeze_max_age (200 million): anti-wraparound vacuums have long been failing.
XID_AGE_LIMIT = 1_000_000_000

# Every alert and its section in docs/alerts.md (tests check each anchor exists).
ANCHORS = {
    "PostgresExporterDown": "postgres-exporter-down",
    "PostgresPrimaryDown": "postgres-primary-down",
    "PostgresStandbyNotStreaming": "postgres-standby-not-streaming",
    "PostgresReplicationLagHigh": "postgres-replication-lag-high",
    "PostgresReplicationSlotAtRisk": "postgres-replication-slot-at-risk",
    "PostgresVolumeFilling": "postgres-volume-filling",
    "PostgresVolumeFull": "postgres-volume-full",
    "PostgresDumpMissing": "postgres-dump-missing",
    "PostgresLonghornBackupTooOld": "postgres-longhorn-backup-too-old",
    "PostgresConnectionsHigh": "postgres-connections-high",
    "PostgresTransactionIdAgeHigh": "postgres-transaction-id-age-high",
    "PostgresCertificateExpiring": "postgres-certificate-expiring",
    "PostgresWalArchivingFailing": "postgres-wal-archiving-failing",
    "PostgresWalArchiveBehind": "postgres-wal-archive-behind",
    "PostgresBaseBackupMissing": "postgres-base-backup-missing",
}


def pod_monitor_spec(args: MonitoringArgs) -> dict[str, Any]:
    """Scrape every database pod's ``metrics`` port; the PodMonitor lives in the pods' namespace, which is where
    prometheus-operator looks for them when namespaceSelector is unset."""
    return {
        "selector": {"matchLabels": dict(args.selector)},
        "podMetricsEndpoints": [{"port": METRICS_PORT, "interval": args.scrape_interval, "path": "/metrics", "scheme": "http"}],
    }


def pod_regex(name: str) -> str:
    """Every pod of the set, whichever holds the primary: <name>-<n> and <name>-standby-<n> (postgres_names)."""
    return f"{name}-[0-9]+|{standby_set(name)}-[0-9]+"


def _either(metric: str, namespace: str, matchers: str) -> str:
    return f'({metric}{{namespace="{namespace}",{matchers}}} or {metric}{{exported_namespace="{namespace}",{matchers}}})'


def _rule(alert: str, expr: str, wait: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description, "runbook": f"{ALERTS_DOC}#{ANCHORS[alert]}"},
    }


def _server_rules(ns: str, name: str, replication: bool) -> list[dict[str, Any]]:
    pods, where = f'namespace="{ns}",pod=~"{pod_regex(name)}"', f"{ns}/{name}"
    # pg_up: exporter/postgres_exporter.go:476 (0.20.1), set to 0 when the exporter cannot reach the server (:616), on
    # the same registry as the collectors (cmd/postgres_exporter/main.go:122, :139).
    # pg_replication_is_replica: collector/pg_replication.go:49 (default on), 0 on a primary; absent while the server is down.
    no_primary = f"absent(pg_replication_is_replica{{{pods}}} == 0)"
    return [
        _rule(
            "PostgresExporterDown",
            f"up{{{pods}}} == 0 or absent(up{{{pods}}})",
            "5m",
            "warning",
            f"No metrics from {where}",
            "Prometheus cannot scrape the exporter of {{ $labels.pod }} (none at all when the pod label is empty): "
            f"the alerts of {where} are blind.",
        ),
        _rule(
            "PostgresPrimaryDown",
            # Without replication every pod is its own primary, so any pod whose server is down is one.
            no_primary if replication else f"pg_up{{{pods}}} == 0 or {no_primary}",
            "1m",
            "critical",
            f"No primary in {where}",
            f"No pod of {where} runs a primary that answers" + "{{ with $labels.pod }} ({{ . }} is down){{ end }}: writes fail.",
        ),
        _rule(
            "PostgresConnectionsHigh",
            # pg_stat_activity_count: collector/pg_stat_activity.go:47 (labels datname, state, ...; client backends);
            # pg_settings_max_connections: collector/pg_setting.go:116 (pg_settings_<name>, no unit suffix).
            f"sum by (namespace, pod) (pg_stat_activity_count{{{pods}}}) / on (namespace, pod) "
            f"max by (namespace, pod) (pg_settings_max_connections{{{pods}}}) > 0.8",
            "5m",
            "warning",
            "Connections of {{ $labels.pod }} over 80% of max_connections",
            "{{ $labels.namespace }}/{{ $labels.pod }} uses {{ $value | humanizePercentage }} of max_connections.",
        ),
        _rule(
            "PostgresTransactionIdAgeHigh",
            # collector/pg_database_wraparound.go:40 (off by default: --collector.database_wraparound), label datname:
            # age(datfrozenxid) in transactions despite the _seconds suffix. The primary's only (standbys repeat it).
            f"pg_database_wraparound_age_datfrozenxid_seconds{{{pods}}} > {XID_AGE_LIMIT} "
            f"and on (namespace, pod) (pg_replication_is_replica{{{pods}}} == 0)",
            "30m",
            "warning",
            "Transaction ID age of {{ $labels.datname }} on {{ $labels.pod }} is high",
            "Database {{ $labels.datname }} on {{ $labels.namespace }}/{{ $labels.pod }} has unfrozen transaction IDs "
            "{{ $value | humanize }} transactions old: VACUUM is not keeping up, and PostgreSQL stops writes near 2.1 billion.",
        ),
    ]


def _replication_rules(ns: str, name: str, max_lag_bytes: int) -> list[dict[str, Any]]:
    pods, where = f'namespace="{ns}",pod=~"{pod_regex(name)}"', f"{ns}/{name}"
    # pg_stat_replication_*: collector/pg_stat_replication.go:37-46 (default on), one series per walsender on the
    # primary, labels application_name (our standbys send their pod name: scripts/init-managed-conf.sh) and state.
    streaming = f'pg_stat_replication_pg_current_wal_lsn_bytes{{{pods},state="streaming",application_name=~"{pod_regex(name)}"}}'
    one_primary = f"on () (count(pg_replication_is_replica{{{pods}}} == 0) == 1)"
    # A pod whose exporter answers but is no running primary, and that the primary does not see streaming.
    seen = f'label_replace({streaming}, "pod", "$1", "application_name", "(.+)")'
    silent = f"((pg_up{{{pods}}} unless on (pod) (pg_replication_is_replica{{{pods}}} == 0)) unless on (pod) {seen}) and {one_primary}"
    # Standbys the StatefulSets want (kube-state-metrics v2.20.0 internal/store/statefulset.go:162, labels :40;
    # all pods but the primary) and fewer streaming: catches a standby pod that does not run at all.
    sets = f'statefulset=~"{name}|{standby_set(name)}"'
    wanted = f"sum({_either('kube_statefulset_replicas', ns, sets)}) - 1"
    missing = f"(({wanted}) > (count({streaming}) or vector(0))) and {one_primary}"
    return [
        _rule(
            "PostgresStandbyNotStreaming",
            f"({silent}) or (({missing}) unless on () ({silent}))",
            "5m",
            "critical",
            f"A standby of {where} is not streaming",
            "{{ if $labels.pod }}Standby {{ $labels.pod }} is not streaming from the primary"
            "{{ else }}Fewer standbys stream than the {{ $value }} wanted{{ end }}" + f" in {where}.",
        ),
        _rule(
            "PostgresReplicationLagHigh",
            # pg_wal_lsn_diff: the primary's current WAL position minus the standby's replay position, in bytes.
            f'pg_stat_replication_pg_wal_lsn_diff{{{pods},application_name=~"{pod_regex(name)}"}} > {max_lag_bytes}',
            "5m",
            "warning",
            "Standby {{ $labels.application_name }} lags behind",
            "Standby {{ $labels.application_name }} of " + where + " replays {{ $value | humanize1024 }}B behind the "
            f"primary (replication.maxLagBytes {max_lag_bytes}); readiness takes it out of the read-only Service.",
        ),
        _rule(
            "PostgresReplicationSlotAtRisk",
            # collector/pg_replication_slots.go:94-101 (0.20.0 renamed it from pg_replication_slot_wal_status,
            # CHANGELOG.md:30), value 1 with the slot's current wal_status as a label.
            f'pg_replication_slots_wal_status{{{pods},wal_status=~"unreserved|lost"}} == 1',
            "1m",
            "critical",
            "Replication slot {{ $labels.slot_name }} is {{ $labels.wal_status }}",
            "Slot {{ $labels.slot_name }} on {{ $labels.namespace }}/{{ $labels.pod }} is {{ $labels.wal_status }}: "
            "its standby needs WAL past max_slot_wal_keep_size (lost: it can no longer catch up).",
        ),
    ]


def _volume_rules(ns: str, name: str) -> list[dict[str, Any]]:
    # kubelet_volume_stats_{used,capacity}_bytes: kubernetes pkg/kubelet/metrics/collectors/volume_stats.go
    # volumeStats{Used,Capacity}BytesDesc (names: pkg/kubelet/metrics/metrics.go VolumeStats*BytesKey, subsystem
    # "kubelet"), labels namespace and persistentvolumeclaim, for every claim a pod on the node mounts.
    claims = f'persistentvolumeclaim=~"{claim_name(f"({pod_regex(name)})")}"'
    ratio = f"{_either('kubelet_volume_stats_used_bytes', ns, claims)} / {_either('kubelet_volume_stats_capacity_bytes', ns, claims)}"
    text = "Claim {{ $labels.persistentvolumeclaim }} of " + f"{ns}/{name}" + " is {{ $value | humanizePercentage }} full."
    return [
        _rule("PostgresVolumeFilling", f"{ratio} > 0.8", "5m", "warning", "Volume {{ $labels.persistentvolumeclaim }} over 80%", text),
        _rule("PostgresVolumeFull", f"{ratio} > 0.9", "2m", "critical", "Volume {{ $labels.persistentvolumeclaim }} over 90%", text),
    ]


def _cronjob_rule(alert: str, what: str, ns: str, cronjob: str, hours: int) -> dict[str, Any]:
    # kube-state-metrics v2.20.0 internal/store/cronjob.go:181 kube_cronjob_status_last_successful_time (only once
    # a run succeeded) and :120 kube_cronjob_created, labels namespace and cronjob (:48).
    last = _either("kube_cronjob_status_last_successful_time", ns, f'cronjob="{cronjob}"')
    created = _either("kube_cronjob_created", ns, f'cronjob="{cronjob}"')
    limit = hours * 3600
    return _rule(
        alert,
        f"(time() - {last} > {limit}) or (time() - {created} > {limit} unless on (cronjob) {last})",
        "10m",
        "warning",
        f"No successful {what} of {ns}/{cronjob} in {hours}h",
        f"The {what} CronJob {ns}/{cronjob} has not completed a run for {{{{ $value | humanizeDuration }}}} (more than {hours}h).",
    )


def _wal_rules(ns: str, name: str, wal: WalArchiveAlerts) -> list[dict[str, Any]]:
    pods, where = f'namespace="{ns}",pod=~"{pod_regex(name)}"', f"{ns}/{name}"
    # collector/pg_stat_archiver.go:27 (0.20.1, default on): pg_stat_archiver_failed_count (:44, a counter) and
    # pg_stat_archiver_last_archive_age (:50, seconds since last_archived_time, absent before the first archive :94).
    # The primary's only: a standby that was a primary keeps its old counters.
    primary = f"on (namespace, pod) (pg_replication_is_replica{{{pods}}} == 0)"
    # An idle primary writes no WAL and archive_timeout switches no segment (docs: archive_timeout), so an old
    # archive only counts while rows change: pg_stat_database_tup_* (collector/pg_stat_database.go:116-136).
    window = f"[{wal.max_age_seconds}s]"
    changed = " or ".join(f"increase(pg_stat_database_tup_{c}{{{pods}}}{window}) > 0" for c in ("inserted", "updated", "deleted"))
    writes = f"on (namespace, pod) count by (namespace, pod) ({changed})"
    rules = [
        _rule(
            "PostgresWalArchivingFailing",
            # The archiver retries a failing segment at least every minute (pgarch.c PGARCH_AUTOWAKE_INTERVAL).
            f"increase(pg_stat_archiver_failed_count{{{pods}}}[5m]) > 0 and {primary}",
            "10m",
            "critical",
            "WAL archiving of {{ $labels.pod }} fails",
            "archive_command on {{ $labels.namespace }}/{{ $labels.pod }} failed {{ $value | humanize }} times in 5 minutes: "
            "the primary keeps the WAL in pg_wal until it succeeds, and point-in-time recovery ends at the last archived segment.",
        ),
        _rule(
            "PostgresWalArchiveBehind",
            f"pg_stat_archiver_last_archive_age{{{pods}}} > {wal.max_age_seconds} and {primary} and {writes}",
            "5m",
            "warning",
            "The newest archived WAL of {{ $labels.pod }} is old",
            "{{ $labels.namespace }}/{{ $labels.pod }} archived its last WAL segment {{ $value | humanizeDuration }} ago while "
            f"writing (limit {wal.max_age_seconds}s): the recovery point of {where} falls behind.",
        ),
    ]
    if wal.backup_cronjob is not None:
        rules.append(_cronjob_rule("PostgresBaseBackupMissing", "base backup", ns, wal.backup_cronjob, wal.backup_max_age_hours))
    return rules


def _longhorn_rule(backups: LonghornBackupAge) -> dict[str, Any]:
    # longhorn-manager v1.10.1 metrics_collector/backup_collector.go:43-45 longhorn_backup_state{volume, backup,
    # recurring_job}, 3 = Completed (:100). Longhorn exports no backup time: a backup counts as recent when its
    # series is Completed now but was not Completed max_age_hours ago. recurring_job is the RecurringJob's name
    # (app/recurringjob/volume.go:104). A new Prometheus (no history that far back) sees every backup as recent.
    job, hours = f'recurring_job="{backups.recurring_job}"', backups.max_age_hours
    recent = f"(longhorn_backup_state{{{job}}} == 3 unless on (backup) (longhorn_backup_state{{{job}}} offset {hours}h == 3))"
    per_volume = f"count by (volume) (longhorn_backup_state{{{job}}}) unless on (volume) {recent}"
    return _rule(
        "PostgresLonghornBackupTooOld",
        f"({per_volume}) or absent_over_time(longhorn_backup_state{{{job}}}[{hours}h])",
        "1h",
        "warning",
        f"No recent Longhorn backup from {backups.recurring_job}",
        "{{ if $labels.volume }}Volume {{ $labels.volume }} has{{ else }}No volume has{{ end }} a backup from "
        f"recurring job {backups.recurring_job} completed in the last {hours}h.",
    )


def _cert_rule(ns: str, name: str, expiry: CertManagerExpiry | int) -> dict[str, Any]:
    if isinstance(expiry, CertManagerExpiry):
        # cert-manager v1.21.1 internal/collectors/certificate_collector.go:33, labels name and namespace.
        certificate = f'name="{expiry.certificate}"'
        left = f"{_either('certmanager_certificate_expiration_timestamp_seconds', ns, certificate)} - time()"
    else:
        # The program knows the end of validity: this fires when nobody ran `pulumi up` inside the renewal window.
        left = f"vector({expiry}) - time()"
    return _rule(
        "PostgresCertificateExpiring",
        f"{left} < {CERT_WARNING_DAYS} * {DAY}",
        "10m",
        "warning",
        f"The TLS certificate of {ns}/{name} expires soon",
        f"The server certificate of {ns}/{name} expires in {{{{ $value | humanizeDuration }}}} (alert at {CERT_WARNING_DAYS} days).",
    )


def rule_spec(args: MonitoringArgs, namespace: str, expiry_epoch: int | None) -> dict[str, Any]:
    """The PrometheusRule spec for a known namespace; expiry_epoch: GeneratedExpiry's time, in seconds."""
    rules = _server_rules(namespace, args.name, args.replication)
    if args.replication:
        rules += _replication_rules(namespace, args.name, args.max_lag_bytes)
    rules += _volume_rules(namespace, args.name)
    if args.dump_cronjob is not None:
        rules.append(_cronjob_rule("PostgresDumpMissing", "dump", namespace, args.dump_cronjob, args.dump_max_age_hours))
    if args.wal_archiving is not None:
        rules += _wal_rules(namespace, args.name, args.wal_archiving)
    if args.longhorn_backups is not None:
        rules.append(_longhorn_rule(args.longhorn_backups))
    if isinstance(args.tls_expiry, CertManagerExpiry):
        rules.append(_cert_rule(namespace, args.name, args.tls_expiry))
    elif expiry_epoch is not None:
        rules.append(_cert_rule(namespace, args.name, expiry_epoch))
    return {"groups": [{"name": f"pgstack-{args.name}", "rules": rules}]}
