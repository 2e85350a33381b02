"""wal-archive.sh (archive_command) and wal-restore.sh (restore_command) on real PostgreSQL 18.

One primary archives to a directory target (a tmpfs of its own, so that the test can fill it)
for the whole module, through a stand-in rclone that passes every call to the real one
unless a flag file tells it to fail (the remote away) or to die half-way through an upload.
The same scripts against an S3 target (moto) are tested in test_wal_pitr.py.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .pg_harness import (
    SMALL_SEGMENT,
    Cluster,
    Node,
    archived_count,
    chown_run_user,
    run_wal_job,
    start_archiving_copy,
    wait_archived,
    wait_archived_cheaply,
    wait_for,
)

# The real rclone unless a flag file says otherwise: fail = the remote is away; die-mid = an upload
# killed half-way (half of the file written to the destination, then SIGKILL).
STAND_IN = """
flags={flags}
if [ -e "$flags/fail" ]; then echo "stand-in: the remote is away" >&2; exit 1; fi
if [ -e "$flags/die-mid" ]; then
  for a in "$@"; do last2=$last1; last1=$a; done
  case " $* " in *" copyto "*)
    mkdir -p "$(dirname "$last1")"
    head -c $(( $(stat -c %s "$last2") / 2 )) "$last2" > "$last1"
    kill -9 $$ ;;
  esac
