"""init.sh's temporary server (init-temp-server.sh), started and stopped with `pg_ctl -w` as
the official image's entrypoint does: it accepts connections on a private unix socket
only (no TCP, not the pod's shared socket), it is gone when init.sh ends, and when it
cannot start its own log says why and nothing is published."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .pg_harness import Cluster, wait_streaming


def tcp_listen_ports() -> set[int]:
    """The TCP ports something listens on, any address (/proc/net/tcp and tcp6)."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_bootstrap_server_listens_on_a_private_socket_only(cluster: Cluster) -> None:
    p = cluster.primary
    tmp = cluster.job_dir("podtmp")
    run = p.spawn_script("init.sh", env={"TMPDIR": str(tmp)})
    deadline = time.monotonic() + 60
    sockets: list[Path] = []
    while not sockets and time.monotonic() < deadline and run.proc.poll() is None:
        sockets = list(tmp.glob(f"pg-init.*/.s.PGSQL.{p.port}"))
        time.sleep(0.002)
    assert sockets, f"no temporary server socket under {tmp}:\n{run.stderr()}"
    # Freeze init.sh (and its psql) while the server, detached by pg_ctl, keeps running.
    os.killpg(run.proc.pid, signal.SIGSTOP)
    try:
        (sock,) = sockets
        assert sock.exists(), "the temporary server stopped before it could be looked at"
        assert (sock.parent.stat().st_mode & 0o777) == 0o700
        assert p.port not in tcp_listen_ports()
        assert not list(p.socket_dir.glob(".s.PGSQL.*"))
    finally:
        # Resume the whole group (a job-control parent may stop itself again after a SIGCONT: repeat it).
        deadline = time.monotonic() + 120
        while run.proc.poll() is None and time.monotonic() < deadline:
            os.killpg(run.proc.pid, signal.SIGCONT)
            time.sleep(0.1)
    assert run.wait(timeout=10) == 0, run.stderr()
    assert "server started" in run.stderr() and "server stopped" in run.stderr()
    assert not list(tmp.iterdir()), "the temporary socket directory was left behind"
    assert not (p.pgdata / "postmaster.pid").exists()


def test_a_temporary_server_that_cannot_start_says_why_and_nothing_moves(templated_cluster: Cluster) -> None:
    """Promotion: the standby's data starts on a temporary server first; a setting it
    refuses stops init.sh with the server's own message, the data still a standby's."""
    cluster = templated_cluster  # the primary on a copy of conftest's template: the promotion is the test
    p, s = cluster.start_node(0), cluster.start_node(1)
    wait_streaming(s)
    p.stop()
    s.stop()
    conf = s.pgdata / "postgresql.conf"
    conf.write_text(conf.read_text() + "\nshared_buffers = 'lots'\n")
    cp = s.run_script("init.sh", env={"PRIMARY_POD": s.name, "PRIMARY_PORT": str(s.port)}, check=False)
    assert cp.returncode != 0
    assert 'invalid value for parameter "shared_buffers": "lots"' in cp.stderr, cp.stderr
    assert f"FATAL: the temporary server on {s.pgdata} did not start" in cp.stderr, cp.stderr
    assert (s.pgdata / "standby.signal").exists()
    assert not (s.pgdata / "postmaster.pid").exists()
