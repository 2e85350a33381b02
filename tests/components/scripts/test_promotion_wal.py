"""Promotion compares WAL positions first: moving PRIMARY_POD to a standby whose data is
behind a pod that still answers (an old primary still running, a standby that received
more) is refused, naming both positions and both pods, unless PROMOTE_ACCEPT_WAL_LOSS_UP_TO
(replication.acceptWalLossUpTo) reaches the peer's position. A peer with the same WAL, on
another timeline, or of another database is no reason to refuse.

The headless Service resolves to every pod; here it is localhost, where the peer listens
on the port every pod of the set uses (PRIMARY_PORT), as in test_fresh_primary."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from .pg_harness import (
    Cluster,
    Node,
    create_table,
    ids,
    insert,
    timeline,
    wait_for,
    wait_rows,
    wait_streaming,
)
from .test_promotion import POD_SETTINGS

REFUSED = re.compile(
    r"FATAL: promoting: refused: (?P<peer>\S+) \(127\.0\.0\.1\) has WAL up to (?P<theirs>[0-9A-F]+/[0-9A-F]+) on timeline 1 "
    r"of this database, this pod (?P<pod>\S+) only up to (?P<mine>[0-9A-F]+/[0-9A-F]+): promoting it would lose the commits in between\. "
    r"Keep them: set replication\.primary back, let this pod catch up while nothing writes, then move it again\. "
    r'Or lose them: set replication\.acceptWalLossUpTo: "(?P=theirs)"'
)


@pytest.fixture
def cluster(templated_cluster: Cluster) -> Cluster:
    """conftest's ``templated_cluster`` as this module's ``cluster`` (and so ``replicated``): init.sh
    and postgres start on data an initdb made once; what these tests watch is the promotion's check of its peers'
    WAL. The peer of another database is a cluster of its own (make_cluster), initialised for real."""
    return templated_cluster


def lsn(value: str) -> int:
    high, low = value.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def promote_env(new: Node, peer: Node, **extra: str) -> dict[str, str]:
    """`pulumi up` with replication.primary = new: its pod restarts as the primary; the
    headless Service answers with the peer."""
    return {"PRIMARY_POD": new.name, "PEERS_HOST": "localhost", "PRIMARY_PORT": str(peer.port)} | extra


def stop_caught_up(standby: Node) -> str:
    """Stop a standby once it has replayed all it received; return that position."""
    wait_for(lambda: standby.psql("SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()") == "t", 30, "replay to catch up")
    end = standby.psql("SELECT pg_last_wal_replay_lsn()")
    standby.stop()
    return end


def test_a_standby_behind_a_running_primary_is_not_promoted_unless_the_loss_is_accepted(cluster: Cluster) -> None:
    cluster.start_node(0, POD_SETTINGS)
    cluster.start_node(1, POD_SETTINGS)
    old, new = cluster.primary, cluster.node(1)
    wait_streaming(new)
    create_table(old)
    insert(old, 1, 2)
    wait_rows(new, [1, 2])
    replayed = stop_caught_up(new)
    insert(old, 3)  # acknowledged by the old primary, which keeps running: the standby never got it
    written = old.psql("SELECT pg_current_wal_flush_lsn()")

    cp = new.run_script("init.sh", env=promote_env(new, old), check=False)
    assert cp.returncode == 1, cp.stderr
    refused = REFUSED.search(cp.stderr)
    assert refused, cp.stderr
    assert refused["peer"] == "localhost" and refused["pod"] == new.name
    mine = refused["mine"]
    # The standby's own end: what it had replayed (or a record the primary logged by itself just before
    # the standby stopped), short of the row the standby never got.
    assert lsn(replayed) <= lsn(mine) < lsn(written) <= lsn(refused["theirs"])
    assert (new.pgdata / "standby.signal").exists(), "refused before the promotion: still a standby's data"
    assert "new timeline" not in cp.stderr

    # An accepted loss that stops short of the peer's position is still refused.
    short = promote_env(new, old, PROMOTE_ACCEPT_WAL_LOSS_UP_TO=replayed)
    assert REFUSED.search(new.run_script("init.sh", env=short, check=False).stderr)

    # The deliberate override, at or past the peer's position (the refusal names it; a margin here, as
    # the running primary may log a record of its own meanwhile): promoted, the accepted loss logged.
    accepted = lsn_text(lsn(refused["theirs"]) + 1024 * 1024)
    cp = new.init(**promote_env(new, old, PROMOTE_ACCEPT_WAL_LOSS_UP_TO=accepted))
    warned = re.search(
        rf"WARNING: promoting: localhost \(127\.0\.0\.1\) has WAL up to (\S+) on timeline 1, this pod {new.name} only up to {mine}; "
        rf"PROMOTE_ACCEPT_WAL_LOSS_UP_TO={accepted} accepts losing the commits in between",
        cp.stderr,
    )
    assert warned and lsn(refused["theirs"]) <= lsn(warned[1]) <= lsn(accepted), cp.stderr
    assert "new timeline 2" in cp.stderr
    new.start(POD_SETTINGS)
    assert ids(new) == [1, 2]


def test_a_peer_with_the_same_wal_or_on_another_timeline_does_not_stop_the_promotion(cluster: Cluster) -> None:
    """The runbook's case: the primary is gone, two standbys hold all its WAL."""
    for ordinal in (0, 1, 2):
        cluster.start_node(ordinal, POD_SETTINGS)
    p, s1, s2 = cluster.primary, cluster.node(1), cluster.node(2)
    wait_streaming(s1, s2)
    create_table(p)
    insert(p, 1, 2)
    wait_rows(s1, [1, 2])
    wait_rows(s2, [1, 2])
    p.stop()  # cleanly: both standbys receive all of it
    end = stop_caught_up(s1)
    wait_for(lambda: s2.psql("SELECT pg_last_wal_replay_lsn()") == end, 30, "the other standby at the same position")

    # DNS as in a cluster: the headless Service lists this pod too (not ready; nothing listens on it
    # yet), and reverse DNS names each pod.
    dns = s1.stand_in(
        "getent",
        'case "$1 $2" in\n'
        '"ahosts peers.test") printf "127.0.0.2 STREAM peers.test\\n127.0.0.1 STREAM\\n" ;;\n'
        f'"hosts 127.0.0.1") echo "127.0.0.1 {s2.name}.pg-hl.db.svc.cluster.local" ;;\n'
        f'"hosts 127.0.0.2") echo "127.0.0.2 {s1.name}.pg-hl.db.svc.cluster.local" ;;\n'
        "*) exit 2 ;;\nesac\n",
    )
    cp = s1.init(**promote_env(s1, s2, PEERS_HOST="peers.test") | dns)
    same = f"promoting: {s2.name} (127.0.0.1) has WAL up to {end} on timeline 1, this pod {s1.name} up to {end}: it holds nothing"
    assert same in cp.stderr
    assert "127.0.0.2" not in cp.stderr, "this pod's own address is not a peer"
    assert "new timeline 2" in cp.stderr
    s1.start(POD_SETTINGS)
    insert(s1, 3)  # more WAL, on timeline 2

    # The other standby's data promoted in turn: the peer is further, but on timeline 2.
    stop_caught_up(s2)
    cp = s2.init(**promote_env(s2, s1))
    assert "promoting: localhost (127.0.0.1) is on timeline 2, this pod's WAL on timeline 1: not compared" in cp.stderr
    s2.start(POD_SETTINGS)
    assert timeline(s2) == 2 and ids(s2) == [1, 2]


