"""readiness.sh never reports a standby ready on a lag it cannot measure."""

from __future__ import annotations

import pytest

from .pg_harness import Cluster, StallingProxy, create_table, free_port, insert, wait_for, wait_rows
from .test_readiness import answer


@pytest.fixture
def cluster(templated_cluster: Cluster) -> Cluster:
    """conftest's ``templated_cluster`` as this module's ``cluster`` (and so ``replicated``): what this
    test watches is a standby's readiness behind a stalled connection, not initdb."""
    return templated_cluster


def test_streaming_without_a_wal_position_from_the_primary_is_not_ready(replicated: Cluster) -> None:
    p, s = replicated.primary, replicated.node(1)
    create_table(p)
    insert(p, 1)
    wait_rows(s, [1])
    s.stop()
    insert(p, 2)  # WAL the standby has not received

    # The standby restarts behind a proxy that lets its WAL receiver start streaming
    # but passes nothing after that: 'streaming', and no WAL or WAL position ever.
    proxy = StallingProxy(p.port)
    try:
        via_proxy = {"PRIMARY_PORT": str(proxy.port)}
        s.init(**via_proxy)
        s.start()
        wait_for(proxy.stalled.is_set, 30, "the WAL receiver to start streaming through the proxy")
        wait_for(lambda: s.receiver_status() == "streaming", 30, "the receiver to report streaming")
        assert s.psql("SELECT written_lsn IS NULL AND latest_end_lsn IS NULL FROM pg_stat_wal_receiver") == "t"

        # Nothing to measure against, and the primary cannot be asked: not ready.
        rc, why = answer(s, PRIMARY_PORT=str(free_port()))
        assert rc == 1, why
        assert why.startswith("not ready: standby replay lag is unknown (no WAL received since the WAL receiver connected"), why
        assert "cannot ask the primary" in why, why

        # Asked directly, the primary tells the real lag: row 2 was never received.
        rc, why = answer(s, PRIMARY_PORT=str(p.port), READINESS_MAX_LAG_BYTES="0")
        assert rc == 1 and "exceeds READINESS_MAX_LAG_BYTES=0" in why, why
        rc, why = answer(s, PRIMARY_PORT=str(p.port))
        assert rc == 0 and why.endswith("bytes, measured against the primary"), why
        assert s.psql("SELECT count(*) FROM t") == "1"
    finally:
        proxy.close()
