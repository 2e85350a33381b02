"""Moving PRIMARY_POD to a pod whose data is a standby's is a real promotion (a new
timeline), and the old primary rejoins as a standby: it follows the new timeline
when it wrote nothing past the promotion point, and is told to re-clone when it did."""

from __future__ import annotations

import pytest

from .pg_harness import (
    Cluster,
    create_table,
    ids,
    insert,
    slot_state,
    switch_wal,
    timeline,
    wait_for,
    wait_rows,
    wait_streaming,
)
from .test_readiness import answer
from .test_slots import NO_KEEP, SLOT

# As the pod runs them: more WAL senders than the default 10. A hot standby refuses to
# run with less than the primary had, so the promotion's temporary server must match.
POD_SETTINGS = {"max_wal_senders": "20"}


@pytest.fixture
def cluster(templated_cluster: Cluster) -> Cluster:
    """conftest's ``templated_cluster`` as this module's ``cluster`` (and so ``replicated``): init.sh
    and postgres start on data an initdb made once; what these tests watch is the promotion and the rejoin."""
    return templated_cluster


def start_pair(c: Cluster) -> None:
    c.start_node(0, POD_SETTINGS)
    c.start_node(1, POD_SETTINGS)
    wait_streaming(c.node(1))


def stop_both_then_promote_by_config(c: Cluster, write_on_old_primary_after: bool) -> dict[str, str]:
    old, new = c.primary, c.node(1)
    create_table(old)
    insert(old, 1, 2)
    wait_rows(new, [1, 2])
    old.stop()  # clean shutdown: the standby receives all of it
    new.stop()
    if write_on_old_primary_after:
        # The old primary comes back once, still configured as the primary, and takes writes.
        old.start(POD_SETTINGS)
        insert(old, 99)
        old.stop()

    # `pulumi up` with replication.primary = pg-standby-1: its pod restarts as the primary.
    moved = {"PRIMARY_POD": new.name, "PRIMARY_PORT": str(new.port)}
    assert (new.pgdata / "standby.signal").exists()
    cp = new.init(**moved)
    assert "promoting: this pod was a standby and is now configured as the primary; new timeline 2" in cp.stderr
    assert not (new.pgdata / "standby.signal").exists()
    new.start(POD_SETTINGS)
    assert not new.in_recovery()
    assert timeline(new) == 2
    assert ids(new) == [1, 2]
    insert(new, 3)
    assert answer(new, **moved) == (0, "ready: primary accepting connections")
    return moved


def test_standby_data_made_primary_is_promoted_and_the_old_primary_follows(cluster: Cluster) -> None:
    start_pair(cluster)
    old, new = cluster.primary, cluster.node(1)
    moved = stop_both_then_promote_by_config(cluster, write_on_old_primary_after=False)

    # The old primary stopped cleanly before the promotion point: it follows timeline 2.
    cp = old.init(**moved)
    assert "diverged" not in cp.stderr
    assert "created the replication slot pg_0 on the primary" in cp.stderr
    old.start(POD_SETTINGS)
    wait_streaming(old)
    wait_rows(old, [1, 2, 3])
    assert old.psql("SELECT received_tli FROM pg_stat_wal_receiver") == "2"
    wait_for(lambda: old.readiness(**moved).returncode == 0, 30, "the old primary to be a ready standby")
    insert(new, 4)
    wait_rows(old, [1, 2, 3, 4])
    assert slot_state(new, "pg_0") == "t|reserved"


def test_old_primary_that_wrote_past_the_promotion_point_is_told_to_reclone(cluster: Cluster) -> None:
    start_pair(cluster)
    old = cluster.primary
    moved = stop_both_then_promote_by_config(cluster, write_on_old_primary_after=True)

    diverged = "diverged: this pod wrote WAL past the promotion point of timeline 2 (its WAL on timeline 1 reaches "
    reclone = "re-clone it: kubectl -n <namespace> delete pvc data-pg-0 --wait=false && kubectl -n <namespace> delete pod pg-0"
    cp = old.init(**moved)  # logged, not refused: its data (row 99) stays readable
    assert f"WARNING: {diverged}" in cp.stderr and reclone in cp.stderr, cp.stderr
    old.start(POD_SETTINGS)
    assert old.in_recovery()
    wait_for(lambda: diverged in old.readiness(**moved).stderr, 30, "readiness to say the pod diverged")
    rc, why = answer(old, **moved)
    assert rc == 1 and why.startswith(f"not ready: {diverged}") and why.endswith(reclone), why
    assert ids(old) == [1, 2, 99]


def test_failing_back_drops_the_slots_the_old_primary_kept_so_its_standby_streams(cluster: Cluster) -> None:
    """Fail over and back: the first primary's data still has the slot of the standby it served.
    Invalidated while that data was a standby, the slot would keep the standby from streaming;
    the promotion drops it, and the standby makes a new one."""
    start_pair(cluster)
    first, second = cluster.primary, cluster.node(1)
    moved = stop_both_then_promote_by_config(cluster, write_on_old_primary_after=False)
    first.init(**moved)
    # Small WAL bounds on the rejoined pod (its volume's are GBs here), so that the carried slot
    # (SLOT, second's) is invalidated at its next restartpoint once the new primary has written more.
    first.start(POD_SETTINGS | NO_KEEP | {"max_slot_wal_keep_size": "32MB"})
    wait_streaming(first)
    switch_wal(second, 6, first_id=10)
    wait_rows(first, [1, 2, 3, *range(10, 16)])
    done = second.psql("SELECT pg_current_wal_lsn()")
    wait_for(lambda: first.psql(f"SELECT pg_last_wal_replay_lsn() >= '{done}'") == "t", 30, "the primary's checkpoint replayed")

    def invalidated() -> bool:
        first.psql("CHECKPOINT")  # a restartpoint: it invalidates slots past max_slot_wal_keep_size
        return slot_state(first, SLOT) == "f|lost"

    wait_for(invalidated, 30, f"the carried slot {SLOT} to be invalidated on the rejoined pod")

    # `pulumi up` with replication.primary back to null: the first pod is the primary again.
    second.stop()  # the primary first, cleanly: the standby receives all of its WAL
    first.stop()
    back = {"PRIMARY_POD": first.name, "PRIMARY_PORT": str(first.port)}
    cp = first.init(**back)
    assert f"dropped the physical replication slots this pod's data kept from an earlier time as the primary: {SLOT} " in cp.stderr
    first.start(POD_SETTINGS)
    assert not first.in_recovery() and timeline(first) == 3
    assert first.psql("SELECT count(*) FROM pg_replication_slots") == "0"

    cp = second.init(**back)
    assert f"created the replication slot {SLOT} on the primary" in cp.stderr, cp.stderr
    second.start(POD_SETTINGS)
    wait_streaming(second)
    insert(first, 20)
    wait_rows(second, [1, 2, 3, *range(10, 16), 20])
    assert slot_state(first, SLOT) == "t|reserved"
