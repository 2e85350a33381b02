"""The managed pg_hba.conf: scram everywhere, no trust, replication only for the
replication role, and the application role and database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .pg_harness import Cluster, Node, shared_replicated

ALLOWED_METHODS = {"peer", "scram-sha-256", "reject"}


@pytest.fixture(scope="module")
def shared(template: Node) -> Iterator[Cluster]:
    """One primary (on a copy of conftest's ``template``) and streaming standby for the tests that only log
    in and read (one clone instead of four): none of them changes a role, a rule or a password."""
    with shared_replicated(template) as cluster:
        yield cluster


def test_hba_has_no_trust_and_only_known_methods(shared: Cluster) -> None:
    for node in (shared.primary, shared.node(1)):
        text = (node.pgdata / "pg_hba.conf").read_text()
        assert "trust" not in text.lower()
        rules = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert rules and {rule[-1] for rule in rules} <= ALLOWED_METHODS, rules


def test_tcp_logins_need_the_right_password(shared: Cluster) -> None:
    c = shared
    for node in (c.primary, c.node(1)):
        for user, db, key in (("postgres", "postgres", "postgres-password"), ("app", "appdb", "password")):
            cp = node.tcp_psql("SELECT 1", user, None, db=db)
            assert cp.returncode != 0 and "no password supplied" in cp.stderr, cp.stderr
            cp = node.tcp_psql("SELECT 1", user, "wrong", db=db)
            assert cp.returncode != 0 and "password authentication failed" in cp.stderr, cp.stderr
            cp = node.tcp_psql("SELECT current_user", user, c.passwords[key], db=db)
            assert cp.returncode == 0 and cp.stdout.strip() == user, cp.stderr


def test_replication_connections_are_for_the_replication_role_only(shared: Cluster) -> None:
    c = shared
    p = c.primary
    cp = p.tcp_psql("IDENTIFY_SYSTEM", "replicator", c.passwords["replication-password"], db="replication", replication=True)
    assert cp.returncode == 0, cp.stderr
    for user, key in (("app", "password"), ("postgres", "postgres-password")):
        cp = p.tcp_psql("IDENTIFY_SYSTEM", user, c.passwords[key], db="replication", replication=True)
        assert cp.returncode != 0 and "pg_hba.conf rejects replication connection" in cp.stderr, cp.stderr
    # The replication role cannot open a normal session, over TCP or the socket.
    for db in ("postgres", "appdb"):
        cp = p.tcp_psql("SELECT 1", "replicator", c.passwords["replication-password"], db=db)
        assert cp.returncode != 0 and "pg_hba.conf rejects connection" in cp.stderr, cp.stderr
    err = p.psql("SELECT 1", user="replicator", check=False)
    assert "pg_hba.conf rejects connection" in err, err


def test_app_user_owns_its_database_and_can_work_in_it(shared: Cluster) -> None:
    # The role and database init.sh made at the first start (in conftest's template); the table is the app's own,
    # which no other test reads.
    p = shared.primary
    pw = shared.passwords["password"]
    script = "CREATE TABLE notes (id int); INSERT INTO notes VALUES (7); SELECT current_database(), current_user, sum(id) FROM notes"
    cp = p.tcp_psql(script, "app", pw, db="appdb")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "appdb|app|7"
    assert p.psql("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'app'") == "f|f|f"
    assert p.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'") == "app"


def test_without_app_user_no_app_role_or_database(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(app_user="", app_database="")
    (c.secrets_dir / "password").unlink()  # the Secret holds no app password then
    p = c.start_node(0)
    assert p.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app'") == "0"
    assert p.psql("SELECT count(*) FROM pg_database WHERE datname = 'appdb'") == "0"
    s = c.start_node(1)
    assert s.in_recovery()
    assert p.sync_passwords_once().returncode == 0