def test_a_peer_of_another_database_does_not_stop_the_promotion(cluster: Cluster, make_cluster: Callable[..., Cluster]) -> None:
    cluster.start_node(0, POD_SETTINGS)
    cluster.start_node(1, POD_SETTINGS)
    p, s = cluster.primary, cluster.node(1)
    wait_streaming(s)
    create_table(p)
    insert(p, 1)
    wait_rows(s, [1])
    p.stop()
    mine = stop_caught_up(s)
    # Another database with the same Secret (a primary re-initialised on an empty volume): another system identifier.
    other = make_cluster(passwords=cluster.passwords).start_node(0, POD_SETTINGS)
    other.psql("CREATE TABLE pad (n int)")
    while lsn(other.psql("SELECT pg_current_wal_flush_lsn()")) <= lsn(mine):
        other.psql("INSERT INTO pad VALUES (1); SELECT pg_switch_wal()")  # on to the next WAL segment
    assert lsn(other.psql("SELECT pg_current_wal_flush_lsn()")) > lsn(mine)

    cp = s.init(**promote_env(s, other))
    assert "promoting: localhost (127.0.0.1) runs another database (system identifier " in cp.stderr
    assert "new timeline 2" in cp.stderr


def test_a_malformed_accepted_loss_stops_the_pod_before_anything_is_touched(make_cluster: Callable[..., Cluster]) -> None:
    p = make_cluster().primary  # an empty volume, as a new pod's
    cp = p.run_script("init.sh", env={"PROMOTE_ACCEPT_WAL_LOSS_UP_TO": "0/30001a8"}, check=False)
    assert cp.returncode == 1
    assert "FATAL: PROMOTE_ACCEPT_WAL_LOSS_UP_TO='0/30001a8' is invalid: expected empty or a WAL position X/Y" in cp.stderr
    assert list(p.volume.iterdir()) == []
