"""PostgresClusterArgs: the operator's webhook rules that a stack can break, refused at construction."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from components.postgres_cluster_args import FIXED_PARAMETERS, MigrateFrom, PostgresClusterArgs
from components.validation import ArgsError

ARGS = PostgresClusterArgs(namespace="db", storage_class="longhorn-postgres", image="postgres:18.6")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # cluster_webhook.go:771-808 validateImageName: no latest, no bare digest, a tag that names a version.
        ("image", "postgres:latest"),
        ("image", "postgres@sha256:" + "a" * 64),
        ("image", "postgres:bookworm"),
        ("image", "postgres:14.9"),
        ("image", "postgres:18.1-alpine"),
        ("instances", 0),
        ("instances", 16),
        ("storage_size", "1GB"),
        ("storage_size", "50Mi"),
        ("username", None),
        ("username", "postgres"),
        ("username", "streaming_replica"),
        ("username", "cnpg_pooler_pgbouncer"),
        ("database", "1app"),
        ("anti_affinity", "sometimes"),
        ("operator_namespace", "CNPG"),
    ],
)
def test_refused(field: str, value: Any) -> None:
    with pytest.raises(ArgsError) as err:
        dataclasses.replace(ARGS, **{field: value})
    assert err.value.field == field


def test_accepted_tags() -> None:
    for image in ("postgres:18", "postgres:18.6-trixie", "registry.local:5000/pg/postgres:17.6@sha256:" + "b" * 64):
        dataclasses.replace(ARGS, image=image)


def test_cluster_name_is_a_dns_1035_label_of_at_most_50() -> None:
    ARGS.check_component_name("a" * 50)
    for bad in ("a" * 51, "1db", "db_1"):
        with pytest.raises(ArgsError):
            ARGS.check_component_name(bad)


def test_migration_source() -> None:
    MigrateFrom(host="postgres-0.postgres-hl.old.svc", password_secret="old-credentials")
    for field, value in (("host", "Bad_Host"), ("port", 0), ("user", "1x"), ("password_key", "a/b"), ("ssl_mode", "disable")):
        with pytest.raises(ArgsError):
            MigrateFrom(**{"host": "h", "password_secret": "s", field: value})


def test_fixed_parameters_are_the_operators() -> None:
    # A sample of pkg/postgres/configuration.go:487-556 at v1.30.0, both kinds (fixed and blocked).
    operators = {"archive_command", "ssl", "ssl_cert_file", "listen_addresses", "port", "unix_socket_directories", "hot_standby"}
    assert operators <= FIXED_PARAMETERS
    # Settable: the ones the stack's settings produce.
    assert not {"wal_level", "max_wal_size", "shared_buffers", "ssl_min_protocol_version", "password_encryption"} & FIXED_PARAMETERS
