"""sync-passwords.sh: rotation over TCP and replication, its loop mode, and the
rule that no password reaches a file on the data volume, a log or script output."""

from __future__ import annotations

import signal

import pytest

from .pg_harness import Cluster, Node, create_table, insert, leak_needles, read_bytes_tree, wait_for, wait_rows, wait_streaming


def rotated(value: str) -> str:
    return f"{value}-rotated:\\'x"


def login(node: Node, user: str, password: str | None, db: str = "postgres") -> bool:
    return node.tcp_psql("SELECT 1", user, password, db=db).returncode == 0


def replication_login(node: Node, password: str) -> bool:
    return node.tcp_psql("IDENTIFY_SYSTEM", "replicator", password, db="replication", replication=True).returncode == 0


def pgpass_password(node: Node) -> str:
    """Password field of the replication passfile, unescaped (libpq's pgpass rules)."""
    line = (node.socket_dir / ".pgpass-replication").read_text().rstrip("\n")
    fields, cur, it = [], "", iter(line)
    for ch in it:
        if ch == "\\":
            cur += next(it, "")
        elif ch == ":":
            fields.append(cur)
            cur = ""
        else:
            cur += ch
    fields.append(cur)
    assert fields[:4] == ["*", "*", "*", "replicator"], fields[:4]
    return fields[4]


def walsender_pids(primary: Node) -> list[str]:
    return primary.psql("SELECT pid FROM pg_stat_replication WHERE state = 'streaming'").split()


@pytest.fixture
def templated_replicated(templated_cluster: Cluster) -> Cluster:
    """conftest's ``replicated`` with the primary on a copy of conftest's ``template`` (its passwords are the
    Secret's): for the tests that rotate passwords. The volume scan and the xtrace test run init.sh on empty
    volumes, so that every script that touches a password (initdb's --pwfile, the roles' first apply) runs
    in the test, its output and data scanned."""
    templated_cluster.start_node(0)
    templated_cluster.start_node(1)
    wait_streaming(templated_cluster.node(1))
    return templated_cluster


def test_rotation_reaches_every_role_and_the_standby(templated_replicated: Cluster) -> None:
    c = templated_replicated
    p, s = c.primary, c.node(1)
    create_table(p)
    insert(p, 1)
    wait_rows(s, [1])
    # First pass after a pod start applies the current Secret (hash unknown).
    assert p.sync_passwords_once().returncode == 0
    assert s.sync_passwords_once().returncode == 0
    old = dict(c.passwords)
    assert pgpass_password(s) == old["replication-password"]

    for name, value in old.items():
        c.set_password(name, rotated(value))
    new = c.passwords

    cp = p.sync_passwords_once()
    assert cp.returncode == 0, cp.stderr
    assert "applied the Secret's passwords to roles: postgres, replicator, app" in cp.stderr
    assert login(p, "postgres", new["postgres-password"])
    assert not login(p, "postgres", old["postgres-password"])
    assert login(p, "app", new["password"], db="appdb")
    assert not login(p, "app", old["password"], db="appdb")
    assert replication_login(p, new["replication-password"])
    assert not replication_login(p, old["replication-password"])
    # Roles replicate: the standby accepts the new app password too.
    wait_for(lambda: login(s, "app", new["password"], db="appdb"), 30, "new app password on the standby")

    # The standby still holds the old replication password: a reconnect fails ...
    assert pgpass_password(s) == old["replication-password"]
    before = walsender_pids(p)
    p.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
    wait_for(lambda: 'password authentication failed for user "replicator"' in p.log_path.read_text(), 30, "a failed reconnect")
    assert s.receiver_status() != "streaming"
    # ... until its sidecar refreshes the passfile from the Secret.
    cp = s.sync_passwords_once()
    assert cp.returncode == 0, cp.stderr
    assert pgpass_password(s) == new["replication-password"]
    wait_streaming(s)
    assert walsender_pids(p) != before
    insert(p, 2)
    wait_rows(s, [1, 2])

    # Nothing changed since: a pass does nothing and says nothing.
    cp = p.sync_passwords_once()
    assert cp.returncode == 0 and "applied" not in cp.stderr
    state = (p.socket_dir / ".password-sync.state").read_text()
    assert state.endswith(" applied\n") and all(v not in state for v in [*new.values(), *old.values()])


