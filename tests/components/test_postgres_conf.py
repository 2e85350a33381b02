"""postgresql.conf by pure functions: data layout per image major, sizing, argument form; and DNS names."""

from __future__ import annotations

import pytest

from components.naming import pod_dns
from components.postgres_conf import MiB, data_layout, postgres_args, server_parameters
from components.postgres_names import pod_names

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


def test_memory_sizing_and_no_volume_sized_setting_on_the_command_line() -> None:
    s = server_parameters(memory_limit_bytes=GiB, replication=False)
    assert s["shared_buffers"] == "256MB" and s["effective_cache_size"] == "768MB"
    # The WAL budget follows the volume's real size (init.sh writes k8s-volume.conf); a -c
    # value would override that file and make a volume resize roll every pod.
    for key in ("max_wal_size", "min_wal_size", "wal_keep_size", "max_slot_wal_keep_size"):
        assert key not in s and key not in server_parameters(4 * GiB, replication=True), key
    assert "wal_level" not in s


def test_replication_settings_allow_a_slot_and_a_sender_per_standby() -> None:
    s = server_parameters(memory_limit_bytes=4 * GiB, replication=True)
    assert s["wal_level"] == "replica" and s["hot_standby"] == "on"
    # replicas <= 15: up to 14 standbys, each with a slot and a sender, plus a clone's two senders.
    assert int(s["max_replication_slots"]) >= 14 and int(s["max_wal_senders"]) >= 16


def test_pod_names_follow_the_two_statefulsets() -> None:
    assert pod_names("pg", 3, replication=True) == ["pg-0", "pg-standby-1", "pg-standby-2"]
    assert pod_names("pg", 1, replication=True) == ["pg-0"]
    assert pod_names("pg", 2, replication=False) == ["pg-0", "pg-1"]


def test_postgres_args_are_sorted_dash_c_pairs() -> None:
    assert postgres_args({"b": "2", "a": "1"}) == ["postgres", "-c", "a=1", "-c", "b=2"]


def test_pod_dns() -> None:
    assert pod_dns("pg-0", "pg-hl", "db") == "pg-0.pg-hl.db.svc.cluster.local"
