"""A fresh primary never wins against surviving data: an empty primary volume next to
a pod that still runs PostgreSQL is refused, and a standby whose primary was
re-initialised says so."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

import pytest

from .pg_harness import Cluster, create_table, ids, insert, wait_for, wait_rows
from .test_readiness import answer

REFUSED = "is running PostgreSQL with data: refusing to start an empty primary"


@pytest.fixture
def cluster(templated_cluster: Cluster) -> Cluster:
    """conftest's ``templated_cluster`` as this module's ``cluster`` (and so ``replicated``): the
    primary whose volume these tests lose starts on data an initdb made once (the new clusters they make
    afterwards are real initdbs)."""
    return templated_cluster


def lose_the_primary_volume(c: Cluster) -> None:
    p, s = c.primary, c.node(1)
    create_table(p)
    insert(p, 1, 2)
    wait_rows(s, [1, 2])
    p.stop()
    shutil.rmtree(p.volume / "18")


def test_empty_primary_refuses_to_start_beside_a_peer_with_data(replicated: Cluster) -> None:
    p, s = replicated.primary, replicated.node(1)
    lose_the_primary_volume(replicated)
    # The headless Service resolves to every pod; here localhost, where the standby
    # listens on the port every pod of the set uses (PRIMARY_PORT).
    peers = {"PEERS_HOST": "localhost", "PRIMARY_PORT": str(s.port), "PEER_CHECK_SECONDS": "2"}

    cp = p.run_script("init.sh", env=peers, check=False)
    assert cp.returncode == 1, cp.stderr
    assert f"the primary's volume is empty but 127.0.0.1 (a pod of this set) {REFUSED}" in cp.stderr, cp.stderr
    assert "follow docs/operations.md#primary-lost-its-volume" in cp.stderr
    assert not p.pgdata.exists() and not p.pgdata.with_name("docker.partial").exists()
    assert ids(s) == [1, 2]

    # A peer that is just restarting is seen too: it comes up within PEER_CHECK_SECONDS.
    s.stop()
    run = p.spawn_script("init.sh", env=peers | {"PEER_CHECK_SECONDS": "20"})
    time.sleep(1)
    s.start()
    assert run.wait(timeout=30) == 1, run.stderr()
    assert REFUSED in run.stderr()
    assert not p.pgdata.exists()

    # No peer runs PostgreSQL (the first start of a new set): a new cluster, after the check.
    s.stop()
    started = time.monotonic()
    cp = p.init(**peers | {"PEER_CHECK_SECONDS": "1"})
    assert time.monotonic() - started >= 1
    assert "no pod of localhost runs PostgreSQL" in cp.stderr and "initialising a new cluster" in cp.stderr
    assert (p.pgdata / "PG_VERSION").exists()


def test_empty_primary_sees_a_peer_on_an_ipv6_only_cluster(replicated: Cluster) -> None:
    """On an IPv6-only cluster the headless Service has AAAA records only: the check must try them."""
    p, s = replicated.primary, replicated.node(1)
    lose_the_primary_volume(replicated)
    s.stop()
    s.start(settings={"listen_addresses": "::1"})
    # getent as an IPv6-only cluster's DNS answers it: no IPv4 address, one IPv6 address.
    ipv6_only = p.stand_in("getent", '[ "$1" = ahosts ] || exit 2\nprintf "::1 STREAM peers.test\\n::1 DGRAM\\n::1 RAW\\n"\n')
    peers = {"PEERS_HOST": "peers.test", "PRIMARY_PORT": str(s.port), "PEER_CHECK_SECONDS": "1"}

    cp = p.run_script("init.sh", env=peers | ipv6_only, check=False)
    assert cp.returncode == 1, cp.stderr
    assert f"the primary's volume is empty but ::1 (a pod of this set) {REFUSED}" in cp.stderr, cp.stderr
    assert not p.pgdata.exists()
    assert ids(s) == [1, 2]


def test_unresolvable_peers_host_means_no_peers(make_cluster: Callable[..., Cluster]) -> None:
    p = make_cluster().primary  # an empty volume: init.sh decides whether to initialise
    cp = p.init(PEERS_HOST="no-such-host.invalid", PEER_CHECK_SECONDS="0")
    assert "resolves to no address" in cp.stderr and "initialising a new cluster" in cp.stderr


def test_standby_of_a_reinitialised_primary_says_so(replicated: Cluster) -> None:
    p, s = replicated.primary, replicated.node(1)
    lose_the_primary_volume(replicated)
    # Without PEERS_HOST nothing stops the empty primary: a new, different database.
    replicated.start_node(0)
    mine = s.psql("SELECT system_identifier FROM pg_control_system()")
    theirs = p.psql("SELECT system_identifier FROM pg_control_system()")
    assert mine != theirs
    expected = (
        f"primary 127.0.0.1 runs a different database (system identifier {theirs}, this standby {mine}): "
        "the primary was re-initialised, probably with an empty volume; do not let clients write there; "
        "follow docs/operations.md#primary-lost-its-volume"
    )
    wait_for(lambda: expected in s.readiness().stderr, 30, "readiness to name the other database")
    assert answer(s) == (1, f"not ready: {expected}")

    # At its next start the standby logs the same, and starts: its data may be the only copy.
    s.stop()
    cp = s.init()
    assert f"WARNING: {expected}" in cp.stderr
    assert "created the replication slot" not in cp.stderr
    s.start()
    assert ids(s) == [1, 2]
    assert p.psql("SELECT count(*) FROM pg_replication_slots") == "0"
