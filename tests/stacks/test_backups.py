"""Backups in the program: Longhorn recurring jobs and backup target, the dump CronJob, secret config."""

from __future__ import annotations

import json
import logging
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from components.logical_backup import backup_labels
from components.logical_backup_pod import RCLONE_IMAGE
from stacks.config import PROJECT
from tests.conftest import CLAIM, STS, fixed_config, fixed_settings, program_run, run_with
from tools.mock_run import Registered, Run, run_program
from tools.mock_run import plain as _plain

RECURRING_JOB = "kubernetes:longhorn.io/v1beta2:RecurringJob"
CRON = "kubernetes:batch/v1:CronJob"
RELEASE = "kubernetes:helm.sh/v3:Release"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"

TARGET = {
    "url": "s3://pg-backups@eu-west-1/longhorn",
    "credentials": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY0001", "AWS_SECRET_ACCESS_KEY": "s3cr3t-Access-Key/xyz"},
}
DUMP_S3 = {
    "provider": "Minio",
    "accessKeyId": "dumpkey0001",
    "secretAccessKey": "dump-s3cr3t-key",
    "endpoint": "https://minio.example:9000",
}


def _prod(overrides: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None) -> Run:
    config = fixed_config("prod") | {f"{PROJECT}:{k}": v for k, v in (overrides or {}).items()}
    config |= {f"{PROJECT}:{k}": v for k, v in (secrets or {}).items()}
    return program_run(config, "prod", [f"{PROJECT}:{k}" for k in secrets or {}])


def _pod(cron: Registered) -> dict[str, Any]:
    return dict(_plain(cron.inputs["spec"])["jobTemplate"]["spec"]["template"]["spec"])


def test_backups_are_off_in_dev_and_on_in_prod(caplog: pytest.LogCaptureFixture) -> None:
    dev = run_with({})
    assert not dev.of_type(RECURRING_JOB) and not dev.of_type(CRON)
    assert fixed_settings("dev").backup.dumps is None
    with caplog.at_level(logging.WARNING):
        prod = _prod()
    # No backup target set (it is secret config): snapshots and dumps only, and a warning says why.
    assert [j.inputs["spec"]["task"] for j in prod.of_type(RECURRING_JOB)] == ["snapshot"]
    assert any("volume backups are not scheduled" in r.getMessage() for r in caplog.records)
    assert len(prod.of_type(CRON)) == 1


def test_recurring_jobs_reach_every_volume_through_claim_labels() -> None:
    run = _prod(secrets={"backupTarget": TARGET})
    jobs = {j.inputs["metadata"]["name"]: _plain(j.inputs) for j in run.of_type(RECURRING_JOB)}
    assert set(jobs) == {"longhorn-postgres-snapshot", "longhorn-postgres-backup"}
    snap, backup = jobs["longhorn-postgres-snapshot"], jobs["longhorn-postgres-backup"]
    assert snap["metadata"]["namespace"] == "longhorn-system"
    assert (snap["spec"]["task"], snap["spec"]["cron"], snap["spec"]["retain"]) == ("snapshot", "0 * * * *", 24)
    assert (backup["spec"]["task"], backup["spec"]["cron"], backup["spec"]["retain"]) == ("backup", "0 1 * * *", 14)
    assert snap["spec"]["groups"] == backup["spec"]["groups"] == ["longhorn-postgres"]
    # Longhorn syncs recurring-job labels from a PVC to its volume (existing volumes join in place).
    claims = run.of_type(CLAIM)
    assert len(claims) == 4  # three pods and the dumps volume
    for claim in claims:
        labels = claim.inputs["metadata"]["labels"]
        assert labels["recurring-job.longhorn.io/source"] == "enabled"
        assert labels["recurring-job-group.longhorn.io/longhorn-postgres"] == "enabled", claim.name
    # Jobs wait for Longhorn (their CRD comes with the chart).
    release = run.one(RELEASE, "longhorn-release")
    assert all(release.urn in j.dependencies for j in run.of_type(RECURRING_JOB))


def test_backup_target_is_secret_everywhere() -> None:
    run = _prod(secrets={"backupTarget": TARGET})
    release = run.one(RELEASE, "longhorn-release")
    values = release.inputs["values"]
    assert rpc.is_rpc_secret(values), "the target URL names the bucket: the values stay secret in the state"
    assert _plain(values)["defaultBackupStore"] == {
        "backupTarget": TARGET["url"],
        "backupTargetCredentialSecret": "longhorn-backup-target",
    }
    secret = run.one("kubernetes:core/v1:Secret", "longhorn-backup-target")
    assert secret.inputs["metadata"]["namespace"] == "longhorn-system"
    assert rpc.is_rpc_secret(secret.inputs["stringData"])
    assert _plain(secret.inputs["stringData"]) == TARGET["credentials"]
    assert secret.urn in release.dependencies
    for value in (*TARGET["credentials"].values(), *DUMP_S3.values()):
        for r in run.resources:
            if r.urn not in (secret.urn, release.urn):
                assert value not in json.dumps(_plain(r.inputs)), f"{value} leaked into {r.name}"
        assert value not in json.dumps(run.outputs, default=str)


