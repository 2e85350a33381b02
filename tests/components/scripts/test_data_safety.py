"""Data on the volume is never hidden, never written into when it is incomplete, and a
full volume is told as such: init.sh against real PostgreSQL and real (tmpfs) file systems.

Also the WAL settings sized to the volume (k8s-volume.conf): the numbers, and a running
server that reports them and follows the volume when it grows.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .pg_harness import RUN_USER, TEST_SERVER_SETTINGS, Cluster, Node, chown_run_user, copy_primary_data, run_library

MiB = 1024 * 1024
GiB = 1024 * MiB
PAGE = os.sysconf("SC_PAGE_SIZE")
VOLUME_KEYS = ("max_wal_size", "min_wal_size", "wal_keep_size", "max_slot_wal_keep_size")


def tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under root (root included): mode and, for files, content."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        out[str(path.relative_to(root))] = (st.st_mode, content)
    return out


def fatal_lines(stderr: str) -> list[str]:
    """init.sh's own fatal messages (not those of the tools it ran)."""
    return [line for line in stderr.splitlines() if "init.sh[" in line and "FATAL:" in line]


def refusal(cp: subprocess.CompletedProcess[str]) -> str:
    """The one fatal message of a failed init.sh run."""
    assert cp.returncode != 0
    fatal = fatal_lines(cp.stderr)
    assert len(fatal) == 1, cp.stderr
    return fatal[0]


# ------------------------------------------------------------ file systems


