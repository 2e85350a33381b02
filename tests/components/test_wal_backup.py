"""The base-backup CronJob (components/wal_backup.py WalBaseBackup) as prod's run registers it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest

from components.pod_env_contract import WAL_ENV
from components.wal_pod import RCLONE_IMAGE
from stacks.args import wal_args
from stacks.config import DumpS3Secret, parse_settings
from stacks.database import wal_base_backups
from tests.components.wal_runs import WAL_S3, no_wal, plain_spec, wal_prod
from tests.tools.test_render import KUBERNETES_VERSIONS
from tools.render import kubernetes_objects
from tools.stack_files import stack_config

CRON = "kubernetes:batch/v1:CronJob"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
LABELS = {"app.kubernetes.io/name": "postgresql-wal-backup", "app.kubernetes.io/instance": "postgres"}


def _cron() -> dict[str, Any]:
    return plain_spec(wal_prod().one(CRON, "wal-base-backups-cron"))


def test_one_base_backup_at_a_time_with_the_database_image_and_wal_basebackup_sh() -> None:
    run = wal_prod()
    cron = run.one(CRON, "wal-base-backups-cron")
    assert cron.inputs["metadata"]["name"] == "postgres-wal" and cron.inputs["metadata"]["namespace"] == "postgres-prod"
    spec = _cron()
    assert spec["schedule"] == "30 3 * * *" and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"] == LABELS
    (sts,) = [s for s in run.of_type("kubernetes:apps/v1:StatefulSet") if s.name == "postgres"]
    assert [c["name"] for c in pod["initContainers"]] == ["rclone-copy"] and pod["initContainers"][0]["image"] == RCLONE_IMAGE
    (job,) = pod["containers"]
    assert job["image"] == plain_spec(sts)["template"]["spec"]["containers"][0]["image"]
    assert job["command"] == ["/scripts/wal-basebackup.sh"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "postgres-wal"
    assert pod["securityContext"]["runAsNonRoot"] and job["securityContext"]["allowPrivilegeEscalation"] is False
    assert job["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    sa = run.one("kubernetes:core/v1:ServiceAccount", "wal-base-backups-sa")
    assert sa.inputs["automountServiceAccountToken"] is False


def test_the_job_environment_is_wal_env_with_the_primary_tls_and_the_secret() -> None:
    pod = _cron()["jobTemplate"]["spec"]["template"]["spec"]
    (job,) = pod["containers"]
    assert [e["name"] for e in job["env"]] == [*(v.name for v in WAL_ENV.variables if v.set_by_pod), "RCLONE_CONFIG"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in job["env"]}
    keep = stack_config("prod")["pgstack:backup"]["wal"]["baseBackup"]["keep"]
    assert env["PRIMARY_HOST"] == "postgres.postgres-prod.svc.cluster.local" and env["PGPORT"] == "5432"
    assert env["WAL_TARGET"] == "WAL:pgstack-prod/wal" and env["WAL_KEEP_BACKUPS"] == str(keep)
    assert env["WAL_RCLONE"] == "/opt/rclone/rclone" and env["REPLICATION_USER"] == "replicator"
    # prod's TLS is on: verify-full against the CA alone, as the dump job does.
    assert env["PGSSLMODE"] == "verify-full" and env["PGSSLROOTCERT"] == "/etc/postgresql/tls/ca.crt"
    assert env["RCLONE_CONFIG"] == "/etc/postgresql/wal-s3/rclone.conf"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["wal-s3"]["secret"] == {
        "secretName": "postgres-wal-s3",
        "items": [{"key": "rclone.conf", "path": "rclone.conf"}],
        "defaultMode": 0o440,
    }
    assert volumes["secrets"]["secret"]["items"] == [{"key": "replication-password", "path": "replication-password"}]
    assert volumes["tls"]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], "never the server's key"


def test_the_job_talks_to_dns_the_database_and_s3_only() -> None:
    spec = plain_spec(wal_prod().one(NETPOL, "wal-base-backups-netpol"))
    assert spec["podSelector"]["matchLabels"] == LABELS and "ingress" not in spec
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert [sorted(p["port"] for p in rule["ports"]) for rule in spec["egress"]] == [[53, 53], [5432], [9000]]
    assert spec["egress"][1]["to"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": "postgres"}}}
    ]


def test_no_job_without_archiving() -> None:
    assert not no_wal().of_type("pgstack:index:WalBaseBackup")


def test_no_job_while_the_database_is_held() -> None:
    """holdDatabase (a volume restore): no primary to copy, so no base backup; decided before any resource."""
    held = parse_settings({"backup": {"wal": {"s3Remote": "b/w"}}, "holdDatabase": True})
    db = SimpleNamespace(wal=wal_args(held, DumpS3Secret.model_validate(WAL_S3)), pod_labels={})
    assert db.wal is not None and wal_base_backups(held, db, []) == []  # type: ignore[arg-type]


@pytest.mark.scanner
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_archiving_objects_pass_strict_schema_validation(version: str) -> None:
    """The objects archiving adds or changes (tests/tools/test_render.py validates the stack files' renders, whose
    prod lacks its S3 account and so does not archive)."""
    kinds = {"StatefulSet", "CronJob", "NetworkPolicy", "Secret", "ServiceAccount"}
    objects = [o for o in kubernetes_objects(wal_prod()) if o["kind"] in kinds]
    assert {o["metadata"]["name"] for o in objects} >= {"postgres", "postgres-standby", "postgres-wal", "postgres-wal-s3"}
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)
