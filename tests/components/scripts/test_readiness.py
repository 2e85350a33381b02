"""readiness.sh: role-aware answers from a real primary and standby."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .pg_harness import Cluster, Node, create_table, insert, shared_replicated, wait_for


@pytest.fixture(scope="module")
def shared(template: Node) -> Iterator[Cluster]:
    """One primary (on a copy of conftest's ``template``) and streaming standby for the tests that leave
    both running and the standby replaying (the stopped-servers test builds its own)."""
    with shared_replicated(template) as cluster:
        yield cluster


@pytest.fixture
def cluster(templated_cluster: Cluster) -> Cluster:
    """conftest's ``templated_cluster`` as this module's ``cluster`` (and so ``replicated``): what these
    tests watch is readiness.sh's answers, not initdb."""
    return templated_cluster


def answer(node: Node, **env: str) -> tuple[int, str]:
    cp = node.readiness(**env)
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, f"readiness.sh must print exactly one line, got {cp.stderr!r}"
    return cp.returncode, lines[0]


def test_primary_and_streaming_standby_are_ready(shared: Cluster) -> None:
    p, s = shared.primary, shared.node(1)
    assert answer(p) == (0, "ready: primary accepting connections")
    rc, why = answer(s)
    assert rc == 0 and why.startswith("ready: standby streaming, replay lag "), why


def test_roles_that_contradict_the_ordinal_are_not_ready(shared: Cluster) -> None:
    p, s = shared.primary, shared.node(1)
    # Pod 0 found in recovery, and a standby pod found writable (promoted: split-brain risk).
    rc, why = answer(s, POD_NAME="pg-0")
    assert rc == 1 and "must be the primary but is in recovery" in why
    rc, why = answer(p, POD_NAME="pg-standby-1")
    assert rc == 1 and "split-brain" in why
    rc, why = answer(s, REPLICATION_ENABLED="false")
    assert rc == 1 and "replication is disabled" in why


def test_standby_lagging_beyond_the_bound_is_not_ready(shared: Cluster) -> None:
    p, s = shared.primary, shared.node(1)
    create_table(p)
    s.psql("SELECT pg_wal_replay_pause()")
    try:
        insert(p, *range(1, 2001))
        wait_for(
            lambda: s.psql("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) > 0") == "t",
            30,
            "WAL received but not replayed",
        )
        rc, why = answer(s, READINESS_MAX_LAG_BYTES="0")
        assert rc == 1 and "exceeds READINESS_MAX_LAG_BYTES=0" in why, why
        lag = int(why.split("replay lag ")[1].split()[0])
        assert lag > 0
        # Same state, a bound above the lag: ready (still streaming while paused).
        rc, why = answer(s, READINESS_MAX_LAG_BYTES=str(lag + 1_000_000))
        assert rc == 0, why
    finally:
        s.psql("SELECT pg_wal_replay_resume()")
    wait_for(lambda: s.readiness(READINESS_MAX_LAG_BYTES="1048576").returncode == 0, 30, "standby ready after resume")


def test_disconnected_or_stopped_servers_are_not_ready(replicated: Cluster) -> None:
    p, s = replicated.primary, replicated.node(1)
    p.stop()
    wait_for(lambda: s.readiness().returncode == 1, 30, "standby to become not ready")
    rc, why = answer(s)
    assert rc == 1 and "not streaming" in why, why
    rc, why = answer(p)
    assert rc == 1 and "not accepting connections" in why, why
    s.stop()
    rc, why = answer(s)
    assert rc == 1 and "not accepting connections" in why, why
