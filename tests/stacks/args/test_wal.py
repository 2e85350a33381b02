"""stacks/args/wal.py: the settings and the S3 account onto WalArchiveArgs and the base-backup job's Args."""

from __future__ import annotations

import pytest

from stacks.args import postgres_args, wal_args, wal_backup_args
from stacks.config import ConfigError, DumpS3Secret, parse_settings
from tests.components.wal_runs import WAL_S3
from tools.mock_run import run_pulumi

SETTINGS = parse_settings({"backup": {"wal": {"s3Remote": "bucket/wal", "archiveTimeout": "1min", "baseBackup": {"keep": 3}}}})
ACCOUNT = DumpS3Secret.model_validate(WAL_S3)


def test_archiving_needs_the_setting_and_the_account() -> None:
    assert wal_args(parse_settings({}), ACCOUNT) is None
    assert wal_args(SETTINGS, None) is None
    wal = wal_args(SETTINGS, ACCOUNT)
    assert wal is not None and (wal.target, wal.archive_timeout, wal.keep, wal.s3.endpoint_port) == ("WAL:bucket/wal", "1min", 3, 9000)
    args = postgres_args(SETTINGS, "postgres", "fast", wal)
    assert args.wal is wal and args.wal_clients == {
        "app.kubernetes.io/name": "postgresql-wal-backup",
        "app.kubernetes.io/instance": "postgres",
    }
    assert postgres_args(SETTINGS, "postgres", "fast").wal_clients is None


def test_the_secret_holds_rclones_keys_without_the_unset_ones() -> None:
    wal = wal_args(SETTINGS, DumpS3Secret(accessKeyId="k", secretAccessKey="s"))
    assert wal is not None and wal.s3.endpoint_port == 443
    seen: list[dict[str, str]] = []
    run_pulumi(lambda: wal.s3.credentials.apply(seen.append))
    assert seen == [{"rclone.conf": "[WAL]\ntype = s3\nprovider = AWS\naccess_key_id = k\nsecret_access_key = s\n"}]


def test_a_line_break_in_the_account_is_refused_without_its_value() -> None:
    with pytest.raises(ConfigError) as refused:
        wal_args(SETTINGS, DumpS3Secret(accessKeyId="k", secretAccessKey="s\nregion = evil"))
    assert "evil" not in str(refused.value) and "pgstack:dumpS3" in str(refused.value)


def test_the_job_copies_the_primary_as_the_replication_role() -> None:
    wal = wal_args(SETTINGS, ACCOUNT)
    assert wal is not None
    job = wal_backup_args(SETTINGS, wal, {"app": "db"})
    assert (job.name, job.primary_host, job.replication_user, job.s3_secret) == (
        "postgres",
        "postgres.postgres.svc.cluster.local",
        "replicator",
        "postgres-wal-s3",
    )
    assert job.credentials_secret == "postgres-credentials" and job.tls_secret is None
