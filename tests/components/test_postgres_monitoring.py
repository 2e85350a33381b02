"""PostgresMonitoring on its own: the PodMonitor and PrometheusRule, each only when asked, valid against the
prometheus-operator 0.93.0 CRDs, every alert with its section in docs/alerts.md, and the certificate variants."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pulumi
import pytest
import yaml

from components.postgres_alerts import ANCHORS, METRICS_PORT, rule_spec
from components.postgres_monitoring import PostgresMonitoring
from components.postgres_monitoring_args import CertManagerExpiry, GeneratedExpiry, LonghornBackupAge, MonitoringArgs, WalArchiveAlerts
from components.postgres_names import instance_labels
from tests.conftest import run_component
from tests.tools.test_render import _strict
from tools.mock_run import Run
from tools.mock_run import plain as _plain

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "prometheus-operator-0.93.0"
TYPES = ("kubernetes:monitoring.coreos.com/v1:PodMonitor", "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
SELECTOR = instance_labels("pg")
NOT_AFTER = "2027-03-04T05:06:07.123456789Z"  # Go's time.MarshalText, as pulumi-tls writes validity_end_time
NOT_AFTER_EPOCH = 1804136767  # date -d 2027-03-04T05:06:07Z +%s


def _args(**overrides: Any) -> MonitoringArgs:
    base: dict[str, Any] = {"namespace": "db", "name": "pg", "selector": SELECTOR, "labels": {"release": "kube-prometheus-stack"}}
    return MonitoringArgs(**(base | overrides))


def _run(args: MonitoringArgs) -> Run:
    return run_component(lambda: PostgresMonitoring("pg-monitoring", args))


def _objects(run: Run) -> dict[str, dict[str, Any]]:
    """kind -> the object as Kubernetes gets it."""
    out = {}
    for r in [r for t in TYPES for r in run.of_type(t)]:
        obj = _plain(r.inputs)
        out[obj["kind"]] = obj
    return out


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    """kind -> a validator of the strict openAPIV3Schema of the reference CRDs (monitoring.coreos.com/v1), built
    once (jsonschema.validate checks the large schema against its metaschema on every call), read with libyaml."""
    assert REFERENCE.is_dir(), f"{REFERENCE} is missing: the tests need ../shared beside the repository"
    out = {}
    for kind in ("podmonitors", "prometheusrules"):
        path = REFERENCE / f"monitoring.coreos.com_{kind}.yaml"
        # Go's RE2 takes a flag group after '^' (partial_response_strategy: '^(?i)(abort|warn)?$'); Python only first.
        crd = yaml.load(path.read_text().replace("^(?i)", "(?i)^"), Loader=yaml.CSafeLoader)
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        schema = _strict(version["schema"]["openAPIV3Schema"])
        out[crd["spec"]["names"]["kind"]] = jsonschema.validators.validator_for(schema)(schema)
    return out


@pytest.fixture(scope="module")
def full_run() -> Run:
    return _run(
        _args(
            dump_cronjob="pg-backup",
            longhorn_backups=LonghornBackupAge("longhorn-postgres-backup"),
            tls_expiry=GeneratedExpiry(pulumi.Output.from_input(NOT_AFTER)),
            wal_archiving=WalArchiveAlerts(backup_cronjob="pg-wal-backup"),
        )
    )


@pytest.mark.parametrize(("pod_monitor", "prometheus_rule"), [(True, True), (True, False), (False, True)])
def test_objects_are_registered_only_when_asked(pod_monitor: bool, prometheus_rule: bool) -> None:
    run = _run(_args(pod_monitor=pod_monitor, prometheus_rule=prometheus_rule))
    component = run.one("pgstack:index:PostgresMonitoring", "pg-monitoring")
    objects = _objects(run)
    assert set(objects) == {k for k, on in (("PodMonitor", pod_monitor), ("PrometheusRule", prometheus_rule)) if on}
    for r in [r for t in TYPES for r in run.of_type(t)]:
        assert r.parent == component.urn
        assert r.name in ("pg-monitoring-pod-monitor", "pg-monitoring-rules")
    for obj in objects.values():
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        assert obj["metadata"] == {"name": "pg", "namespace": "db", "labels": SELECTOR | {"release": "kube-prometheus-stack"}}


def test_the_pod_monitor_scrapes_the_metrics_port_of_the_set(full_run: Run) -> None:
    spec = _objects(full_run)["PodMonitor"]["spec"]
    assert spec == {
        "selector": {"matchLabels": SELECTOR},
        "podMetricsEndpoints": [{"port": METRICS_PORT, "interval": "30s", "path": "/metrics", "scheme": "http"}],
    }
    assert METRICS_PORT == "metrics"  # the exporter sidecar's port name (issue 19)


def test_both_objects_pass_the_strict_crd_schemas(full_run: Run, schemas: dict[str, Any]) -> None:
    objects = _objects(full_run)
    assert set(objects) == {"PodMonitor", "PrometheusRule"}
    for kind, obj in objects.items():
        schemas[kind].validate(obj)
    cert_manager = rule_spec(_args(tls_expiry=CertManagerExpiry("pg-tls"), replication=False), "db", None)
    schemas["PrometheusRule"].validate(objects["PrometheusRule"] | {"spec": cert_manager})


def test_the_crd_check_can_fail(full_run: Run, schemas: dict[str, Any]) -> None:
    objects = _objects(full_run)
    monitor, rule = objects["PodMonitor"], objects["PrometheusRule"]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    for bad in ({"prot": "metrics"}, {"port": "metrics", "interval": "30 seconds"}):
        with pytest.raises(jsonschema.ValidationError):
            schemas["PodMonitor"].validate(monitor | {"spec": monitor["spec"] | {"podMetricsEndpoints": [endpoint | bad]}})
    first = rule["spec"]["groups"][0]["rules"][0]
    for bad_rule in ({"alert": first["alert"]}, first | {"for": "five minutes"}, first | {"severity": "critical"}):
        with pytest.raises(jsonschema.ValidationError):
            schemas["PrometheusRule"].validate(rule | {"spec": {"groups": [{"name": "g", "rules": [bad_rule]}]}})


def _anchors(markdown: str) -> set[str]:
    return set(re.findall(r'<a id="([^"]+)"></a>', markdown))


def test_every_alert_names_a_section_of_docs_alerts(full_run: Run) -> None:
    doc = (ROOT / "docs" / "alerts.md").read_text()
    rules = _objects(full_run)["PrometheusRule"]["spec"]["groups"][0]["rules"]
    # The full run has every alert but one of the two certificate forms, which share a name.
    assert sorted(r["alert"] for r in rules) == sorted(ANCHORS)
    for rule in rules:
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}
        page, anchor = annotations["runbook"].split("#")
        assert page == "docs/alerts.md" and anchor in _anchors(doc), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
    # Each section links an existing runbook or section of the other docs.
    for target, anchor in re.findall(r"\]\(([a-z-]+\.md)#([a-z0-9-]+)\)", doc):
        assert anchor in _anchors((ROOT / "docs" / target).read_text()), f"{target}#{anchor}"


def _expr(spec: dict[str, Any], alert: str) -> str | None:
    return next((r["expr"] for r in spec["groups"][0]["rules"] if r["alert"] == alert), None)


def test_a_generated_certificate_embeds_its_end_of_validity(full_run: Run) -> None:
    spec = _objects(full_run)["PrometheusRule"]["spec"]
    assert _expr(spec, "PostgresCertificateExpiring") == f"vector({NOT_AFTER_EPOCH}) - time() < 14 * 86400"


def test_a_cert_manager_certificate_uses_its_expiry_metric() -> None:
    spec = rule_spec(_args(tls_expiry=CertManagerExpiry("pg-tls")), "db", None)
    expr = _expr(spec, "PostgresCertificateExpiring")
    assert expr is not None and 'certmanager_certificate_expiration_timestamp_seconds{namespace="db",name="pg-tls"}' in expr
    assert str(NOT_AFTER_EPOCH) not in expr


def test_optional_alerts_follow_their_settings() -> None:
    spec = rule_spec(_args(replication=False), "db", None)
    alerts = {r["alert"] for r in spec["groups"][0]["rules"]}
    optional = {"PostgresDumpMissing", "PostgresLonghornBackupTooOld", "PostgresCertificateExpiring"}
    optional |= {"PostgresWalArchivingFailing", "PostgresWalArchiveBehind", "PostgresBaseBackupMissing"}
    replication = {"PostgresStandbyNotStreaming", "PostgresReplicationLagHigh", "PostgresReplicationSlotAtRisk"}
    assert alerts == set(ANCHORS) - optional - replication
    assert _expr(rule_spec(_args(max_lag_bytes=1234), "db", None), "PostgresReplicationLagHigh") == (
        'pg_stat_replication_pg_wal_lsn_diff{namespace="db",pod=~"pg-[0-9]+|pg-standby-[0-9]+",'
        'application_name=~"pg-[0-9]+|pg-standby-[0-9]+"} > 1234'
    )


def test_the_backup_ages_follow_their_settings() -> None:
    spec = rule_spec(_args(dump_cronjob="pg-backup", dump_max_age_hours=170, longhorn_backups=LonghornBackupAge("j", 8)), "db", None)
    dump, longhorn = _expr(spec, "PostgresDumpMissing"), _expr(spec, "PostgresLonghornBackupTooOld")
    assert dump is not None and dump.count("> 612000") == 2  # 170 hours, for both the last success and a CronJob never run
    assert longhorn is not None and "offset 8h" in longhorn and "[8h]" in longhorn and "26" not in longhorn


def test_the_wal_alerts_follow_their_settings() -> None:
    spec = rule_spec(_args(wal_archiving=WalArchiveAlerts(max_age_seconds=1800, backup_max_age_hours=170)), "db", None)
    behind = _expr(spec, "PostgresWalArchiveBehind")
    assert behind is not None and "last_archive_age{" in behind and "> 1800 " in behind and "[1800s]" in behind
    # Without a base-backup CronJob there is no base-backup alert; with one, its age limit is the setting.
    assert _expr(spec, "PostgresBaseBackupMissing") is None
    spec = rule_spec(_args(wal_archiving=WalArchiveAlerts(backup_cronjob="pg-wal-backup", backup_max_age_hours=170)), "db", None)
    base = _expr(spec, "PostgresBaseBackupMissing")
    assert base is not None and base.count("> 612000") == 2 and 'cronjob="pg-wal-backup"' in base


def test_the_namespace_may_be_an_output() -> None:
    run = _run(_args(namespace=pulumi.Output.from_input("later"), pod_monitor=False))
    expr = _expr(_objects(run)["PrometheusRule"]["spec"], "PostgresPrimaryDown")
    assert expr == 'absent(pg_replication_is_replica{namespace="later",pod=~"pg-[0-9]+|pg-standby-[0-9]+"} == 0)'


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _args(selector={}), r"MonitoringArgs.selector: got \{\}; expected at least one label"),
        (lambda: _args(pod_monitor=False, prometheus_rule=False), "MonitoringArgs.pod_monitor: got False"),
        (lambda: _args(scrape_interval="30"), "MonitoringArgs.scrape_interval: got '30'; expected a Prometheus duration"),
        (lambda: _args(scrape_interval="0"), "MonitoringArgs.scrape_interval: got '0'"),
        (lambda: _args(max_lag_bytes=-1), "MonitoringArgs.max_lag_bytes: got -1"),
        (lambda: _args(dump_cronjob="Pg_backup"), "MonitoringArgs.dump_cronjob: got 'Pg_backup'"),
        (lambda: _args(dump_max_age_hours=0), "MonitoringArgs.dump_max_age_hours: got 0; expected an integer from 1 to 8784"),
        (lambda: _args(labels={"release": "a b"}), r"MonitoringArgs.labels\['release'\]: got 'a b'"),
        (lambda: GeneratedExpiry("2027-03-04 05:06"), "GeneratedExpiry.not_after: got '2027-03-04 05:06'; expected an RFC 3339 time"),
        (lambda: CertManagerExpiry("Pg"), "CertManagerExpiry.certificate: got 'Pg'"),
        (lambda: LonghornBackupAge("longhorn-postgres-backup", 0), "LonghornBackupAge.max_age_hours: got 0"),
        (lambda: WalArchiveAlerts(max_age_seconds=30), "WalArchiveAlerts.max_age_seconds: got 30; expected an integer from 60"),
        (lambda: WalArchiveAlerts(backup_cronjob="Pg"), "WalArchiveAlerts.backup_cronjob: got 'Pg'"),
    ],
)
def test_bad_arguments_are_refused_with_the_field_and_the_form(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
