"""A new stack's primary bootstrapped from another stack's archive at a point in time (init-pitr.sh, the branch
init-primary.sh takes for an empty volume with PITR_FROM set), on real PostgreSQL 18: exactly the rows committed
before the target, promoted onto a new timeline archived to the new stack's own archive; a volume with data is
left alone."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .pg_harness import (
    Cluster,
    HarnessError,
    Node,
    chown_run_user,
    require_pg_bin,
    run_wal_job,
    start_archiving_copy,
    timeline,
    wait_archived,
)


def _directory(cluster: Cluster, name: str) -> Path:
    path = cluster.base / name
    path.mkdir()
    chown_run_user(path)
    return path


def ids(node: Node) -> list[int]:
    return [int(x) for x in node.psql("SELECT id FROM t ORDER BY id").split()]


@pytest.fixture(scope="module")
def source(small_segment_template: Node) -> Iterator[tuple[Cluster, Path, str]]:
    """Stack A: archives to a directory, one base backup, 200 rows before the target and 100 after."""
    cluster = Cluster(small_segment_template.cluster.pg_bin)
    archive = _directory(cluster, "archive-a")
    cluster.extra_env.update({"WAL_TARGET": str(archive)})
    try:
        p = cluster.primary
        # A copy of the 1 MiB-segment template (conftest): stack A's initdb is not what these tests watch.
        start_archiving_copy(small_segment_template, p)
        p.psql("CREATE TABLE t (id int PRIMARY KEY)")
        p.psql("INSERT INTO t SELECT generate_series(1, 100)")
        run_wal_job(cluster, "wal-basebackup.sh")
        p.psql("INSERT INTO t SELECT generate_series(101, 200)")
        target = p.psql("SELECT clock_timestamp()")
        time.sleep(0.05)
        p.psql("INSERT INTO t SELECT generate_series(201, 300)")
        wait_archived(p)
        yield cluster, archive, target
    finally:
        cluster.close()


def _checkpoint(node: Node) -> str:
    out = subprocess.run([f"{node.server_bin}/pg_controldata", "-D", str(node.pgdata)], capture_output=True, text=True, check=True).stdout
    return next(line for line in out.splitlines() if line.startswith("Latest checkpoint location"))


def test_an_empty_primary_is_restored_to_the_point_and_a_volume_with_data_is_left_alone(source: tuple[Cluster, Path, str]) -> None:
    _, archive_a, target = source
    try:
        cluster = Cluster(require_pg_bin())
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        archive_b = _directory(cluster, "archive-b")
        restore = {"PITR_FROM": str(archive_a), "PITR_TARGET": target, "WAL_TARGET": str(archive_b)}
        node = cluster.primary
        cp = node.init(**restore)
        assert f"restoring from the WAL archive {archive_a} to {target} instead of initdb" in cp.stderr
        assert "initialising a new cluster" not in cp.stderr
        assert not (node.pgdata / "pgstack-pitr.conf").exists() and not (node.pgdata / "recovery.signal").exists()
        # Promoted by the init container's temporary server, which archived the new timeline to this stack's archive.
        assert (archive_b / "wal" / "00000002.history").is_file()
        node.start()
        assert not node.in_recovery()
        assert ids(node) == list(range(1, 201)), "exactly the rows committed before the target"
        assert timeline(node) == 2
        node.stop()
        before = _checkpoint(node)

        # The next start (PITR_FROM still set): the data is kept, nothing is restored over it.
        cp = node.init(**restore)
        assert "keeping the existing data directory" in cp.stderr and "restoring from the WAL archive" not in cp.stderr
        assert _checkpoint(node) == before
    finally:
        cluster.close()
