"""The program runs the WAL archiving tests share: prod's stack file (which turns backup.wal on) with its S3
account set as the deploying machine has it (pgstack:dumpS3, secret), and dev without archiving."""

from __future__ import annotations

from typing import Any

from tests.conftest import program_run, run_with
from tools.mock_run import Run, plain
from tools.stack_files import stack_config

WAL_S3: dict[str, Any] = {
    "provider": "Minio",
    "accessKeyId": "walkey0001",
    "secretAccessKey": "wal-s3cr3t-key",
    "endpoint": "https://minio.example:9000",
}


def wal_prod() -> Run:
    """prod's stack file with pgstack:dumpS3: the same config (one mock run per worker) as the policy tests' prod."""
    return program_run(stack_config("prod") | {"pgstack:dumpS3": WAL_S3}, "prod", ["pgstack:dumpS3"])


def no_wal() -> Run:
    """dev: no archiving."""
    return run_with({})


def plain_spec(resource: Any) -> dict[str, Any]:
    return dict(plain(resource.inputs["spec"]))
