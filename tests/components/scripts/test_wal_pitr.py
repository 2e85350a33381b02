"""Archiving, base backups, point-in-time restore and retention against an S3 archive (moto in
server mode), on real PostgreSQL 18: wal-archive.sh, wal-restore.sh, wal-basebackup.sh, wal-pitr.sh.

One primary archives to S3 for the whole module; the restores run into new data directories.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from collections.abc import Iterator

import pytest

from .pg_harness import (
    SMALL_SEGMENT,
    WAL_BUCKET,
    Cluster,
    HarnessError,
    MotoS3,
    Node,
    chown_run_user,
    run_wal_job,
    start_archiving_copy,
    timeline,
    wait_archived,
    wait_for,
    wal_settings,
)

TARGET = f"WAL:{WAL_BUCKET}/stack-a"


class Archive:
    def __init__(self, cluster: Cluster, s3: MotoS3) -> None:
        self.cluster, self.s3 = cluster, s3

    def files(self, under: str) -> list[str]:
        return sorted(self.s3.rclone("lsf", "-R", "--files-only", f"{TARGET}/{under}").split())

    def manifest(self, stamp: str) -> dict[str, str]:
        text = self.s3.rclone("cat", f"{TARGET}/base/{stamp}/MANIFEST")
        return dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("file="))

    def backups(self) -> list[str]:
        return sorted({f.split("/")[0] for f in self.files("base") if f.endswith("/MANIFEST")})


@pytest.fixture(scope="module")
def archive(small_segment_template: Node) -> Iterator[Archive]:
    try:
        cluster = Cluster(small_segment_template.cluster.pg_bin)
        s3 = MotoS3(cluster.base)
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    cluster.extra_env.update({"WAL_TARGET": TARGET, **s3.env})
    try:
        primary = cluster.primary
        # A copy of the 1 MiB-segment template (conftest): what these tests watch is the archive and the restores.
        start_archiving_copy(small_segment_template, primary)
        primary.psql("CREATE TABLE t (id int PRIMARY KEY)")
        yield Archive(cluster, s3)
    finally:
        cluster.close()
        s3.close()


def ids(node: Node) -> list[int]:
    return [int(x) for x in node.psql("SELECT id FROM t ORDER BY id").split()]


def restore_and_start(archive: Archive, ordinal: int, *args: str, archiving: bool = True) -> Node:
    """wal-pitr.sh into a new pod's empty PGDATA, then the server on it until it has promoted (archiving
    its new timeline to the same place unless told not to)."""
    node = archive.cluster.node(ordinal)
    cp = run_wal_job(archive.cluster, "wal-pitr.sh", *args, PGDATA=str(node.pgdata))
    assert "restore prepared" in cp.stderr
    node.start(wal_settings() if archiving else None)
    wait_for(lambda: not node.in_recovery(), 60, f"{node.name} to promote")
    return node


@pytest.fixture(scope="module")
def pitr(archive: Archive) -> str:
    """The point-in-time restores of test_pitr_to_a_time_or_lsn_between_two_commits, once per module whichever
    test asks first: test_retention_over_real_listings_keeps_every_segment_a_kept_backup_needs checks that
    retention keeps the timeline 2 they leave in the archive, so it must not depend on the order the tests run
    in (pytest-xdist may run it on a worker where the other did not run). Returns the base backup's stamp."""
    p = archive.cluster.primary
    p.psql("INSERT INTO t SELECT generate_series(1, 100)")
    earlier = set(archive.backups())  # a refusal test run first may have taken one
    cp = run_wal_job(archive.cluster, "wal-basebackup.sh")
    assert "base backup" in cp.stderr and "complete" in cp.stderr
    (stamp,) = set(archive.backups()) - earlier
    manifest = archive.manifest(stamp)
    assert manifest["pg_major"] == "18" and manifest["timeline"] == "1" and manifest["wal_segment_size"] == str(SMALL_SEGMENT)
    assert {f"base/{stamp}/{f}" for f in ("base.tar.gz", "pg_wal.tar.gz", "backup_manifest", "MANIFEST")} == {
        f"base/{f}" for f in archive.files("base") if f.startswith(f"{stamp}/")
    }

    p.psql("INSERT INTO t SELECT generate_series(101, 200)")
    target = p.psql("SELECT clock_timestamp()")
    target_lsn = p.psql("SELECT pg_current_wal_insert_lsn()")
    time.sleep(0.05)
    p.psql("INSERT INTO t SELECT generate_series(201, 300)")
    wait_archived(p)

    # By its WAL position first, not archiving: the archive keeps timeline 1 alone, whose latest
    # state (rows to 300) a restore without its target would reach.
    by_lsn = restore_and_start(archive, 3, "--lsn", target_lsn, archiving=False)
    assert ids(by_lsn) == list(range(1, 201))
    by_lsn.stop()

    node = restore_and_start(archive, 2, "--time", target)
    assert ids(node) == list(range(1, 201))
    assert timeline(node) == 2
    # The new primary archives its timeline's history to the same place.
    # Waited for on the server's side (its .done marker, a file test), not by polling the archive's listing (an
    # rclone run and moto's work each time); the listing is read once.
    done = node.pgdata / "pg_wal" / "archive_status" / "00000002.history.done"
    wait_for(done.exists, 30, "00000002.history archived")
    assert "00000002.history" in archive.files("wal")
    assert "restore_command" in (node.pgdata / "pgstack-pitr.conf").read_text()
    run_wal_job(archive.cluster, "wal-pitr.sh", "--finish", PGDATA=str(node.pgdata))
    assert not (node.pgdata / "pgstack-pitr.conf").exists()
    node.stop()
    return stamp


