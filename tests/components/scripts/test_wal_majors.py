"""wal-archive.sh and wal-restore.sh as the archive_command and restore_command of every other
supported major (15 from Debian, 16 and 17 from .pg-majors; 18 is the default of the other
test_wal_* modules): the server archives through the script, and a copy taken without WAL
(pg_basebackup -X none) recovers from the archive through the script, then promotes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .pg_harness import (
    Cluster,
    archived_count,
    as_run_user,
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
    source, copy = cluster.node(0), cluster.node(2)
    use_major(source, major, pg_bin)
    use_major(copy, major, pg_bin)
    initdb = [str(source.server_bin / "initdb"), "-D", str(source.pgdata), "-U", "postgres", "--auth-local=peer", "--wal-segsize=1"]
    subprocess.run(as_run_user(initdb, source.env()), check=True, capture_output=True)
    source.start(wal_settings())
    create_table(source)
    insert(source, 1, 2, 3)
    backup = [str(cluster.pg_bin / "pg_basebackup"), "-h", str(source.socket_dir), "-p", str(source.port), "-U", "postgres"]
    backup += ["-D", str(copy.pgdata), "-X", "none", "-c", "fast"]
    subprocess.run(as_run_user(backup, source.env()), check=True, capture_output=True)
    insert(source, 4, 5, 6)
    wait_archived(source)
    assert archived_count(source)[0] > 0

    (copy.pgdata / "recovery.signal").touch()
    subprocess.run(["chown", "postgres:postgres", str(copy.pgdata / "recovery.signal")], check=True)
    copy.start(wal_settings() | {"restore_command": f'{run_script_path("wal-restore.sh")} "%f" "%p"'})
    wait_for(lambda: not copy.in_recovery(), 60, f"the PostgreSQL {major} copy to recover and promote")
    assert ids(copy) == [1, 2, 3, 4, 5, 6]
    assert timeline(copy) == 2
    assert "restored log file" in copy.log_path.read_text()
