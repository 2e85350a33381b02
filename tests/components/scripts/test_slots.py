"""Physical replication slots: a standby that is down keeps its WAL on the primary
(replicas 2 -> 1 -> 2), within max_slot_wal_keep_size, and says so when it lost it."""

from __future__ import annotations

import shutil

import pytest

from .pg_harness import (
    Cluster,
    create_table,
    ids,
    insert,
    slot_state,
    switch_wal,
    wait_for,
    wait_rows,
    wait_streaming,
)
from .test_readiness import answer

SLOT = "pg_standby_1"
# No WAL kept for standbys except through their slots.
NO_KEEP = {"wal_keep_size": "0", "max_wal_size": "64MB", "min_wal_size": "32MB"}


@pytest.fixture
def cluster(templated_cluster: Cluster) -> Cluster:
    """conftest's ``templated_cluster`` as this module's ``cluster`` (and so ``replicated``): init.sh
    and postgres start on data an initdb made once; what these tests watch is the slots."""
    return templated_cluster


def start_pair(cluster: Cluster, primary_settings: dict[str, str]) -> None:
    p = cluster.primary
    p.init()
    p.start(primary_settings)
    create_table(p)
    insert(p, 1)
    s = cluster.start_node(1)
    wait_streaming(s)
    wait_rows(s, [1])


def test_standby_down_keeps_its_wal_on_the_primary_and_catches_up(cluster: Cluster) -> None:
    start_pair(cluster, NO_KEEP | {"max_slot_wal_keep_size": "-1"})
    p, s = cluster.primary, cluster.node(1)
    assert f"primary_slot_name = '{SLOT}'" in (s.pgdata / "k8s-replication.conf").read_text()
    wait_for(lambda: slot_state(p, SLOT) == "t|reserved", 30, "the standby to stream through its slot")

    # replicas 2 -> 1: the standby pod is gone, its slot stays. The primary writes and
    # switches WAL well past wal_keep_size; a checkpoint removes what nothing keeps.
    s.stop()
    added = switch_wal(p, 4, first_id=2)
    # The segment the standby needs is older than the checkpoint's redo point: only its
    # slot keeps it (wal_keep_size is 0).
    kept = p.psql(
        "SELECT pg_walfile_name(restart_lsn + 1) IN (SELECT name FROM pg_ls_waldir()),"
        " pg_walfile_name(restart_lsn + 1) < (SELECT redo_wal_file FROM pg_control_checkpoint())"
        f" FROM pg_replication_slots WHERE slot_name = '{SLOT}'"
    )
    assert kept == "t|t"

    # replicas 1 -> 2: the standby comes back on its volume and streams everything.
    cp = s.init()
    assert "keeps this standby's WAL in the replication slot pg_standby_1" in cp.stderr
    s.start()
    wait_streaming(s)
    wait_rows(s, [1, *added])
    rc, why = answer(s)
    assert rc == 0, why


def test_slot_bound_loses_the_slot_instead_of_filling_the_volume(cluster: Cluster) -> None:
    start_pair(cluster, NO_KEEP | {"max_slot_wal_keep_size": "32MB"})
    p, s = cluster.primary, cluster.node(1)
    s.stop()
    added = switch_wal(p, 5, first_id=2)
    wait_for(lambda: slot_state(p, SLOT) == "f|lost", 30, "the slot to be invalidated")
    # Bounded: max_wal_size's worth of segments, not everything since the standby left.
    assert int(p.psql("SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'")) <= 6

    lost = (
        "standby fell behind: the primary no longer keeps the WAL it needs (slot pg_standby_1 lost); "
        "re-clone it: kubectl -n db delete pvc data-pg-standby-1 --wait=false && kubectl -n db delete pod pg-standby-1"
    )
    cp = s.init(POD_NAMESPACE="db")  # starts anyway: its data stays readable
    assert f"WARNING: {lost}" in cp.stderr, cp.stderr
    s.start()
    wait_for(lambda: s.readiness(POD_NAMESPACE="db").returncode == 1, 30, "readiness to answer")
    assert answer(s, POD_NAMESPACE="db") == (1, f"not ready: {lost}")
    rc, why = answer(s)
    assert rc == 1 and "kubectl -n <namespace> delete pvc data-pg-standby-1" in why, why
    assert ids(s) == [1]

    # Following the advice: an empty volume clones again, with a new slot.
    s.stop()
    shutil.rmtree(s.volume / "18")
    cp = s.init()
    assert "dropped the replication slot pg_standby_1" in cp.stderr
    s.start()
    wait_streaming(s)
    wait_for(lambda: slot_state(p, SLOT) == "t|reserved", 30, "the new slot in use")
    assert ids(s) == [1, *added]


def test_a_missing_slot_is_made_again(cluster: Cluster) -> None:
    start_pair(cluster, {})
    p, s = cluster.primary, cluster.node(1)
    drop = f"SELECT pg_drop_replication_slot('{SLOT}')"

    # At start: init.sh creates it.
    s.stop()
    p.psql(drop)
    cp = s.init()
    assert "created the replication slot pg_standby_1 on the primary" in cp.stderr
    assert slot_state(p, SLOT) == "f|reserved"

    # The primary is down when the standby starts (init.sh cannot check), and the
    # slot is gone when it comes back: readiness makes it, the WAL receiver's next
    # try streams.
    p.psql(drop)
    p.stop()
    cp = s.init()
    assert "cannot check the primary" in cp.stderr
    s.start()
    p.start(NO_KEEP)
    wait_for(lambda: "did not exist on the primary; created it" in s.readiness().stderr, 30, "readiness to make the slot")
    wait_streaming(s)
    wait_for(lambda: s.readiness().returncode == 0, 30, "the standby to be ready")
    insert(p, 2)
    wait_rows(s, [1, 2])
    assert slot_state(p, SLOT) == "t|reserved"
