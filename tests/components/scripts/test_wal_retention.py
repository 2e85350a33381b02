"""wal-retention.sh's rule on a crafted archive (a directory target, no server): which base backups
and which WAL files go. The same rule over a real archive's listings is tested in test_wal_pitr.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.pod_env_contract import WAL_ENV

from .pg_harness import contract_env, scripts_dir

LIBS = ("lib-base.sh", "wal-target.sh", "wal-manifest.sh", "wal-retention.sh")
# (stamp, timeline, first segment): A and B on timeline 1; C on timeline 2, forked by a restore
# from A at segment 4, so it starts below B although it is newer.
BACKUPS = [("20260101T000000Z", 1, 2), ("20260102T000000Z", 1, 5), ("20260103T000000Z", 2, 4)]


def seg(tl: int, n: int) -> str:
    return f"{tl:08X}{0:08X}{n:08X}"


def archive(root: Path) -> Path:
    target = root / "archive"
    wal = target / "wal"
    wal.mkdir(parents=True)
    names = [seg(1, n) for n in range(1, 9)] + [seg(2, n) for n in range(4, 10)]
    names += ["00000002.history", f"{seg(1, 3)}.00000028.backup", f"{seg(1, 6)}.partial", "README"]
    for name in names:
        (wal / name).write_text(name)
    for stamp, tl, first in BACKUPS:
        d = target / "base" / stamp
        d.mkdir(parents=True)
        (d / "base.tar.gz").write_text("x")
        manifest = [f"stamp={stamp}", "pg_major=18", f"timeline={tl}", f"start_lsn=0/{first:X}000028", f"stop_lsn=0/{first:X}000100"]
        manifest += [f"start_wal={seg(tl, first)}", "wal_segment_size=16777216", "start_us=1", "stop_us=2"]
        (d / "MANIFEST").write_text("\n".join(manifest) + "\n")
    (target / "base" / "20260101T120000Z").mkdir()  # a run killed before its MANIFEST
    (target / "base" / "20260104T000000Z").mkdir()  # a run still uploading
    return target


def prune(target: Path, keep: int, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "WAL_TARGET": str(target), "WAL_KEEP_BACKUPS": str(keep), "TMPDIR": str(tmp)}
    env |= {"PRIMARY_HOST": "pg", "PGPORT": "5432", "SECRETS_DIR": "/secrets"}
    prelude = f'd=$1; shift; for f in {" ".join(LIBS)}; do . "$d/$f"; done; '
    snippet = 'load_env; WORK=$(mktemp -d "$TMPDIR/w.XXXXXX"); ERR_FILE=$WORK/err; load_backups; prune_archive'
    argv = ["bash", "-c", prelude + snippet, "wal-basebackup.sh", str(scripts_dir())]
    return subprocess.run(argv, capture_output=True, text=True, env=contract_env(WAL_ENV, env), timeout=60)


def left(target: Path, under: str) -> set[str]:
    return {p.name for p in (target / under).iterdir()}


def test_keeps_every_file_a_kept_backup_needs_whatever_its_timeline(tmp_path: Path) -> None:
    target = archive(tmp_path)
    cp = prune(target, 2, tmp_path)
    assert cp.returncode == 0, cp.stderr
    assert left(target, "base") == {"20260102T000000Z", "20260103T000000Z", "20260104T000000Z"}
    # C (timeline 2) starts at segment 4, below B: segment 4 on and every .history stay.
    assert left(target, "wal") == {
        *(seg(1, n) for n in range(4, 9)),
        *(seg(2, n) for n in range(4, 10)),
        "00000002.history",
        f"{seg(1, 6)}.partial",
        "README",
    }
    assert "retention: deleted base backup 20260101T000000Z" in cp.stderr
    assert "deleted 20260101T120000Z, an incomplete base backup" in cp.stderr


def test_with_every_backup_kept_only_older_wal_goes(tmp_path: Path) -> None:
    target = archive(tmp_path)
    cp = prune(target, 7, tmp_path)
    assert cp.returncode == 0, cp.stderr
    assert {"20260101T000000Z", "20260102T000000Z", "20260103T000000Z"} <= left(target, "base")
    assert seg(1, 1) not in left(target, "wal") and seg(1, 2) in left(target, "wal")


@pytest.mark.parametrize("field", ["start_wal", "stop_lsn"])
def test_a_manifest_without_its_fields_stops_before_deleting_anything(tmp_path: Path, field: str) -> None:
    target = archive(tmp_path)
    manifest = target / "base" / "20260102T000000Z" / "MANIFEST"
    manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines() if not line.startswith(field)))
    before = left(target, "wal"), left(target, "base")
    cp = prune(target, 1, tmp_path)
    assert cp.returncode == 1 and "MANIFEST lacks" in cp.stderr
    assert (left(target, "wal"), left(target, "base")) == before