def test_sync_once_reports_a_stopped_server_and_bad_usage(templated_cluster: Cluster) -> None:
    p = templated_cluster.start_node(0)
    p.stop()
    cp = p.sync_passwords_once()
    assert cp.returncode == 3 and "not accepting connections" in cp.stderr
    cp = p.run_script("sync-passwords.sh", "--bogus", check=False)
    assert cp.returncode == 2 and "usage:" in cp.stderr


def test_sync_loop_applies_rotation_and_stops_on_sigterm(templated_cluster: Cluster) -> None:
    cluster = templated_cluster
    p = cluster.start_node(0)
    loop = p.spawn_script("sync-passwords.sh", env={"SYNC_INTERVAL_SECONDS": "1"})
    wait_for(lambda: "applied" in loop.stderr(), 30, "the loop's first pass")
    old = cluster.passwords["password"]
    cluster.set_password("password", rotated(old))
    wait_for(lambda: login(p, "app", cluster.passwords["password"], db="appdb"), 30, "the loop to apply the rotation")
    assert not login(p, "app", old, db="appdb")
    loop.kill(signal.SIGTERM)
    loop.wait(timeout=10)
    assert "stopping" in loop.stderr()


def test_no_password_in_data_volumes_logs_or_output(replicated: Cluster) -> None:
    """Scenario 14, after every script has run (init, clone, readiness, sync, rotation)."""
    c = replicated
    p, s = c.primary, c.node(1)
    for node in (p, s):
        assert node.sync_passwords_once().returncode == 0
        assert node.readiness().returncode == 0
    for name, value in list(c.passwords.items()):
        c.set_password(name, rotated(value))
    for node in (p, s):
        assert node.sync_passwords_once().returncode == 0
    s.stop()
    s.init()
    s.start()
    wait_streaming(s)
    p.psql("CHECKPOINT")

    passwords = {*c.passwords.values(), *c.old_passwords}
    assert len(passwords) == 6
    secrets = leak_needles(passwords)
    assert len(secrets) >= 9  # six passwords, three random tokens
    # Every file on the volumes, text or binary (configuration, WAL, catalogs).
    # Report where, never what: the assertion message must not print a secret.
    scanned, leaks = 0, []
    for node in (p, s):
        for path, data in read_bytes_tree(node.volume):
            scanned += 1
            leaks += [str(path) for needle in secrets if needle.encode() in data]
        for name in ("postgresql.auto.conf", "pg_hba.conf", "postgresql.conf", "k8s-replication.conf"):
            assert (node.pgdata / name).is_file()
    assert scanned > 500
    for what, text in (("script output", c.all_script_output()), ("server logs", c.server_logs())):
        assert text, what
        leaks += [what for needle in secrets if needle in text]
    assert not leaks, f"a password (or part of one) was found in: {sorted(set(leaks))}"
    # The only place it may live is the 0600 passfile on the socket emptyDir.
    assert pgpass_password(s) == c.passwords["replication-password"]


def test_xtrace_does_not_reveal_passwords(cluster: Cluster) -> None:
    """Someone debugging with `bash -x` must not get the passwords in the pod log."""
    p, s = cluster.primary, cluster.node(1)
    p.run_script("init.sh", xtrace=True)
    p.start()
    s.run_script("init.sh", xtrace=True)
    s.start()
    wait_streaming(s)
    for node in (p, s):
        node.run_script("sync-passwords.sh", "--once", xtrace=True)
        node.run_script("readiness.sh", xtrace=True)
    output = cluster.all_script_output()
    assert "+ write_replication_pgpass" in output and "+ pg_basebackup" in output, "xtrace was not on"
    leaks = [needle for needle in leak_needles(cluster.passwords.values()) if needle in output]
    assert not leaks, f"{len(leaks)} password fragment(s) in the xtrace output"
