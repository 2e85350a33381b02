"""pgstack's alerts under `promtool test rules`: for every alert a case where it fires and one where it stays quiet.

The input series use the real metric names and labels of their exporters (cited in components/postgres_alerts.py):
a set ``pg`` in namespace ``db``, primary pg-0, standbys pg-standby-1 and pg-standby-2. One promtool run checks
every case (two rule files: replication with cert-manager, dumps and Longhorn backups; and replication off with
a generated certificate), and `promtool check rules` lints both files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.postgres_alerts import ANCHORS, rule_spec
from components.postgres_monitoring_args import CertManagerExpiry, LonghornBackupAge, MonitoringArgs, WalArchiveAlerts

pytestmark = pytest.mark.scanner

SELECTOR = {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": "pg"}
FULL = MonitoringArgs(
    namespace="db",
    name="pg",
    selector=SELECTOR,
    dump_cronjob="pg-backup",
    longhorn_backups=LonghornBackupAge("longhorn-postgres-backup"),
    tls_expiry=CertManagerExpiry("pg-tls"),
    wal_archiving=WalArchiveAlerts(max_age_seconds=600, backup_cronjob="pg-wal-backup"),
)
PLAIN = MonitoringArgs(namespace="db", name="pg", selector=SELECTOR, replication=False)
GENERATED_NOT_AFTER = 15 * 86400  # the generated certificate ends 15 days after the tests' time 0

# The target labels the PodMonitor gives the exporter's series (job <namespace>/<PodMonitor>).
T = 'job="db/pg",namespace="db"'
P0, S1, S2 = f'{T},pod="pg-0"', f'{T},pod="pg-standby-1"', f'{T},pod="pg-standby-2"'
TARGET = {"job": "db/pg", "namespace": "db"}
RUNBOOK = "docs/alerts.md#"
LONG = "1h"


def series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


def healthy(minutes: int = 30) -> list[dict[str, str]]:
    """Three pods up, pg-0 the primary, both standbys streaming."""
    n = f"x{minutes}"
    out = [series("up", p, f"1{n}") for p in (P0, S1, S2)] + [series("pg_up", p, f"1{n}") for p in (P0, S1, S2)]
    out += [series("pg_replication_is_replica", P0, f"0{n}"), series("pg_replication_is_replica", S1, f"1{n}")]
    out += [series("pg_replication_is_replica", S2, f"1{n}")]
    for standby in ("pg-standby-1", "pg-standby-2"):
        labels = f'{P0},application_name="{standby}",client_addr="10.0.0.2",slot_name="{standby.replace("-", "_")}",state="streaming"'
        out.append(series("pg_stat_replication_pg_current_wal_lsn_bytes", labels, f"5e8{n}"))
    return out


def without(inputs: list[dict[str, str]], *parts: str) -> list[dict[str, str]]:
    return [s for s in inputs if not all(p in s["series"] for p in parts)]


def case(alert: str, inputs: list[dict[str, str]], at: str, fired: list[dict[str, Any]], interval: str = "5m") -> dict[str, Any]:
    """One test group: ``alert`` at ``at`` fires exactly ``fired`` (label sets, each with its description). The rules
    are evaluated every ``interval`` too: the day-long cases take LONG, or promtool spends seconds on them."""
    exp = []
    for want in fired:
        labels = {k: v for k, v in want.items() if k not in ("description", "summary")}
        exp.append({"exp_labels": labels | {"severity": want.get("severity", "warning")}, "exp_annotations": _annotations(alert, want)})
    return {"interval": interval, "input_series": inputs, "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": exp}]}


def _annotations(alert: str, want: dict[str, Any]) -> dict[str, str]:
    return {"summary": want["summary"], "description": want["description"], "runbook": RUNBOOK + ANCHORS[alert]}


def crit(**labels: Any) -> dict[str, Any]:
    return labels | {"severity": "critical"}


# ------------------------------------------------------------------ the cases, alert by alert

STANDBY_1_LAG = f'{P0},application_name="pg-standby-1",client_addr="10.0.0.2",slot_name="pg_standby_1",state="streaming"'
LAG_LABELS = TARGET | {"pod": "pg-0", "application_name": "pg-standby-1", "client_addr": "10.0.0.2", "slot_name": "pg_standby_1"}


def full_cases() -> list[dict[str, Any]]:
    cases = exporter_cases() + primary_cases() + standby_cases() + lag_and_slot_cases() + volume_cases() + backup_cases()
    return cases + load_cases() + wal_cases()


def exporter_cases() -> list[dict[str, Any]]:
    blind = "the alerts of db/pg are blind."
    down = [s if s["series"] != f"up{{{S1}}}" else series("up", S1, "0x30") for s in healthy()]
    return [
        case("PostgresExporterDown", healthy(), "20m", []),
        case(
            "PostgresExporterDown",
            down,
            "20m",
            [
                TARGET
                | {
                    "pod": "pg-standby-1",
                    "summary": "No metrics from db/pg",
                    "description": f"Prometheus cannot scrape the exporter of pg-standby-1 (none at all when the pod label is empty): {blind}",  # noqa: E501
                }
            ],
        ),
        case(
            "PostgresExporterDown",
            [series("up", 'job="db/other",namespace="db",pod="other-0"', "1x30")],
            "20m",
            [
                {
                    "namespace": "db",
                    "summary": "No metrics from db/pg",
                    "description": f"Prometheus cannot scrape the exporter of  (none at all when the pod label is empty): {blind}",
                }
            ],
        ),
    ]


def primary_cases() -> list[dict[str, Any]]:
    no_primary = [s for s in healthy() if "pg_replication_is_replica" not in s["series"] or "pg-0" not in s["series"]]
    text = {"summary": "No primary in db/pg", "description": "No pod of db/pg runs a primary that answers: writes fail."}
    return [
        case("PostgresPrimaryDown", healthy(), "10m", []),
        case("PostgresPrimaryDown", no_primary, "10m", [crit(**text)]),
    ]


def standby_cases() -> list[dict[str, Any]]:
    summary = "A standby of db/pg is not streaming"
    # pg-standby-1's walsender is there but not streaming (catching up).
    catchup = f'{P0},application_name="pg-standby-1",client_addr="10.0.0.2",slot_name="pg_standby_1",state="catchup"'
    silent = [
        *without(healthy(), "pg_stat_replication", "pg-standby-1"),
        series("pg_stat_replication_pg_current_wal_lsn_bytes", catchup, "5e8x30"),
    ]
    # pg-standby-2 does not run at all (no exporter): only the StatefulSets say it should. kube-state-metrics scraped
    # without honorLabels: the object's namespace is exported_namespace.
    gone = [s for s in without(healthy(), "pg_stat_replication", "pg-standby-2") if 'pod="pg-standby-2"' not in s["series"]]
    ksm = 'job="kube-state-metrics",namespace="monitoring",exported_namespace="db"'
    gone += [series("kube_statefulset_replicas", f'{ksm},statefulset="pg"', "1x30")]
    gone += [series("kube_statefulset_replicas", f'{ksm},statefulset="pg-standby"', "2x30")]
    primary_gone = without(silent, "pg_replication_is_replica", "pg-0")
    # Neither standby runs: no walsender at all.
    both_gone = [s for s in gone if "pg-standby-1" not in s["series"]]
    return [
        case("PostgresStandbyNotStreaming", healthy() + gone[-2:], "20m", []),
        case(
            "PostgresStandbyNotStreaming",
            # kube-state-metrics also sees one standby short: the pod's alert says it, not a second one.
            silent + gone[-2:],
            "20m",
            [
                crit(
                    **TARGET,
                    pod="pg-standby-1",
                    summary=summary,
                    description="Standby pg-standby-1 is not streaming from the primary in db/pg.",
                )
            ],
        ),
        case(
            "PostgresStandbyNotStreaming",
            gone,
            "20m",
            [crit(summary=summary, description="Fewer standbys stream than the 2 wanted in db/pg.")],
        ),
        case(
            "PostgresStandbyNotStreaming",
            both_gone,
            "20m",
            [crit(summary=summary, description="Fewer standbys stream than the 2 wanted in db/pg.")],
        ),
        # Without a primary, PostgresPrimaryDown speaks instead.
        case("PostgresStandbyNotStreaming", primary_gone, "20m", []),
    ]


def lag_and_slot_cases() -> list[dict[str, Any]]:
    lag = {"summary": "Standby pg-standby-1 lags behind"}
    desc = "Standby pg-standby-1 of db/pg replays 20MiB behind the primary (replication.maxLagBytes 16777216); "
    desc += "readiness takes it out of the read-only Service."
    slot = 'slot_name="pg_standby_1",slot_type="physical"'
    lost = {"summary": "Replication slot pg_standby_1 is lost"}
    lost_desc = "Slot pg_standby_1 on db/pg-0 is lost: its standby needs WAL past max_slot_wal_keep_size (lost: it can no longer catch up)."
    return [
        case("PostgresReplicationLagHigh", [series("pg_stat_replication_pg_wal_lsn_diff", STANDBY_1_LAG, "1048576x30")], "20m", []),
        case(
            "PostgresReplicationLagHigh",
            [series("pg_stat_replication_pg_wal_lsn_diff", STANDBY_1_LAG, "20971520x30")],
            "20m",
            [LAG_LABELS | {"state": "streaming", "description": desc} | lag],
        ),
        case(
            "PostgresReplicationSlotAtRisk",
            [series("pg_replication_slots_wal_status", f'{P0},{slot},wal_status="reserved"', "1x30")],
            "10m",
            [],
        ),
        case(
            "PostgresReplicationSlotAtRisk",
            [series("pg_replication_slots_wal_status", f'{P0},{slot},wal_status="lost"', "1x30")],
            "10m",
            [crit(**TARGET, pod="pg-0", slot_name="pg_standby_1", slot_type="physical", wal_status="lost", description=lost_desc, **lost)],
        ),
    ]


def volume(claim: str, used: float) -> list[dict[str, str]]:
    # kubelet's series, scraped with honorLabels (kube-prometheus): namespace is the claim's.
    labels = f'job="kubelet",metrics_path="/metrics",node="n1",namespace="db",persistentvolumeclaim="{claim}"'
    return [
        series("kubelet_volume_stats_used_bytes", labels, f"{used}x30"),
        series("kubelet_volume_stats_capacity_bytes", labels, "1e10x30"),
    ]


def volume_cases() -> list[dict[str, Any]]:
    labels = {"job": "kubelet", "metrics_path": "/metrics", "node": "n1", "namespace": "db", "persistentvolumeclaim": "data-pg-standby-2"}
    filling = {"summary": "Volume data-pg-standby-2 over 80%", "description": "Claim data-pg-standby-2 of db/pg is 85% full."}
    full = {"summary": "Volume data-pg-standby-2 over 90%", "description": "Claim data-pg-standby-2 of db/pg is 95% full."}
    quiet = volume("data-pg-0", 5e9) + volume("data-other-0", 9.9e9) + volume("pg-dumps", 9.9e9)
    return [
        case("PostgresVolumeFilling", quiet, "20m", []),
        case("PostgresVolumeFull", quiet + volume("data-pg-standby-2", 8.5e9), "20m", []),
        case("PostgresVolumeFilling", volume("data-pg-standby-2", 8.5e9), "20m", [labels | filling]),
        case("PostgresVolumeFull", volume("data-pg-standby-2", 9.5e9), "20m", [crit(**labels, **full)]),
    ]


def backup_cases() -> list[dict[str, Any]]:
    ksm = 'job="kube-state-metrics",namespace="db",cronjob="pg-backup"'
    dump = {"summary": "No successful dump of db/pg-backup in 26h"}
    never = [series("kube_cronjob_created", ksm, "0x30")]
    lh = 'job="longhorn",namespace="longhorn-system",recurring_job="longhorn-postgres-backup"'
    old = [series("longhorn_backup_state", f'{lh},volume="pvc-a",backup="backup-1"', "3x30")]
    fresh = [*old, series("longhorn_backup_state", f'{lh},volume="pvc-a",backup="backup-2"', "_x19 2 3x10")]
    # The newest backup of pvc-a failed (4 = Error): not a completed backup.
    failed = [*old, series("longhorn_backup_state", f'{lh},volume="pvc-a",backup="backup-2"', "_x19 2 4x10")]
    # A backup still in progress max_age_hours ago that completed since is recent.
    slow = [*old, series("longhorn_backup_state", f'{lh},volume="pvc-a",backup="backup-3"', "_ 2x1 3x28")]
    stale = {"summary": "No recent Longhorn backup from longhorn-postgres-backup"}
    text = "a backup from recurring job longhorn-postgres-backup completed in the last 26h."
    return [
        case("PostgresDumpMissing", [*never, series("kube_cronjob_status_last_successful_time", ksm, "90000x30")], "28h", [], LONG),
        case(
            "PostgresDumpMissing",
            [*never, series("kube_cronjob_status_last_successful_time", ksm, "0x30")],
            "28h",
            [
                {
                    "job": "kube-state-metrics",
                    "namespace": "db",
                    "cronjob": "pg-backup",
                    "description": "The dump CronJob db/pg-backup has not completed a run for 1d 4h 0m 0s (more than 26h).",
                }
                | dump
            ],
            LONG,
        ),
        case(
            "PostgresDumpMissing",
            never,
            "28h",
            [
                {
                    "job": "kube-state-metrics",
                    "namespace": "db",
                    "cronjob": "pg-backup",
                    "description": "The dump CronJob db/pg-backup has not completed a run for 1d 4h 0m 0s (more than 26h).",
                }
                | dump
            ],
            LONG,
        ),
        case("PostgresDumpMissing", [series("kube_cronjob_created", ksm, "3600x30")], "2h", [], LONG),
        case("PostgresLonghornBackupTooOld", fresh, "28h", [], LONG),
        case("PostgresLonghornBackupTooOld", slow, "28h", [], LONG),
        case("PostgresLonghornBackupTooOld", failed, "28h", [{"volume": "pvc-a", "description": f"Volume pvc-a has {text}"} | stale], LONG),
        case("PostgresLonghornBackupTooOld", old, "28h", [{"volume": "pvc-a", "description": f"Volume pvc-a has {text}"} | stale], LONG),
        case(
            "PostgresLonghornBackupTooOld",
            [series("up", T + ',pod="pg-0"', "1x30")],
            "28h",
            [{"recurring_job": "longhorn-postgres-backup", "description": f"No volume has {text}"} | stale],
            LONG,
        ),
    ]


def load_cases() -> list[dict[str, Any]]:
    def activity(active: int, idle: int) -> list[dict[str, str]]:
        base = f'{P0},datname="app",usename="app",application_name="",backend_type="client backend",wait_event_type="",wait_event=""'
        return [
            series("pg_stat_activity_count", f'{base},state="active"', f"{active}x30"),
            series("pg_stat_activity_count", f'{base},state="idle"', f"{idle}x30"),
            series("pg_settings_max_connections", P0, "100x30"),
        ]

    conns = {"summary": "Connections of pg-0 over 80% of max_connections", "description": "db/pg-0 uses 90% of max_connections."}
    roles = [series("pg_replication_is_replica", P0, "0x40"), series("pg_replication_is_replica", S1, "1x40")]

    def xid(primary: float, standby: float) -> list[dict[str, str]]:
        name = "pg_database_wraparound_age_datfrozenxid_seconds"
        return [*roles, series(name, f'{P0},datname="app"', f"{primary}x40"), series(name, f'{S1},datname="app"', f"{standby}x40")]

    old = {"summary": "Transaction ID age of app on pg-0 is high"}
    old_desc = "Database app on db/pg-0 has unfrozen transaction IDs 1.5G transactions old: VACUUM is not keeping up, and "
    old_desc += "PostgreSQL stops writes near 2.1 billion."
    certs = 'job="cert-manager",namespace="cert-manager",exported_namespace="db",issuer_name="ca",issuer_kind="Issuer",issuer_group="cert-manager.io"'  # noqa: E501
    cert_labels = {
        "job": "cert-manager",
        "namespace": "cert-manager",
        "exported_namespace": "db",
        "issuer_name": "ca",
        "issuer_kind": "Issuer",
    }
    soon = {"summary": "The TLS certificate of db/pg expires soon"}
    return [
        case("PostgresConnectionsHigh", activity(10, 10), "20m", []),
        case("PostgresConnectionsHigh", activity(50, 40), "20m", [{"namespace": "db", "pod": "pg-0"} | conns]),
        case("PostgresTransactionIdAgeHigh", xid(1e8, 1.5e9), "35m", []),
        case(
            "PostgresTransactionIdAgeHigh",
            xid(1.5e9, 1.5e9),
            "35m",
            [TARGET | {"pod": "pg-0", "datname": "app", "description": old_desc} | old],
        ),
        case(
            "PostgresCertificateExpiring",
            [series("certmanager_certificate_expiration_timestamp_seconds", f'{certs},name="pg-tls"', "2592000x30")],
            "20m",
            [],
        ),
        case(
            "PostgresCertificateExpiring",
            [series("certmanager_certificate_expiration_timestamp_seconds", f'{certs},name="pg-tls"', "864000x30")],
            "20m",
            [
                cert_labels
                | {
                    "issuer_group": "cert-manager.io",
                    "name": "pg-tls",
                    "description": "The server certificate of db/pg expires in 9d 23h 40m 0s (alert at 14 days).",
                }
                | soon
            ],
        ),
    ]


def wal_cases() -> list[dict[str, Any]]:
    roles = [series("pg_replication_is_replica", P0, "0x40"), series("pg_replication_is_replica", S1, "1x40")]
    tuples = f'{P0},datid="16384",datname="app"'
    writing = [series("pg_stat_database_tup_inserted", tuples, "0+100x40"), series("pg_stat_database_tup_updated", tuples, "0x40")]
    idle = [series("pg_stat_database_tup_inserted", tuples, "500x40")]

    def archiver(failed: str, age: str) -> list[dict[str, str]]:
        # One series per pod; pg-standby-1 was the primary once and kept its counters: never alerts.
        return [
            *roles,
            series("pg_stat_archiver_failed_count", P0, failed),
            series("pg_stat_archiver_last_archive_age", P0, age),
            series("pg_stat_archiver_failed_count", S1, "0+10x40"),
            series("pg_stat_archiver_last_archive_age", S1, "4000+60x40"),
        ]

    ok, stuck = archiver("3x40", "30x40"), archiver("0+15x40", "100+300x40")
    failing = {"summary": "WAL archiving of pg-0 fails"}
    fail_desc = "archive_command on db/pg-0 failed 15 times in 5 minutes: the primary keeps the WAL in pg_wal until it "
    fail_desc += "succeeds, and point-in-time recovery ends at the last archived segment."
    behind = {"summary": "The newest archived WAL of pg-0 is old"}
    behind_desc = "db/pg-0 archived its last WAL segment 31m 40s ago while writing (limit 600s): the recovery point of db/pg falls behind."
    ksm = 'job="kube-state-metrics",namespace="db",cronjob="pg-wal-backup"'
    base = {"job": "kube-state-metrics", "namespace": "db", "cronjob": "pg-wal-backup"}
    base["summary"] = "No successful base backup of db/pg-wal-backup in 26h"
    base_desc = "The base backup CronJob db/pg-wal-backup has not completed a run for 1d 4h 0m 0s (more than 26h)."
    return [
        case("PostgresWalArchivingFailing", ok + writing, "30m", []),
        case("PostgresWalArchivingFailing", stuck + writing, "30m", [crit(**TARGET, pod="pg-0", description=fail_desc, **failing)]),
        case("PostgresWalArchiveBehind", ok + writing, "30m", []),
        # Nothing written: archive_timeout switches no segment, the old archive is all there is.
        case("PostgresWalArchiveBehind", stuck + idle, "30m", []),
        case("PostgresWalArchiveBehind", stuck + writing, "30m", [TARGET | {"pod": "pg-0", "description": behind_desc} | behind]),
        case("PostgresBaseBackupMissing", [series("kube_cronjob_status_last_successful_time", ksm, "90000x30")], "28h", [], LONG),
        case("PostgresBaseBackupMissing", [series("kube_cronjob_created", ksm, "0x30")], "28h", [base | {"description": base_desc}], LONG),
    ]


def plain_cases() -> list[dict[str, Any]]:
    """Replication off: every pod a primary of its own; a generated certificate."""
    one_down = [series("pg_up", P0, "1x30"), series("pg_up", f'{T},pod="pg-1"', "0x30"), series("pg_replication_is_replica", P0, "0x30")]
    soon = {"summary": "The TLS certificate of db/pg expires soon"}
    return [
        case("PostgresPrimaryDown", [series("pg_up", P0, "1x30"), series("pg_replication_is_replica", P0, "0x30")], "10m", []),
        case(
            "PostgresPrimaryDown",
            one_down,
            "10m",
            [
                crit(
                    **TARGET,
                    pod="pg-1",
                    summary="No primary in db/pg",
                    description="No pod of db/pg runs a primary that answers (pg-1 is down): writes fail.",
                )
            ],
        ),
        case("PostgresCertificateExpiring", [], "10m", []),
        case(
            "PostgresCertificateExpiring",
            [],
            "26h",
            [{"description": "The server certificate of db/pg expires in 13d 22h 0m 0s (alert at 14 days)."} | soon],
            LONG,
        ),
    ]


# ------------------------------------------------------------------ the run


def _promtool() -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (apt-get install -y --no-install-recommends prometheus)"
    return promtool


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("rules")
    full, plain = directory / "full.yaml", directory / "plain.yaml"
    full.write_text(yaml.safe_dump(rule_spec(FULL, "db", None), sort_keys=False))
    plain.write_text(yaml.safe_dump(rule_spec(PLAIN, "db", GENERATED_NOT_AFTER), sort_keys=False))
    return full, plain


def test_promtool_checks_the_rules(rule_files: tuple[Path, Path]) -> None:
    result = subprocess.run([_promtool(), "check", "rules", *map(str, rule_files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 15 rules found" in result.stdout and "SUCCESS: 7 rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_under_promtool(rule_files: tuple[Path, Path]) -> None:
    full, plain = rule_files
    groups = {"full": (full, full_cases()), "plain": (plain, plain_cases())}
    # Every alert has a case where it fires and one where it stays quiet.
    tested = [(t["alert_rule_test"][0]["alertname"], bool(t["alert_rule_test"][0]["exp_alerts"])) for _, c in groups.values() for t in c]
    assert {(a, f) for a in ANCHORS for f in (True, False)} <= set(tested)
    files = []
    for key, (rules, cases) in groups.items():
        for interval in sorted({t["interval"] for t in cases}):
            path = full.parent / f"test-{key}-{interval}.yaml"
            tests = [t for t in cases if t["interval"] == interval]
            path.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": interval, "tests": tests}, sort_keys=False))
            files.append(str(path))
    result = subprocess.run([_promtool(), "test", "rules", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