fi
exec /usr/bin/rclone "$@"
"""


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class Archiving:
    def __init__(self, cluster: Cluster, target: Path, flags: Path) -> None:
        self.cluster, self.target, self.flags = cluster, target, flags

    @property
    def primary(self) -> Node:
        return self.cluster.primary

    def wal_files(self) -> list[str]:
        return sorted(p.name for p in (self.target / "wal").iterdir())


@pytest.fixture(scope="module")
def archiving(small_segment_template: Node) -> Iterator[Archiving]:
    if os.geteuid() != 0:
        pytest.fail("the WAL archive tests mount a tmpfs: run the script tests as root", pytrace=False)
    # Replication on: the base backup below connects as the replication role.
    cluster = Cluster(small_segment_template.cluster.pg_bin)
    target = cluster.base / "archive"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1G,mode=0700", "tmpfs", str(target)], check=True)
    chown_run_user(target)
    flags = cluster.job_dir("flags")
    flags.chmod(0o755)
    primary = cluster.primary
    rclone = primary.stand_in("rclone", STAND_IN.format(flags=flags))["PATH"].split(":", 1)[0] + "/rclone"
    cluster.extra_env.update({"WAL_TARGET": str(target), "WAL_RCLONE": rclone})
    try:
        # A copy of the 1 MiB-segment template (conftest): what these tests watch is the archiving, not initdb.
        start_archiving_copy(small_segment_template, primary)
        primary.psql("CREATE TABLE t (id int PRIMARY KEY)")
        yield Archiving(cluster, target, flags)
    finally:
        cluster.stop_all()
        subprocess.run(["umount", "-l", str(target)], check=False)
        cluster.close()


def test_segments_reach_the_directory_whole_and_come_back(archiving: Archiving, tmp_path: Path) -> None:
    p = archiving.primary
    p.psql("INSERT INTO t SELECT generate_series(1, 1000)")
    name = wait_archived(p)
    stored = archiving.target / "wal" / name
    assert stored.stat().st_size == SMALL_SEGMENT
    assert list((archiving.target / "incoming").iterdir()) == []
    out = archiving.cluster.job_dir("restored")
    cp = p.run_script("wal-restore.sh", name, str(out / "RECOVERYXLOG"))
    assert cp.stderr == ""
    assert md5(out / "RECOVERYXLOG") == md5(stored)
    # A file the archive does not hold: exit 1 and no log line (the normal end of the archive).
    cp = p.run_script("wal-restore.sh", "00000009.history", str(out / "RECOVERYHISTORY"), check=False)
    assert (cp.returncode, cp.stderr) == (1, "")


def test_the_same_content_again_is_success_and_other_content_is_refused(archiving: Archiving) -> None:
    p = archiving.primary
    name = wait_archived(p)
    stored = archiving.target / "wal" / name
    before = md5(stored)
    copy = archiving.cluster.job_dir("segments") / name
    copy.write_bytes(stored.read_bytes())
    chown_run_user(copy)
    cp = p.run_script("wal-archive.sh", str(copy), name)
    assert "already archived with the same size and md5" in cp.stderr
    with open(copy, "r+b") as f:
        f.seek(1000)
        f.write(b"\xff")
    cp = p.run_script("wal-archive.sh", str(copy), name, check=False)
    assert cp.returncode == 1
    assert f"FATAL: refusing to overwrite {stored}: it holds different content" in cp.stderr
    assert md5(stored) == before
    cp = p.run_script("wal-archive.sh", str(copy), "../../etc/passwd", check=False)
    assert cp.returncode == 1 and "not a WAL segment" in cp.stderr


def contiguous(names: list[str]) -> bool:
    """Whether the segments of timeline 1 among names follow each other without a hole."""
    segnos = [int(n[8:16], 16) * 4096 + int(n[16:24], 16) for n in names if len(n) == 24 and n.startswith("00000001")]
    return segnos == list(range(segnos[0], segnos[0] + len(segnos)))


def wait_failures(p: Node, more_than: int) -> None:
    wait_for(lambda: archived_count(p)[1] > more_than, 30, "pg_stat_archiver to count a failure")


def test_outages_leave_no_gap(archiving: Archiving) -> None:
    """The remote away, an upload killed half-way, the target full: PostgreSQL keeps the segments,
    counts the failures, and archives every one of them once the target is back; a restore from a
    base backup taken before the outages replays across them."""
    p, flags, target = archiving.primary, archiving.flags, archiving.target
    run_wal_job(archiving.cluster, "wal-basebackup.sh")
    first = wait_archived_cheaply(p)

    # The remote is away for three segments.
    failed = archived_count(p)[1]
    (flags / "fail").touch()
    for i in range(3):
        p.psql(f"INSERT INTO t VALUES ({100000 + i})")
        p.psql("SELECT pg_switch_wal()")
    wait_failures(p, failed)
    ready = list((p.pgdata / "pg_wal" / "archive_status").glob("*.ready"))
    assert ready, "PostgreSQL keeps the segments it could not archive"
    (flags / "fail").unlink()

    # An upload killed half-way: a short file under incoming/, never under wal/.
    last = wait_archived_cheaply(p)
    failed = archived_count(p)[1]
    (flags / "die-mid").touch()
    p.psql("INSERT INTO t VALUES (200000)")
    pending = p.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    p.psql("SELECT pg_switch_wal()")
    wait_failures(p, failed)
    assert (target / "incoming" / pending).stat().st_size == SMALL_SEGMENT // 2
    assert not (target / "wal" / pending).exists()
    (flags / "die-mid").unlink()

    # The target full: room for less than one more segment, then room again.
    last = wait_archived_cheaply(p)
    failed = archived_count(p)[1]
    used = int(subprocess.run(["df", "-B1", "--output=used", str(target)], capture_output=True, text=True).stdout.split()[-1])
    subprocess.run(["mount", "-o", f"remount,size={used + SMALL_SEGMENT // 4}", str(target)], check=True)
    p.psql("INSERT INTO t VALUES (300000)")
    p.psql("SELECT pg_switch_wal()")
    wait_failures(p, failed)
    assert f"FATAL: the WAL archive {target} is full: uploading" in p.log_path.read_text()
    subprocess.run(["mount", "-o", "remount,size=1G", str(target)], check=True)

    last = wait_archived_cheaply(p)
    names = [n for n in archiving.wal_files() if first <= n <= last]
    assert contiguous(names) and names[0] == first and names[-1] == last, names
    assert all((target / "wal" / n).stat().st_size == SMALL_SEGMENT for n in names)
    assert list((target / "incoming").iterdir()) == []

    restored = archiving.cluster.node(2)
    run_wal_job(archiving.cluster, "wal-pitr.sh", "--latest", PGDATA=str(restored.pgdata))
    restored.start()
    wait_for(lambda: not restored.in_recovery(), 60, "the restore across the outages to promote")
    assert restored.psql("SELECT count(*) FROM t WHERE id IN (100000, 100001, 100002, 200000, 300000)") == "5"
    restored.stop()
