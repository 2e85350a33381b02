"""wal-archive.sh and wal-restore.sh as the archive_command and restore_command of every other
supported major (15 from Debian, 16 and 17 from .pg-majors; 18 is the default of the other
test_wal_* modules): the server archives through the script, and its stopped data directory
recovers from the archive through the script, then promotes."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .pg_harness import (
    Cluster,
    archived_count,
    as_run_user,
    chown_run_user,
    create_table,
    ids,
    insert,
    run_script_path,
    timeline,
    wait_archived,
    wait_for,
    wal_settings,
)
from .test_majors import use_major


@pytest.mark.parametrize("major", ["15", "16", "17"])
def test_archive_and_restore_commands(make_cluster: Callable[..., Cluster], pg_bin: Path, major: str) -> None:
    cluster = make_cluster(replication=False)
    target = cluster.job_dir("archive")
    cluster.extra_env["WAL_TARGET"] = str(target)
    node = cluster.node(0)
    use_major(node, major, pg_bin)
    initdb = [str(node.server_bin / "initdb"), "-D", str(node.pgdata), "-U", "postgres", "--auth-local=peer", "--wal-segsize=1"]
    subprocess.run(as_run_user(initdb, node.env()), check=True, capture_output=True)
    node.start(wal_settings())
    create_table(node)
    insert(node, 1, 2, 3)
    wait_archived(node)  # the segment of the last checkpoint: crash recovery reads it from pg_wal
    insert(node, 4, 5, 6)
    archived = wait_archived(node)
    insert(node, 7, 8, 9)
    assert archived_count(node)[0] >= 2 and (target / "wal" / archived).is_file()
    # A crash (immediate shutdown), and the segment after the checkpoint's gone from pg_wal: rows 4
    # to 6 are in the archive only.
    pid, proc = node.postmaster_pid(), node.proc
    assert pid is not None and proc is not None
    os.kill(pid, signal.SIGQUIT)
    proc.wait(timeout=30)
    node.proc = None
    (node.pgdata / "pg_wal" / archived).unlink()

    # Crash recovery replays pg_wal up to the missing segment, then archive recovery asks
    # restore_command for it (and for timeline histories), and takes the rest from pg_wal.
    (node.pgdata / "recovery.signal").touch()
    chown_run_user(node.pgdata / "recovery.signal")
    node.start(wal_settings() | {"restore_command": f'{run_script_path("wal-restore.sh")} "%f" "%p"'})
    wait_for(lambda: not node.in_recovery(), 60, f"PostgreSQL {major} to recover and promote")
    assert ids(node) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert timeline(node) == 2
    assert f'restored log file "{archived}" from archive' in node.log_path.read_text()
