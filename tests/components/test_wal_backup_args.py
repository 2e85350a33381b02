"""WalBaseBackupArgs (components/wal_backup_args.py): the base-backup job's contract."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components.validation import ArgsError
from components.wal_archive_args import WalArchiveArgs, WalS3
from components.wal_backup_args import WalBaseBackupArgs


def job_args(**kw: Any) -> WalBaseBackupArgs:
    wal = WalArchiveArgs(s3=WalS3(remote="bucket/wal", credentials=pulumi.Output.from_input({})))
    base: dict[str, Any] = {
        "name": "pg",
        "namespace": "db",
        "image": "postgres:18.1",
        "image_pull_policy": "IfNotPresent",
        "wal": wal,
        "scripts_config_map": "pg-scripts",
        "credentials_secret": "pg-credentials",
        "s3_secret": "pg-wal-s3",
        "primary_host": "pg.db.svc.cluster.local",
        "replication_user": "replicator",
        "database_pods": {"app.kubernetes.io/instance": "pg"},
    }
    return WalBaseBackupArgs(**(base | kw))


def test_a_typical_job_builds() -> None:
    assert job_args().network_policy and job_args().tls_secret is None


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"name": "Pg"}, "name"),
        ({"namespace": "a_b"}, "namespace"),
        ({"image_pull_policy": "Sometimes"}, "image_pull_policy"),
        ({"replication_user": "no-dash"}, "replication_user"),
        ({"tls_secret": "Not_A_Name"}, "tls_secret"),
    ],
)
def test_a_bad_field_is_refused_by_name(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ArgsError) as refused:
        job_args(**kw)
    assert refused.value.field == field
