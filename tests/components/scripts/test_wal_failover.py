"""A failover while archiving, on real PostgreSQL 18: the standby archives nothing while it is one
(archive_mode=on), the promoted standby archives its new timeline, its .history and the old
timeline's .partial segment to the same directory target, and a point-in-time restore to a time
after the promotion replays across the timeline switch."""

from __future__ import annotations

import time
from collections.abc import Callable

from .pg_harness import (
    Cluster,
    Node,
    archived_count,
    create_table,
    ids,
    insert,
    run_wal_job,
    start_archiving_copy,
    timeline,
    wait_archived,
    wait_for,
    wait_rows,
    wait_streaming,
    wal_settings,
)


def test_the_promoted_standby_archives_its_timeline_and_pitr_crosses_it(
    make_cluster: Callable[..., Cluster], small_segment_template: Node
) -> None:
    cluster = make_cluster()
    target = cluster.job_dir("archive")
    cluster.extra_env["WAL_TARGET"] = str(target)
    primary, standby = cluster.node(0), cluster.node(1)
    # A copy of the 1 MiB-segment template (conftest): the archive across a failover is the test, not initdb.
    start_archiving_copy(small_segment_template, primary)
    standby.init()
    standby.start(wal_settings())
    wait_streaming(standby)

    create_table(primary)
    insert(primary, *range(1, 11))
    run_wal_job(cluster, "wal-basebackup.sh")
    insert(primary, *range(11, 21))
    wait_archived(primary)
    wait_rows(standby, list(range(1, 21)))
    # A standby with archive_mode=on archives nothing: only the primary's timeline 1 is there.
    assert archived_count(standby) == (0, 0)
    assert {f.name[:8] for f in (target / "wal").iterdir()} == {"00000001"}

    primary.stop()
    standby.psql("SELECT pg_promote()")
    wait_for(lambda: not standby.in_recovery(), 30, "the standby to promote")
    insert(standby, *range(21, 31))
    after_promotion = standby.psql("SELECT clock_timestamp()")
    time.sleep(0.05)
    insert(standby, *range(31, 41))
    wait_archived(standby)
    names = sorted(f.name for f in (target / "wal").iterdir())
    assert "00000002.history" in names
    assert any(n.startswith("00000002") and len(n) == 24 for n in names), names
    assert any(n.startswith("00000001") and n.endswith(".partial") for n in names), names

    restored = cluster.node(2)
    run_wal_job(cluster, "wal-pitr.sh", "--time", after_promotion, PGDATA=str(restored.pgdata))
    # Not archiving: nothing here checks what the restored server would archive (timeline 3), and each
    # segment it archived would cost an rclone run.
    restored.start()
    wait_for(lambda: not restored.in_recovery(), 60, "the restored server to promote")
    assert ids(restored) == list(range(1, 31))
    assert timeline(restored) == 3
