"""WalArchiveArgs and WalS3 (components/wal_archive_args.py): the archive's contract, refused field by field."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components.logical_backup_args import backup_labels
from components.validation import ArgsError
from components.wal_archive_args import WalArchiveArgs, WalS3, archive_timeout_seconds, wal_labels


def _s3(**kw: Any) -> WalS3:
    return WalS3(**({"remote": "bucket/wal", "credentials": pulumi.Output.from_input({})} | kw))


def test_the_defaults_and_the_target() -> None:
    args = WalArchiveArgs(s3=_s3())
    assert (args.archive_timeout, args.schedule, args.keep, args.target) == ("5min", "@daily", 7, "WAL:bucket/wal")
    assert args.s3.endpoint_port == 443


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5min", 300), ("1h", 3600), ("24h", 86400), ("5 min", None), ("0s", None)])
def test_archive_timeout_reads_postgresql_durations(text: str, seconds: int | None) -> None:
    assert archive_timeout_seconds(text) == seconds


@pytest.mark.parametrize(
    ("kw", "field", "words"),
    [
        ({"archive_timeout": "29s"}, "archive_timeout", "from 30s to 24h"),
        ({"archive_timeout": "25h"}, "archive_timeout", "from 30s to 24h"),
        ({"archive_timeout": "300"}, "archive_timeout", "s, min or h"),
        ({"archive_timeout": "5m"}, "archive_timeout", "s, min or h"),
        ({"schedule": "0 3 * * 7"}, "schedule", "cron"),
        ({"keep": 0}, "keep", "from 1 to 100"),
        ({"keep": 101}, "keep", "from 1 to 100"),
    ],
)
def test_a_bad_archive_setting_is_refused_by_name(kw: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ArgsError) as refused:
        WalArchiveArgs(s3=_s3(), **kw)
    assert refused.value.field == field and words in str(refused.value)


@pytest.mark.parametrize(
    ("kw", "field"), [({"remote": "s3://bucket"}, "remote"), ({"remote": "/abs"}, "remote"), ({"endpoint_port": 0}, "endpoint_port")]
)
def test_a_bad_s3_target_is_refused(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ArgsError) as refused:
        _s3(**kw)
    assert refused.value.field == field


def test_the_job_labels_are_neither_the_database_nor_the_dump_job() -> None:
    assert wal_labels("pg") != backup_labels("pg") and wal_labels("pg")["app.kubernetes.io/name"] != "postgresql"
