"""The backup.wal block (stacks/config/wal.py and its rules in schema.py, secrets.py, contract.py): off by default,
one target, and each bad value refused in one line under its key before anything is registered."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import ConfigError, parse_secrets, parse_settings
from stacks.config.wal import BaseBackupSettings, WalSettings
from tests.components.wal_runs import WAL_S3

S3 = {"s3Remote": "bucket/wal"}


def _wal(wal: dict[str, Any], **other: Any) -> Any:
    return parse_settings({"backup": {"wal": wal}, **other})


def test_off_by_default_and_the_defaults() -> None:
    assert parse_settings({}).backup.wal is None
    wal = _wal(S3).backup.wal
    assert wal == WalSettings(s3Remote="bucket/wal", archiveTimeout="5min", baseBackup=BaseBackupSettings(schedule="@daily", keep=7))


@pytest.mark.parametrize(
    ("wal", "other", "line"),
    [
        ({}, {}, 'pgstack:backup.wal.s3Remote: got null; expected the archive\'s bucket/prefix, such as "backups/orders-db-wal"'),
        ({**S3, "volume": "10Gi"}, {}, 'pgstack:backup.wal.volume: got "10Gi"; expected null: a volume target needs a ReadWriteMany'),
        ({"s3Remote": "s3://bucket"}, {}, 'pgstack:backup.wal.s3Remote: got "s3://bucket"; expected an rclone bucket/prefix'),
        (
            {**S3, "archiveTimeout": "10s"},
            {},
            'pgstack:backup.wal.archiveTimeout: got "10s"; expected a PostgreSQL duration from 30s to 24h',
        ),
        ({**S3, "archiveTimeout": "5"}, {}, 'pgstack:backup.wal.archiveTimeout: got "5"'),
        ({**S3, "baseBackup": {"keep": 0}}, {}, "pgstack:backup.wal.baseBackup.keep: got 0"),
        ({**S3, "baseBackup": {"schedule": "daily"}}, {}, 'pgstack:backup.wal.baseBackup.schedule: got "daily"'),
        ({**S3, "archive_timeout": "5min"}, {}, "pgstack:backup.wal.archive_timeout"),
        (S3, {"postgres": {"replication": {"enabled": False}}}, "expected null while postgres.replication.enabled is false"),
        (
            {**S3, "restoreFrom": {"s3Remote": "b/q", "latest": True}},
            {"postgres": {"engine": "cloudnative-pg"}},
            'pgstack:backup.wal.restoreFrom: got "an object"; expected null with postgres.engine cloudnative-pg',
        ),
    ],
)
def test_a_bad_wal_setting_is_one_line_under_its_key(wal: dict[str, Any], other: dict[str, Any], line: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _wal(wal, **other)
    assert line in str(refused.value)


def test_the_s3_account_is_the_dumps_one_and_never_shown() -> None:
    settings = _wal(S3)
    assert parse_secrets({"dumpS3": WAL_S3}, settings).dumpS3 is not None, "archiving alone uses pgstack:dumpS3"
    assert parse_secrets({}, settings).dumpS3 is None, "missing: archiving off with a warning (stacks/database.py)"
    with pytest.raises(ConfigError, match=r"dumpS3: set while backup\.dumps\.s3Remote is unset and backup\.wal is off"):
        parse_secrets({"dumpS3": WAL_S3}, parse_settings({}))


@pytest.mark.parametrize(
    ("restore", "line"),
    [
        ({"s3Remote": "old/wal"}, "pgstack:backup.wal.restoreFrom.time: got null; expected exactly one of time, lsn and latest"),
        (
            {"s3Remote": "old/wal", "latest": True, "lsn": "0/3000148"},
            "pgstack:backup.wal.restoreFrom.latest: got true; expected exactly one",
        ),
        ({"s3Remote": "old/wal", "time": "yesterday"}, 'pgstack:backup.wal.restoreFrom: got "yesterday"; expected latest, a WAL position'),
        ({"s3Remote": "old/wal", "lsn": "0/zz"}, 'pgstack:backup.wal.restoreFrom: got "0/zz"'),
        ({"s3Remote": "bucket/wal", "latest": True}, 'pgstack:backup.wal.restoreFrom.s3Remote: got "bucket/wal"; expected another'),
    ],
)
def test_a_bad_restore_point_is_one_line_under_its_key(restore: dict[str, Any], line: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _wal({**S3, "restoreFrom": restore})
    assert line in str(refused.value)


@pytest.mark.parametrize(
    ("restore", "point"),
    [({"time": "2026-12-06 17:00:00+00"}, "2026-12-06 17:00:00+00"), ({"lsn": "0/3000148"}, "0/3000148"), ({"latest": True}, "latest")],
)
def test_the_restore_point_is_what_init_pitr_sh_reads(restore: dict[str, Any], point: str) -> None:
    wal = _wal({**S3, "restoreFrom": {"s3Remote": "old/wal", **restore}}).backup.wal
    assert wal is not None and wal.restoreFrom is not None and wal.restoreFrom.point == point
