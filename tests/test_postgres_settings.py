"""Pure settings functions: data layout per image major, sizing, argument form, DNS names."""

from __future__ import annotations

import pytest

from components.postgres_settings import MiB, data_layout, pod_dns, postgres_args, server_settings

GiB = 1024 * MiB


@pytest.mark.parametrize(
    ("major", "mount", "pgdata"),
    [
        (18, "/var/lib/postgresql", "/var/lib/postgresql/18/docker"),
        (17, "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"),
        (16, "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"),
    ],
)
def test_pgdata_is_a_subdirectory_of_the_mount(major: int, mount: str, pgdata: str) -> None:
    layout = data_layout(major)
    assert (layout.mount_path, layout.pgdata) == (mount, pgdata)
    assert layout.pgdata.startswith(layout.mount_path + "/")


def test_wal_never_outgrows_a_small_volume() -> None:
    s = server_settings(memory_limit_bytes=GiB, volume_bytes=GiB, replication=False)
    assert s["max_wal_size"] == "256MB"  # a quarter of 1Gi, not the 1GB default
    assert s["shared_buffers"] == "256MB" and s["effective_cache_size"] == "768MB"
    assert "wal_keep_size" not in s


def test_large_volume_caps_wal_and_replication_keeps_some() -> None:
    s = server_settings(memory_limit_bytes=4 * GiB, volume_bytes=20 * GiB, replication=True)
    assert s["max_wal_size"] == "1024MB"
    assert s["wal_keep_size"] == "1024MB"
    assert s["wal_level"] == "replica" and s["hot_standby"] == "on"
    small = server_settings(memory_limit_bytes=GiB, volume_bytes=GiB, replication=True)
    assert small["wal_keep_size"] == "128MB"


def test_postgres_args_are_sorted_dash_c_pairs() -> None:
    assert postgres_args({"b": "2", "a": "1"}) == ["postgres", "-c", "a=1", "-c", "b=2"]


def test_pod_dns() -> None:
    assert pod_dns("pg-0", "pg-hl", "db") == "pg-0.pg-hl.db.svc.cluster.local"
