"""init.sh against real PostgreSQL: primary initialisation, standby bootstrap and
streaming, restarts, wiped and interrupted clones, scale to zero and back.

The primaries of the tests that watch something other than initdb (a clone, a restart, a standby's wait)
start on a copy of conftest's ``template`` (templated_cluster); the ones that test the primary's first
start (a new cluster, a killed initdb, replication off) run init.sh on an empty volume."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .pg_harness import (
    Cluster,
    Node,
    PollingAbortedError,
    create_table,
    ids,
    insert,
    shared_replicated,
    streaming_clients,
    wait_for,
    wait_rows,
    wait_streaming,
    write_secret,
)

MANAGED_FILES = ("pg_hba.conf", "postgresql.conf", "postgresql.auto.conf", "k8s-replication.conf")


def partial(node: Node) -> Path:
    return Path(f"{node.pgdata}.partial")


def snapshot(node: Node) -> dict[str, bytes]:
    return {name: (node.pgdata / name).read_bytes() for name in MANAGED_FILES}


@pytest.fixture(scope="module")
def shared(template: Node) -> Iterator[Cluster]:
    """One primary (on a copy of conftest's ``template``) and streaming standby for the restart and wipe
    scenarios (5 to 7): each restarts or re-clones a pod for real and leaves both running and streaming
    again, so one clone per worker serves them all."""
    with shared_replicated(template) as cluster:
        yield cluster


@pytest.fixture
def streaming_pair(shared: Cluster) -> Cluster:
    """``shared`` as a scenario starts from: both pods streaming, no table t (each scenario makes its own)."""
    p, s = shared.primary, shared.node(1)
    wait_streaming(s)
    p.psql("DROP TABLE IF EXISTS t")
    wait_for(lambda: s.psql("SELECT to_regclass('t') IS NULL") == "t", 30, "the standby to drop t")
    return shared


# ---------------------------------------------------------------- scenario 1


def test_primary_initialises_once_and_starts(cluster: Cluster) -> None:
    p = cluster.primary
    cp = p.init()
    assert "initialising a new cluster" in cp.stderr
    major = cluster.major
    assert (p.pgdata / "PG_VERSION").read_text().strip() == major
    assert not partial(p).exists()
    assert stat.S_IMODE(p.pgdata.stat().st_mode) == 0o700
    assert not (p.pgdata / "standby.signal").exists()

    p.start()
    assert not p.in_recovery()
    assert p.psql("SHOW data_checksums") == "on"
    assert p.psql("SELECT rolreplication, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'replicator'") == "t|t|f"
    assert p.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'") == "app"
    create_table(p)
    insert(p, 1, 2)
    assert ids(p) == [1, 2]

    # Second start: the data is kept and the managed files are rewritten identically.
    before, inode = snapshot(p), p.pgdata.stat().st_ino
    p.stop()
    cp = p.init()
    assert "keeping the existing data directory" in cp.stderr
    assert p.pgdata.stat().st_ino == inode
    assert snapshot(p) == before
    assert (p.pgdata / "postgresql.conf").read_text().count("include_if_exists = 'k8s-replication.conf'") == 1
    p.start()
    assert ids(p) == [1, 2]


# ------------------------------------------------------------- scenarios 2-4


def test_standby_bootstraps_streams_and_is_read_only(templated_cluster: Cluster) -> None:
    cluster = templated_cluster
    p = cluster.start_node(0)
    create_table(p)
    insert(p, 1)

    s = cluster.node(1)
    cp = s.init()
    assert "cloning" in cp.stderr and "clone complete" in cp.stderr
    assert not partial(s).exists()
    assert (s.pgdata / "standby.signal").exists()
    conf = (s.pgdata / "k8s-replication.conf").read_text()
    assert f"passfile={s.socket_dir}/.pgpass-replication" in conf
    assert "user=replicator" in conf and f"application_name={s.name}" in conf and f"port={p.port}" in conf
    assert "password" not in conf.replace("passfile", "")
    pgpass = s.socket_dir / ".pgpass-replication"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600

    s.start()
    wait_streaming(s)
    assert s.in_recovery()
    wait_for(lambda: streaming_clients(p) == [s.name], 30, "primary to list the standby as streaming")

    # 3: a write on the primary shows up on the standby.
    assert ids(s) == [1]
    insert(p, 2)
    wait_rows(s, [1, 2])

    # 4: the standby refuses writes.
    for sql in ("INSERT INTO t VALUES (99, 'x')", "CREATE TABLE nope (i int)"):
        err = s.psql(sql, check=False)
        assert "read-only transaction" in err, err
    assert ids(s) == [1, 2]


# ---------------------------------------------------------------- scenario 5


def test_standby_catches_up_after_primary_restart(streaming_pair: Cluster) -> None:
    p, s = streaming_pair.primary, streaming_pair.node(1)
    create_table(p)
    insert(p, 1)
    wait_rows(s, [1])

    p.stop()
    wait_for(lambda: s.receiver_status() != "streaming", 30, "standby to notice the primary is gone")
    streaming_pair.start_node(0)  # init.sh + postgres, as a pod restart does
    insert(p, 2)
    wait_rows(s, [1, 2])
    wait_streaming(s)
    assert not p.in_recovery() and s.in_recovery()


# ---------------------------------------------------------------- scenario 6


def test_standby_restart_keeps_data_and_streams(streaming_pair: Cluster) -> None:
    p, s = streaming_pair.primary, streaming_pair.node(1)
    create_table(p)
    insert(p, 1)
    wait_rows(s, [1])
    before, inode = snapshot(s), s.pgdata.stat().st_ino

    s.stop()
    insert(p, 2)  # written while the standby is down
    cp = s.init()
    assert "keeping the existing data directory" in cp.stderr and "cloning" not in cp.stderr
    assert s.pgdata.stat().st_ino == inode, "a restart must not re-clone"
    assert snapshot(s) == before, "managed configuration must be stable across restarts"
    s.start()
    wait_streaming(s)
    wait_rows(s, [1, 2])
    insert(p, 3)
    wait_rows(s, [1, 2, 3])


# ---------------------------------------------------------------- scenario 7


@pytest.mark.parametrize("wipe", ["remove-directory", "empty-directory"])
def test_wiped_standby_bootstraps_again(streaming_pair: Cluster, wipe: str) -> None:
    p, s = streaming_pair.primary, streaming_pair.node(1)
    create_table(p)
    insert(p, 1, 2)
    wait_rows(s, [1, 2])

    s.stop()
    if wipe == "remove-directory":
        shutil.rmtree(s.pgdata)
    else:
        for child in s.pgdata.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    insert(p, 3)
    cp = s.init()
    assert "clone complete" in cp.stderr
    s.start()
    wait_streaming(s)
    assert ids(s) == [1, 2, 3]
    insert(p, 4)
    wait_rows(s, [1, 2, 3, 4])


# ---------------------------------------------------------------- scenario 8


def freeze_when(spawned_pid: int, condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll tightly; SIGSTOP the process group the moment condition() holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            os.killpg(spawned_pid, signal.SIGSTOP)
            return
        time.sleep(0.002)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_killed_clone_is_discarded_and_redone(templated_cluster: Cluster) -> None:
    cluster = templated_cluster
    p = cluster.start_node(0)
    create_table(p)
    insert(p, 1)
    # About 24 MB, so that the clone takes long enough to be caught midway (the freeze comes within
    # milliseconds of base/ appearing; copying this table alone takes tens of them).
    p.psql("CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 100000) g")
    expected = p.psql("SELECT count(*), sum(g) FROM big")

    s = cluster.node(1)
    run = s.spawn_script("init.sh")
    freeze_when(run.proc.pid, lambda: (partial(s) / "base").is_dir(), 60, "the clone to start writing .partial")
    # Frozen midway: the clone is incomplete and PGDATA was never published.
    assert partial(s).is_dir() and not s.pgdata.exists(), "clone finished before it could be interrupted"
    run.kill(signal.SIGKILL)
    run.wait(timeout=10)
    assert partial(s).exists() and not s.pgdata.exists()

    cp = s.init()
    assert "discarding the interrupted clone" in cp.stderr
    assert not partial(s).exists()
    s.start()
    wait_streaming(s)
    assert s.psql("SELECT count(*), sum(g) FROM big") == expected
    insert(p, 2)
    wait_rows(s, [1, 2])


def test_killed_primary_initdb_and_stale_partial_are_discarded(cluster: Cluster) -> None:
    p = cluster.primary
    run = p.spawn_script("init.sh")
    freeze_when(run.proc.pid, lambda: (partial(p) / "PG_VERSION").exists(), 60, "initdb to populate .partial")
    run.kill(signal.SIGKILL)
    run.wait(timeout=10)
    assert partial(p).exists() and not p.pgdata.exists()

    # Pile some junk on top, as an older crashed attempt might have left.
    (partial(p) / "junk").write_text("left over")
    cp = p.init()
    assert "discarding the interrupted initialisation" in cp.stderr
    assert not partial(p).exists() and (p.pgdata / "PG_VERSION").exists()
    assert not (p.pgdata / "junk").exists()
    p.start()
    assert p.psql("SELECT rolname FROM pg_roles WHERE rolname IN ('replicator', 'app') ORDER BY 1") == "app\nreplicator"


def test_populated_pgdata_without_pg_version_is_left_alone(cluster: Cluster) -> None:
    p = cluster.primary
    p.pgdata.mkdir(parents=True)
    (p.pgdata / "precious").write_text("not a cluster")
    cp = p.run_script("init.sh", check=False)
    assert cp.returncode != 0 and "refusing to overwrite" in cp.stderr
    assert (p.pgdata / "precious").read_text() == "not a cluster"


# ---------------------------------------------------------------- scenario 9


def test_scale_to_zero_and_back(templated_cluster: Cluster) -> None:
    cluster = templated_cluster
    p = cluster.start_node(0)
    create_table(p)
    insert(p, 1)
    s1, s2 = cluster.start_node(1), cluster.start_node(2)
    wait_streaming(s1, s2)
    insert(p, 2)
    for s in (s1, s2):
        wait_rows(s, [1, 2])

    # Scale to zero (highest ordinal first), then back up in order, as OrderedReady does.
    cluster.stop_all()
    for ordinal in (0, 1, 2):
        cluster.start_node(ordinal)
    wait_streaming(s1, s2)
    assert ids(p) == [1, 2]
    insert(p, 3)
    for s in (s1, s2):
        wait_rows(s, [1, 2, 3])
    wait_for(lambda: streaming_clients(p) == sorted([s1.name, s2.name]), 30, "both standbys streaming")

    # Again, standbys first (podManagementPolicy Parallel, or a slow primary).
    cluster.stop_all()
    for ordinal in (2, 1):
        cluster.node(ordinal).init()
        cluster.node(ordinal).start()
    assert s1.in_recovery() and s2.in_recovery()
    cluster.start_node(0)
    wait_streaming(s1, s2)
    insert(p, 4)
    for s in (s1, s2):
        wait_rows(s, [1, 2, 3, 4])


# ------------------------------------------------- waiting for the primary


def test_standby_waits_for_the_primary(templated_cluster: Cluster) -> None:
    cluster = templated_cluster
    s = cluster.node(1)
    run = s.spawn_script("init.sh")
    wait_for(lambda: "not accepting connections yet" in run.stderr(), 30, "init.sh to report waiting")
    assert run.proc.poll() is None and not s.pgdata.exists()

    p = cluster.start_node(0)
    create_table(p)
    insert(p, 1)
    assert run.wait(timeout=60) == 0, run.stderr()
    s.start()
    wait_streaming(s)
    wait_rows(s, [1])


def test_failed_clone_is_retried_with_the_current_secret(templated_cluster: Cluster) -> None:
    cluster = templated_cluster
    p = cluster.start_node(0)
    create_table(p)
    insert(p, 1)
    # The standby's copy of the Secret holds a wrong replication password at first.
    own = cluster.secrets_copy("standby-secrets")
    write_secret(own, "replication-password", "not the password")
    s = cluster.node(1)
    run = s.spawn_script("init.sh", env={"SECRETS_DIR": str(own)})

    def failed_twice() -> bool:
        if run.proc.poll() is not None:
            raise PollingAbortedError(f"init.sh exited early:\n{run.stderr()}")
        return run.stderr().count("pg_basebackup failed") >= 2

    wait_for(failed_twice, 60, "two failed clone attempts")
    assert not s.pgdata.exists()
    # The kubelet updates the mounted Secret; the next attempt uses it.
    write_secret(own, "replication-password", cluster.passwords["replication-password"])
    assert run.wait(timeout=60) == 0, run.stderr()
    assert not partial(s).exists()
    s.start()
    wait_streaming(s)
    wait_rows(s, [1])


def test_standby_gives_up_after_the_max_wait(cluster: Cluster) -> None:
    s = cluster.node(1)
    started = time.monotonic()
    cp = s.run_script("init.sh", env={"BOOTSTRAP_MAX_WAIT_SECONDS": "3", "BOOTSTRAP_BACKOFF_MAX_SECONDS": "1"}, check=False)
    elapsed = time.monotonic() - started
    assert cp.returncode != 0
    assert "gave up after 3s" in cp.stderr
    assert 3 <= elapsed < 30
    assert not s.pgdata.exists() and not partial(s).exists()


def test_replication_disabled_every_pod_is_a_standalone_primary(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(replication=False)
    (c.secrets_dir / "replication-password").unlink()  # the Secret has none without replication
    n = c.node(1)
    cp = n.init()
    assert "starts as primary" in cp.stderr
    n.start()
    assert not n.in_recovery()
    assert n.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'") == "0"
    hba = (n.pgdata / "pg_hba.conf").read_text()
    assert "scram-sha-256" in hba
    assert not any(line.split()[:3] == ["host", "replication", "replicator"] and "reject" not in line for line in hba.splitlines())
    assert n.readiness().returncode == 0
    assert not (n.socket_dir / ".pgpass-replication").exists()
