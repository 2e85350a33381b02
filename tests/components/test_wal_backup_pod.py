"""The base-backup job's pod (components/wal_backup_pod.py), built without Pulumi: WAL_ENV in order, TLS off."""

from __future__ import annotations

from components.pod_env_contract import WAL_ENV
from components.wal_backup_pod import wal_job_env, wal_job_pod_spec
from tests.components.test_wal_backup_args import job_args


def test_without_tls_the_job_prefers_tls_and_mounts_no_ca() -> None:
    env = {e.name: e.value for e in wal_job_env(job_args())}
    assert env["PGSSLMODE"] == "prefer" and env["PGSSLROOTCERT"] == ""
    spec = wal_job_pod_spec(job_args(), "pg-wal")
    assert [v.name for v in spec.volumes] == ["scripts", "secrets", "tmp", "rclone", "wal-s3"]


def test_the_contract_order_then_the_config_file() -> None:
    env = wal_job_env(job_args(tls_secret="pg-tls"))
    assert [e.name for e in env] == [*(v.name for v in WAL_ENV.variables if v.set_by_pod), "RCLONE_CONFIG"]
    values = {e.name: e.value for e in env}
    assert (
        values["PGSSLMODE"] == "verify-full" and values["WAL_KEEP_BACKUPS"] == "7" and values["PRIMARY_HOST"] == "pg.db.svc.cluster.local"
    )
    assert "RCLONE_CONFIG" in WAL_ENV.names, "declared in the contract (rclone reads it)"