def fill(volume: Path) -> Path:
    """Fill the file system of volume to the last page; return the filler file (a whole number of pages)."""
    filler = volume / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (b"\0" * MiB, b"\0" * PAGE):
            try:
                while os.write(fd, chunk) == len(chunk):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        os.ftruncate(fd, os.fstat(fd).st_size // PAGE * PAGE)
    finally:
        os.close(fd)
    st = os.statvfs(volume)
    assert st.f_bavail == 0, f"{volume} still has {st.f_bavail} free blocks"
    return filler


def run_init(node: Node) -> subprocess.CompletedProcess[str]:
    return node.run_script("init.sh", check=False)


def copy_cluster(template: Node, dest: Path, volume: Path) -> None:
    """A copy of conftest's ``template`` (a primary's data directory as init.sh makes it: one initdb per
    worker) at dest on volume, everything on the volume owned by postgres."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--", f"{template.pgdata}/.", str(dest)], check=True)
    subprocess.run(["chown", "-R", f"{RUN_USER}:", str(volume)], check=True)


# ------------------------------------------------- volume-sized WAL settings


@pytest.mark.parametrize(
    ("size", "replication", "expected"),
    [
        (1 * GiB, True, {"max_wal_size": "256MB", "min_wal_size": "64MB", "wal_keep_size": "128MB", "max_slot_wal_keep_size": "256MB"}),
        (
            20 * GiB,
            True,
            {"max_wal_size": "1024MB", "min_wal_size": "256MB", "wal_keep_size": "1024MB", "max_slot_wal_keep_size": "5120MB"},
        ),
        # A quarter of 100Mi is 25MB, but PostgreSQL refuses less than two 16MB WAL segments.
        (100 * MiB, True, {"max_wal_size": "32MB", "min_wal_size": "32MB", "wal_keep_size": "12MB", "max_slot_wal_keep_size": "25MB"}),
        (512 * 1024, True, {"max_wal_size": "32MB", "min_wal_size": "32MB", "wal_keep_size": "1MB", "max_slot_wal_keep_size": "1MB"}),
        (1 * GiB, False, {"max_wal_size": "256MB", "min_wal_size": "64MB"}),
    ],
)
def test_volume_settings_for_a_volume_size(size: int, replication: bool, expected: dict[str, str]) -> None:
    cp = run_library(
        'volume_settings "$1"',
        str(size),
        libs=["lib-base.sh", "init-wal-sizing.sh"],
        env={"PATH": "/usr/bin:/bin", "REPLICATION_ENABLED": str(replication).lower()},
    )
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines() == [f"{k} = '{v}'" for k, v in expected.items()]


def test_server_runs_with_the_volume_settings_and_follows_a_grown_volume(
    cluster: Cluster, mount_tmpfs: Callable[[Path, str], None], template: Node
) -> None:
    p = cluster.primary
    mount_tmpfs(p.volume, "1G")
    # Data init.sh made elsewhere: the settings are sized to the volume at every start, this one's first.
    copy_cluster(template, p.pgdata, p.volume)
    # The command line must not set them: it would override the file.
    base = {k: v for k, v in TEST_SERVER_SETTINGS.items() if k not in VOLUME_KEYS}

    def shown() -> dict[str, tuple[str, str]]:
        out = p.psql(f"SELECT name, current_setting(name), sourcefile FROM pg_settings WHERE name IN {VOLUME_KEYS!r} ORDER BY 1")
        rows = [line.split("|") for line in out.splitlines()]
        return {name: (value, Path(src).name) for name, value, src in rows}

    p.init()
    p.start(base_settings=base)
    conf = "k8s-volume.conf"
    assert shown() == {
        "max_slot_wal_keep_size": ("256MB", conf),
        "max_wal_size": ("256MB", conf),
        "min_wal_size": ("64MB", conf),
        "wal_keep_size": ("128MB", conf),
    }
    p.stop()

    # The PVC is expanded in place: the next start sees the larger file system, and no
    # pod template changes.
    subprocess.run(["mount", "-o", "remount,size=2G", str(p.volume)], check=True)
    p.init()
    p.start(base_settings=base)
    assert shown() == {
        "max_slot_wal_keep_size": ("512MB", conf),
        "max_wal_size": ("512MB", conf),
        "min_wal_size": ("128MB", conf),
        "wal_keep_size": ("256MB", conf),
    }
    lines = (p.pgdata / "postgresql.conf").read_text().splitlines()
    assert lines.count("include_if_exists = 'k8s-volume.conf'") == 1
    assert lines.count("include_if_exists = 'k8s-replication.conf'") == 1


# ----------------------------------------------- incomplete data directories


@pytest.mark.parametrize("missing", ["global/pg_control", "base/", "pg_wal/"])
def test_incomplete_data_directory_is_refused_and_not_written_into(cluster: Cluster, template: Node, missing: str) -> None:
    p = cluster.primary
    copy_cluster(template, p.pgdata, p.volume)
    victim = p.pgdata / missing.rstrip("/")
    subprocess.run(["rm", "-rf", "--", str(victim)], check=True)
    # A hand edit that a rewrite would undo.
    (p.pgdata / "pg_hba.conf").write_text("# left as it was\n")
    before = tree(p.volume)

    fatal = [refusal(run_init(p))]
    assert f"{p.pgdata} is incomplete: it has PG_VERSION but no {missing}" in fatal[0]
    assert "Restore the volume from a backup" in fatal[0] and f"mv {p.pgdata} {p.pgdata}.broken" in fatal[0]
    assert tree(p.volume) == before


# ------------------------------------------- data at another layout is never hidden


@pytest.mark.parametrize("where", ["pgdata", "17/docker", "."])
def test_data_at_another_layout_stops_a_new_cluster(cluster: Cluster, template: Node, where: str) -> None:
    """Same major, another place (a changed PGDATA): refused, the data left as it was."""
    p = cluster.primary
    found = (p.volume / where).resolve()
    copy_cluster(template, found, p.volume)
    before = tree(p.volume)

    fatal = [refusal(run_init(p))]
    major = cluster.major
    assert f"found PostgreSQL {major} data at {found}, but this image (PostgreSQL {major}) expects its data at {p.pgdata}" in fatal[0]
    assert f"move it to {p.pgdata}" in fatal[0]
    assert tree(p.volume) == before, "nothing may be created or changed on the volume"


def test_valid_data_is_kept_with_a_warning_about_another_cluster(cluster: Cluster, template: Node) -> None:
    p = cluster.primary
    copy_cluster(template, p.pgdata, p.volume)
    old = p.volume / "pgdata"
    copy_cluster(template, old, p.volume)
    before = tree(old)
    cp = p.init()
    assert f"warning: the volume also holds a cluster this pod does not use: {old} (left untouched)" in cp.stderr
    assert tree(old) == before


# -------------------------------------------------------------- full volume


def test_full_volume_is_told_and_leaves_no_temporary_file(
    cluster: Cluster, mount_tmpfs: Callable[[Path, str], None], template: Node
) -> None:
    p = cluster.primary
    mount_tmpfs(p.volume, "64M")
    copy_cluster(template, p.pgdata, p.volume)
    filler = fill(p.volume)
    before = tree(p.pgdata)

    fatal = [refusal(run_init(p))]
    assert f"volume full: cannot write {p.pgdata}/pg_hba.conf (No space left on device; 0 bytes free on {p.volume})" in fatal[0]
    assert "raise pgstack:postgres.storageSize and run pulumi up" in fatal[0]
    assert f"patch pvc data-{p.name} " in fatal[0]
    assert tree(p.pgdata) == before, "no temporary file and no half-written file may stay behind"

    filler.unlink()
    p.init()


def test_full_volume_never_leaves_half_a_line_in_postgresql_conf(
    cluster: Cluster, mount_tmpfs: Callable[[Path, str], None], template: Node
) -> None:
    """A volume filled by the previous script version's pod: the new include line cannot be added."""
    p = cluster.primary
    mount_tmpfs(p.volume, "64M")
    copy_cluster(template, p.pgdata, p.volume)
    conf = p.pgdata / "postgresql.conf"
    # As the previous script version left it: no k8s-volume.conf and no include line for it.
    (p.pgdata / "k8s-volume.conf").unlink()
    text = conf.read_text().replace("\n# Added by init.sh (Kubernetes pod scripts).\ninclude_if_exists = 'k8s-volume.conf'\n", "")
    # Pad it so that its last page has room for part of an appended include line only.
    room = len("\n# Added by init.sh (Kubernetes pod scripts).\ninclude_if")
    text += "#" * ((-len(text) - room - 1) % PAGE) + "\n"
    conf.write_text(text)
    assert (-len(text)) % PAGE == room
    filler = fill(p.volume)
    # One free page: enough for the new k8s-volume.conf (each rewritten file frees the
    # page of the one it replaces), not for a copy of postgresql.conf.
    os.truncate(filler, filler.stat().st_size - PAGE)
    before = tree(p.pgdata)

    cp = run_init(p)
    assert cp.returncode != 0
    assert conf.read_bytes() == before["postgresql.conf"][1], "postgresql.conf must be left exactly as it was"
    leftovers = set(tree(p.pgdata)) - set(before) - {"k8s-volume.conf"}
    assert leftovers == set(), f"temporary files left behind: {leftovers}"
    fatal = fatal_lines(cp.stderr)
    assert len(fatal) == 1, cp.stderr
    assert f"volume full: cannot write {conf} (No space left on device" in fatal[0]

    filler.unlink()
    p.init()
    assert conf.read_text().splitlines().count("include_if_exists = 'k8s-volume.conf'") == 1


def test_initdb_on_a_too_small_volume_is_told(cluster: Cluster, mount_tmpfs: Callable[[Path, str], None]) -> None:
    p = cluster.primary
    mount_tmpfs(p.volume, "16M")
    cp = run_init(p)
    assert cp.returncode != 0
    fatal = fatal_lines(cp.stderr)
    assert len(fatal) == 1 and f"volume full: cannot write {p.pgdata}.partial (No space left on device" in fatal[0], cp.stderr
    assert not p.pgdata.exists()


def test_clone_onto_a_too_small_volume_stops_at_once(cluster: Cluster, mount_tmpfs: Callable[[Path, str], None], template: Node) -> None:
    copy_primary_data(template, cluster.primary)  # the primary on a copy of conftest's template: the clone is the test
    cluster.start_node(0)
    s = cluster.node(1)
    mount_tmpfs(s.volume, "24M")
    t0 = time.monotonic()
    cp = s.run_script("init.sh", env={"BOOTSTRAP_MAX_WAIT_SECONDS": "20"}, check=False)
    elapsed = time.monotonic() - t0
    assert cp.returncode != 0
    fatal = fatal_lines(cp.stderr)
    assert len(fatal) == 1 and f"volume full: cannot write {s.pgdata}.partial (No space left on device" in fatal[0], cp.stderr
    assert elapsed < 10, f"a full volume must stop the clone at once, not after retries ({elapsed:.1f}s)"
    assert not s.pgdata.exists()
    assert not Path(f"{s.pgdata}.partial").exists(), "the failed clone must not keep the volume full"


# ------------------------------------------------------------- DATA_MOUNT


@pytest.mark.parametrize(
    ("pgdata", "data_mount", "expected"),
    [
        ("/var/lib/postgresql/18/docker", "", "/var/lib/postgresql"),
        ("/var/lib/postgresql/data/pgdata", "", "/var/lib/postgresql/data"),
        ("/var/lib/postgresql/19/docker/", "", "/var/lib/postgresql"),
        ("/v/pgdata", "/v/", "/v"),
        ("/v/pgdata", "/w", "FATAL: PGDATA='/v/pgdata' must be a directory inside DATA_MOUNT='/w'"),
        ("/v", "/v", "FATAL: PGDATA='/v' must be a directory inside DATA_MOUNT='/v'"),
        ("/v/pgdata", "v", "FATAL: DATA_MOUNT='v' is invalid"),
    ],
)
def test_data_mount_defaults_to_the_images_layout_and_holds_pgdata(pgdata: str, data_mount: str, expected: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "PGDATA": pgdata, "DATA_MOUNT": data_mount, "PGPORT": "5432"}
    env |= {"PG_SOCKET_DIR": "/run/pg", "POD_NAME": "pg-0", "SECRETS_DIR": "/secrets", "STACK_PG_MAJOR": "18"}
    cp = run_library('load_config; printf "%s\\n" "$DATA_MOUNT"', libs=["lib-base.sh", "pod-config.sh"], env=env)
    if expected.startswith("FATAL"):
        assert cp.returncode != 0 and expected in cp.stderr, cp.stderr
    else:
        assert cp.returncode == 0 and cp.stdout == f"{expected}\n", cp.stderr


def test_temporary_files_of_an_interrupted_start_are_removed(cluster: Cluster, template: Node) -> None:
    p = cluster.primary
    copy_cluster(template, p.pgdata, p.volume)
    stale = p.pgdata / "pg_hba.conf.Ab3xYz"
    stale.write_text("half a file\n")
    chown_run_user(stale)
    cp = p.init()
    assert f"removing the temporary file {stale} left by an interrupted start" in cp.stderr
    assert not stale.exists()
