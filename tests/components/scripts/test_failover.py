"""The README's promotion runbook on real PostgreSQL: promote a standby, make it the
configured primary (PRIMARY_POD), and rejoin the old primary as a standby."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from .pg_harness import Cluster, create_table, ids, insert, wait_for, wait_rows, wait_streaming


@pytest.fixture
def cluster(templated_cluster: Cluster) -> Cluster:
    """conftest's ``templated_cluster`` as this module's ``cluster`` (and so ``replicated``): init.sh
    and postgres start on data an initdb made once; what these tests watch is the runbook and the sidecar."""
    return templated_cluster


def test_promote_a_standby_and_rejoin_the_old_primary(replicated: Cluster) -> None:
    old, new = replicated.primary, replicated.node(1)
    create_table(old)
    insert(old, 1, 2)
    wait_rows(new, [1, 2])

    # The primary's node is lost for good.
    old.stop()

    # Runbook step 1: promote the standby (kubectl exec ... psql -c 'SELECT pg_promote()').
    assert new.psql("SELECT pg_promote()") == "t"
    wait_for(lambda: not new.in_recovery(), 30, "the standby to leave recovery")
    insert(new, 3)

    # Step 2: `pulumi up` with replication.primary = pg-standby-1 rolls every pod with
    # PRIMARY_POD/PRIMARY_HOST pointing at it. The promoted pod restarts as the primary.
    moved = {"PRIMARY_POD": new.name, "PRIMARY_PORT": str(new.port)}
    new.stop()
    new.init(**moved)
    assert not (new.pgdata / "standby.signal").exists()
    new.start()
    assert not new.in_recovery()
    assert new.readiness(**moved).returncode == 0
    assert ids(new) == [1, 2, 3]

    # The old primary comes back with its old volume: it starts as a standby, never as a
    # second primary.
    old.init(**moved)
    assert (old.pgdata / "standby.signal").exists()
    old.start()
    assert old.in_recovery()
    # (Shut down cleanly before the promotion, it can even follow the new timeline; a
    # primary that had written past the promotion point cannot, and stays not ready.)
    assert "standby" in old.readiness(**moved).stderr
    old.stop()

    # Step 3: rejoin it as a standby by giving it an empty volume (delete its PVC): it clones the new primary.
    shutil.rmtree(old.volume / "18")
    old.init(**moved)
    old.start()
    wait_streaming(old)
    assert old.readiness(**moved).returncode == 0
    insert(new, 4)
    wait_rows(old, [1, 2, 3, 4])
    # Under the old configuration the same pod would be told to be the primary: not ready.
    assert old.readiness().returncode != 0


def test_sidecar_liveness_follows_the_loop(cluster: Cluster) -> None:
    p = cluster.start_node(0)
    alive = cluster.base / "run0" / ".password-sync.alive"
    assert p.run_script("sync-passwords.sh", "--alive", check=False).returncode == 1  # no pass yet
    loop = p.spawn_script("sync-passwords.sh", env={"SYNC_INTERVAL_SECONDS": "1"})
    wait_for(alive.exists, 30, "the first completed pass")
    assert p.run_script("sync-passwords.sh", "--alive", check=False).returncode == 0
    loop.kill()
    stale = time.time() - 3600
    os.utime(alive, (stale, stale))
    cp = p.run_script("sync-passwords.sh", "--alive", check=False)
    assert cp.returncode == 1
    assert "last completed pass" in cp.stderr