def test_pitr_to_a_time_or_lsn_between_two_commits(archive: Archive, pitr: str) -> None:
    """By its WAL position and by a time between two commits: the assertions are the fixture's steps (pitr), which
    the retention test may have run first (its base backup may be gone since: retention keeps the newest two)."""
    assert re.fullmatch(r"\d{8}T\d{6}Z", pitr), pitr


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (
            ("--time", "2001-02-03 04:05:06+00"),
            "refusing --time '2001-02-03 04:05:06+00' (2001-02-03T04:05:06.000000Z): it is before the end of the oldest base backup",
        ),
        (("--time", "tomorrow"), "is after the newest archived WAL (in the future of the archive)"),
        (("--lsn", "0/10"), "refusing --lsn 0/10: it is before the end of the oldest base backup"),
        (("--lsn", "FF/0"), "refusing --lsn FF/0: it is after the newest archived WAL"),
    ],
)
def test_a_target_outside_the_archive_is_refused_naming_the_range(archive: Archive, args: tuple[str, ...], refusal: str) -> None:
    if not archive.backups():
        run_wal_job(archive.cluster, "wal-basebackup.sh")
    oldest = archive.backups()[0]
    pgdata = archive.cluster.base / "refused" / "pgdata"
    cp = run_wal_job(archive.cluster, "wal-pitr.sh", *args, PGDATA=str(pgdata), check=False)
    assert cp.returncode == 1, cp.stderr
    assert refusal in cp.stderr
    stop_time = archive.manifest(oldest)["stop_time"]
    assert f"the archive covers {stop_time} (end of the oldest base backup {oldest}" in cp.stderr
    assert not pgdata.exists()
    # The range check alone (bin/restore-pitr's first step) refuses the same target the same way.
    check = run_wal_job(archive.cluster, "wal-pitr.sh", "--check", *args, PGDATA=str(pgdata), check=False)
    assert (check.returncode, check.stdout) == (1, "") and refusal in check.stderr


def test_a_data_directory_that_is_not_empty_is_refused(archive: Archive) -> None:
    pgdata = archive.cluster.job_dir("not-empty")
    (pgdata / "PG_VERSION").write_text("18\n")
    cp = run_wal_job(archive.cluster, "wal-pitr.sh", "--latest", PGDATA=str(pgdata), check=False)
    assert cp.returncode == 1 and f"PGDATA={pgdata} is not empty" in cp.stderr
    assert [p.name for p in pgdata.iterdir()] == ["PG_VERSION"]
    # The range check reads no data directory: it names the backup a restore would use and the range, and
    # touches nothing.
    if not archive.backups():
        run_wal_job(archive.cluster, "wal-basebackup.sh")
    newest = archive.backups()[-1]
    check = run_wal_job(archive.cluster, "wal-pitr.sh", "--check", "--latest", PGDATA=str(pgdata))
    assert check.stdout.startswith(f"base backup {newest} (ended ") and "; the archive covers " in check.stdout
    assert [p.name for p in pgdata.iterdir()] == ["PG_VERSION"]


