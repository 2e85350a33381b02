"""The Barman Cloud ObjectStore of a CloudNativePG Cluster's WAL archive: its spec, its checks, and its registration
beside the Cluster only when the S3 settings are given."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from components.postgres_cluster import PostgresCluster
from components.postgres_cluster_args import BarmanS3, PostgresClusterArgs
from components.postgres_cluster_wal import object_store_spec
from tests.conftest import run_component
from tools.mock_run import plain

ARGS = PostgresClusterArgs(namespace="db", storage_class="longhorn-postgres", image="docker.io/library/postgres:18.6")
S3 = BarmanS3(remote="backups/orders-wal/", credentials_secret="postgres-wal-s3", endpoint="https://s3.example.com:9000")
STORE = "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"


def test_the_spec_names_the_bucket_the_endpoint_and_the_secret_keys() -> None:
    ref: dict[str, Any] = {"name": "postgres-wal-s3"}
    assert object_store_spec(S3) == {
        "configuration": {
            "destinationPath": "s3://backups/orders-wal",
            "s3Credentials": {"accessKeyId": ref | {"key": "access_key_id"}, "secretAccessKey": ref | {"key": "secret_access_key"}},
            "endpointURL": "https://s3.example.com:9000",
        }
    }
    aws = object_store_spec(dataclasses.replace(S3, endpoint=None, access_key_key="id", secret_key_key="secret"))
    assert "endpointURL" not in aws["configuration"]
    assert aws["configuration"]["s3Credentials"]["secretAccessKey"] == ref | {"key": "secret"}


def test_the_object_store_is_registered_with_the_name_the_plugin_entry_uses() -> None:
    run = run_component(lambda: PostgresCluster("postgres", dataclasses.replace(ARGS, wal_object_store="postgres-wal", wal_s3=S3)))
    store = plain(run.one(STORE, "postgres-wal-store").inputs)
    assert store["metadata"]["name"] == "postgres-wal" and store["metadata"]["namespace"] == "db"
    assert store["spec"] == object_store_spec(S3)
    cluster = plain(run.one("kubernetes:postgresql.cnpg.io/v1:Cluster", "postgres").inputs)
    assert cluster["spec"]["plugins"][0]["parameters"] == {"barmanObjectName": "postgres-wal"}
    # An ObjectStore made elsewhere: only the Cluster's plugin entry names it.
    run = run_component(lambda: PostgresCluster("postgres", dataclasses.replace(ARGS, wal_object_store="postgres-wal")))
    assert run.of_type(STORE) == []


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: dataclasses.replace(S3, remote="s3://backups/wal"), "BarmanS3.remote: got 's3://backups/wal'; expected bucket/prefix"),
        (lambda: dataclasses.replace(S3, endpoint="s3.example.com"), "BarmanS3.endpoint: got 's3.example.com'; expected an http"),
        (lambda: dataclasses.replace(S3, credentials_secret="Wal_S3"), "BarmanS3.credentials_secret: got 'Wal_S3'"),
        (lambda: dataclasses.replace(ARGS, wal_s3=S3), "PostgresClusterArgs.wal_s3: got 'backups/orders-wal/'; expected None while"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_a_kubernetes_schedule_gets_the_seconds_field_the_operator_reads() -> None:
    from components.postgres_cluster_wal import scheduled_backup_spec

    assert scheduled_backup_spec("pg", "30 2 * * *")["schedule"] == "0 30 2 * * *"
    assert scheduled_backup_spec("pg", "@daily")["schedule"] == "@daily"
    assert scheduled_backup_spec("pg", "@daily")["pluginConfiguration"] == {"name": "barman-cloud.cloudnative-pg.io"}
