"""sync-passwords.sh warns each pass while the primary's pg_wal is over its WAL budget with segments waiting to be
archived, and readiness stays as it is (a primary stuck archiving keeps serving); bin/verify's pg_stat_archiver query
reads the failing archiver, then the recovered one. On real PostgreSQL 18."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from tools.verify.steps import psql_local_command
from tools.verify.wal import ARCHIVER_SQL, archive_note

from .pg_harness import Cluster, Node, as_run_user, copy_primary_data, wait_for

BUDGET = {"max_wal_size": "4MB", "min_wal_size": "2MB"}  # 4 segments of 1 MiB (small_segments)
WARNING = re.compile(
    r"warning: pg_wal holds (\d+) MiB, over the WAL budget \(max_wal_size 4 MiB\), with (\d+) segments waiting to be "
    r"archived \((\d+) failed attempts, the last on ([0-9A-F]{24})\): archiving is stuck or behind"
)


@pytest.fixture(scope="module")
def primary(small_segment_template: Node) -> Iterator[Node]:
    cluster = Cluster(small_segment_template.cluster.pg_bin, replication=False)
    try:
        node = cluster.primary
        # A copy of the 1 MiB-segment template (conftest): what these tests watch is the archiver's backlog.
        copy_primary_data(small_segment_template, node)
        node.init()
        # A target that is down: the archive command fails, as rclone does without its remote, until the flag file
        # exists; the teardown creates it, or the shutdown spends seconds retrying (pgarch.c NUM_ARCHIVE_RETRIES).
        up = cluster.base / "target-up"
        node.start({"archive_mode": "on", "archive_command": f"test -f {up}", "archive_timeout": "0", **BUDGET})
        yield node
        if not up.exists():
            up.touch()
    finally:
        cluster.close()


def _switch(node: Node, segments: int) -> None:
    for _ in range(segments):
        node.psql("SELECT pg_logical_emit_message(false, 'pgstack', 'fill')")
        node.psql("SELECT pg_switch_wal()")


def test_the_backlog_warning_names_the_numbers_and_the_pod_stays_ready(primary: Node) -> None:
    quiet = primary.sync_passwords_once()
    assert quiet.returncode == 0, quiet.stderr
    assert "pg_wal holds" not in quiet.stderr  # within the budget: nothing to say

    _switch(primary, 7)
    primary.psql("CHECKPOINT")  # removes nothing: every finished segment still waits for the archiver
    ready = sorted(p.name for p in (primary.pgdata / "pg_wal" / "archive_status").glob("*.ready"))
    on_disk = sum(p.stat().st_size for p in (primary.pgdata / "pg_wal").iterdir() if re.fullmatch(r"[0-9A-F]{24}", p.name))
    assert len(ready) >= 7 and on_disk > 4 << 20

    warned = primary.sync_passwords_once()
    assert warned.returncode == 0, warned.stderr
    found = WARNING.search(warned.stderr)
    assert found, warned.stderr
    mib, waiting, failed, last = found.groups()
    # The numbers are the server's own, against what the file system shows.
    assert int(mib) == on_disk >> 20 and int(waiting) == len(ready)
    assert int(failed) > 0 and f"{last}.ready" in ready

    readiness = primary.readiness()
    assert readiness.returncode == 0, readiness.stdout + readiness.stderr


def _verify_note(node: Node) -> str:
    """bin/verify's archive line, from its query run as the pod runs it."""
    cp = subprocess.run(as_run_user(psql_local_command(ARCHIVER_SQL, str(node.socket_dir)), node.env()), capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    return archive_note(cp.stdout, "pg-0", 300)


def test_bin_verify_reads_the_failing_and_then_the_recovered_archiver(primary: Node) -> None:
    _switch(primary, 1)
    failing = _verify_note(primary)
    assert re.fullmatch(
        r"warning: WAL archive: pg-0 has archived no segment yet; \d+ failed attempts, the last on [0-9A-F]{24} "
        r"\(failing now: newer than the last success\)",
        failing,
    ), failing
    up = primary.cluster.base / "target-up"
    up.touch()  # the target is back: the archiver catches up
    try:
        wait_for(lambda: not list((primary.pgdata / "pg_wal" / "archive_status").glob("*.ready")), 30, "the backlog archived")
        archived = _verify_note(primary)
        assert re.fullmatch(
            r"WAL archive: newest segment [0-9A-F]{24} archived \d+ s ago by pg-0; \d+ failed attempts, the last on [0-9A-F]{24}", archived
        ), archived
    finally:
        up.unlink()  # down again, as the other test of the module expects whichever runs first