def basebackup(archive: Archive, keep: str = "7") -> subprocess.CompletedProcess[str]:
    """wal-basebackup.sh, in another second than the newest backup (its stamp names the directory)."""
    newest = (archive.backups() or [""])[-1]
    while time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) == newest:
        time.sleep(0.05)
    return run_wal_job(archive.cluster, "wal-basebackup.sh", WAL_KEEP_BACKUPS=keep)


def segno(name: str) -> int:
    return int(name[8:16], 16) * 4096 + int(name[16:24], 16)


def test_retention_over_real_listings_keeps_every_segment_a_kept_backup_needs(archive: Archive, pitr: str) -> None:
    p = archive.cluster.primary
    while len(archive.backups()) < 2:
        basebackup(archive)
    before = archive.backups()
    for i in range(2):
        p.psql(f"INSERT INTO t VALUES ({1000 + i})")
        wait_archived(p)
    cp = basebackup(archive, keep="2")
    after = archive.backups()
    assert after == [*before[-1:], after[-1]] and after[-1] not in before
    oldest_start = archive.manifest(after[0])["start_wal"]
    assert "retention: deleted base backup" in cp.stderr
    wal = [f for f in archive.files("wal") if not f.endswith(".history")]
    assert wal and all(segno(f) >= segno(oldest_start) for f in wal), (oldest_start, wal)
    # Nothing the oldest kept backup needs is gone: every timeline-1 segment from its start on.
    tl1 = [segno(f) for f in wal if f.startswith("00000001") and len(f) == 24]
    assert tl1[0] == segno(oldest_start) and tl1 == list(range(tl1[0], tl1[0] + len(tl1)))
    assert "00000002.history" in archive.files("wal")


def test_the_job_and_restore_scripts_name_a_missing_variable(archive: Archive) -> None:
    cp = run_wal_job(archive.cluster, "wal-basebackup.sh", check=False, PRIMARY_HOST="")
    assert cp.returncode == 1 and cp.stderr.rstrip().endswith("FATAL: environment variable PRIMARY_HOST is required"), cp.stderr
    cp = run_wal_job(archive.cluster, "wal-pitr.sh", "--latest", check=False, PGDATA="")
    assert cp.returncode == 1 and cp.stderr.rstrip().endswith("FATAL: environment variable PGDATA is required"), cp.stderr


def test_archive_and_restore_commands_through_s3(archive: Archive) -> None:
    """The same file again is success, other content under its name is refused, a missing file is
    a quiet 1, and with the endpoint away the archive fails and the restore stops the recovery (126)."""
    p, cluster = archive.cluster.primary, archive.cluster
    name = wait_archived(p)
    assert name in archive.files("wal")
    out = cluster.job_dir("s3-restored")
    cp = p.run_script("wal-restore.sh", name, str(out / "x"))
    assert cp.stderr == ""
    segment = out / "x"
    chown_run_user(segment)
    assert "already archived with the same size and md5" in p.run_script("wal-archive.sh", str(segment), name).stderr
    cp = p.run_script("wal-restore.sh", "000000010000000000000F77", str(out / "y"), check=False)
    assert (cp.returncode, cp.stderr) == (1, "")
    before = hashlib.md5(segment.read_bytes()).hexdigest()
    with open(segment, "r+b") as f:
        f.write(b"changed")
    cp = p.run_script("wal-archive.sh", str(segment), name, check=False)
    assert cp.returncode == 1 and f"refusing to overwrite {TARGET}/wal/{name}" in cp.stderr
    p.run_script("wal-restore.sh", name, str(out / "again"))
    assert hashlib.md5((out / "again").read_bytes()).hexdigest() == before, "the stored segment is unchanged"
    away = {"RCLONE_CONFIG_WAL_ENDPOINT": "http://127.0.0.1:9"}
    cp = p.run_script("wal-archive.sh", str(segment), name, env=away, check=False)
    assert cp.returncode == 1 and f"cannot look up {TARGET}/wal/{name}" in cp.stderr
    cp = p.run_script("wal-restore.sh", name, str(out / "z"), env=away, check=False)
    assert cp.returncode == 126 and "ERROR: cannot look up" in cp.stderr