def test_dump_cronjob_is_restricted_forbids_overlap_and_runs_the_servers_image() -> None:
    run = _prod()
    cron = run.one(CRON, "dumps-cron")
    spec = _plain(cron.inputs["spec"])
    assert (spec["schedule"], spec["concurrencyPolicy"]) == ("30 2 * * *", "Forbid")
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] <= 1 and job["activeDeadlineSeconds"] > 0
    pod = _pod(cron)
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (dump,) = pod["containers"]
    assert "initContainers" not in pod
    primary = _plain(run.one(STS, "postgres").inputs["spec"])["template"]["spec"]["containers"][0]
    assert dump["image"] == primary["image"], "pg_dump must be the server's major"
    assert dump["command"] == ["/scripts/backup.sh"]
    sc = dump["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e.get("value") for e in dump["env"]}
    ns = "postgres-prod"
    assert env["BACKUP_HOSTS"] == f"postgres-ro.{ns}.svc.cluster.local postgres.{ns}.svc.cluster.local"
    assert (env["BACKUP_KEEP"], env["BACKUP_KEEP_DAYS"], env["BACKUP_DIR"]) == ("14", "14", "/backups")
    assert env["PGHOST"] == f"postgres.{ns}.svc.cluster.local"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dumps"]["persistentVolumeClaim"]["claimName"] == "postgres-dumps"
    assert volumes["secrets"]["secret"]["secretName"] == "postgres-credentials"
    claim = run.one(CLAIM, "dumps-claim")
    assert _plain(claim.inputs["spec"])["resources"]["requests"]["storage"] == "40Gi"
    assert claim.options.retain_on_delete


def test_dump_pods_are_not_database_pods_but_may_connect() -> None:
    run = _prod()
    labels = backup_labels("postgres")
    db_selector = _plain(run.one(STS, "postgres").inputs["spec"])["selector"]["matchLabels"]
    assert not all(labels.get(k) == v for k, v in db_selector.items())
    policies = {p.name: _plain(p.inputs["spec"]) for p in run.of_type(NETPOL)}
    db_ingress = policies["postgres-netpol"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": labels}} in db_ingress
    dumps = policies["dumps-netpol"]
    assert dumps["podSelector"]["matchLabels"] == labels and "ingress" not in dumps
    ports = [sorted(p["port"] for p in rule["ports"]) for rule in dumps["egress"]]
    assert ports == [[53, 53], [5432]], "DNS and the database port only, without S3"


def test_dumps_to_s3_upload_after_the_dump_with_secret_credentials() -> None:
    backup = fixed_settings("prod").backup.model_dump()
    backup["dumps"]["s3Remote"] = "pg-dumps/prod"
    run = _prod({"backup": backup}, secrets={"dumpS3": DUMP_S3})
    pod = _pod(run.one(CRON, "dumps-cron"))
    assert [c["name"] for c in pod["initContainers"]] == ["dump"], "the upload runs only after a successful dump"
    (upload,) = pod["containers"]
    assert upload["image"] == RCLONE_IMAGE and "@sha256:" in upload["image"]
    assert upload["command"][:4] == ["rclone", "copy", "/backups", "DUMPS:pg-dumps/prod"]
    env = {e["name"]: e for e in upload["env"]}
    assert env["RCLONE_CONFIG_DUMPS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "postgres-dumps-s3",
        "key": "secret_access_key",
        "optional": False,
    }
    assert all("value" not in e or e["value"] not in DUMP_S3.values() for e in env.values())
    secret = run.one("kubernetes:core/v1:Secret", "dumps-s3")
    assert rpc.is_rpc_secret(secret.inputs["stringData"])
    assert _plain(secret.inputs["stringData"])["secret_access_key"] == DUMP_S3["secretAccessKey"]
    egress = _plain(run.one(NETPOL, "dumps-netpol").inputs["spec"])["egress"]
    assert egress[-1] == {"ports": [{"port": 9000, "protocol": "TCP"}]}, "the endpoint's port, for S3"


# (secret key, value, stack overrides, words of the message)
BAD_SECRETS: list[tuple[str, Any, dict[str, Any], str]] = [
    ("backupTarget", {"url": "ftp://x", "credentials": {}}, {}, "backupTarget.url: invalid (value hidden: secret)"),
    ("backupTarget", {"url": "s3://b@r/p", "credentials": {"AWS_KEY": "zzz-hidden"}}, {}, "credentials.AWS_KEY: invalid"),
    ("backupTarget", {"url": "s3://b@r/p", "credentials": {"AWS_ACCESS_KEY_ID": "zzz-hidden"}}, {}, "AWS_SECRET_ACCESS_KEY for an s3://"),
    ("backupTarget", TARGET, {"longhorn": {"install": False}, "storage": {"className": "other"}}, "does not install Longhorn"),
    ("dumpS3", DUMP_S3, {}, "dumpS3: set while backup.dumps.s3Remote is unset"),
    ("dumpS3", {"accessKeyId": "zzz-hidden"}, {}, "dumpS3.secretAccessKey: invalid (value hidden: secret)"),
]


@pytest.mark.parametrize(("key", "value", "overrides", "words"), BAD_SECRETS, ids=[b[3][:40] for b in BAD_SECRETS])
def test_bad_secret_config_is_named_without_its_value(key: str, value: Any, overrides: dict[str, Any], words: str) -> None:
    config = fixed_config("prod") | {f"{PROJECT}:{k}": v for k, v in overrides.items()} | {f"{PROJECT}:{key}": value}
    run = Run()
    with pytest.raises(pulumi.RunError) as err:
        run_program(config, stack="prod", run=run, secret_keys=[f"{PROJECT}:{key}"])
    assert words in str(err.value)
    assert "zzz-hidden" not in str(err.value) and "s3cr3t" not in str(err.value)
    assert run.resources == []


def test_secret_config_must_be_set_as_a_secret() -> None:
    config = fixed_config("prod") | {f"{PROJECT}:backupTarget": TARGET}
    run = Run()
    with pytest.raises(pulumi.RunError, match=r"pgstack:backupTarget: stored in plain text; expected a secret: pulumi config set --secret"):
        run_program(config, stack="prod", run=run)
    assert run.resources == []
