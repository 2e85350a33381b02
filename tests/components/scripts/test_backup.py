"""backup.sh and restore.sh (the logical dumps) against real PostgreSQL.

The two Services of a stack are two loopback addresses on one port here: the
standby listens on 127.0.0.2 (the read-only Service), the primary on 127.0.0.1
(the read-write one), and 127.0.0.3 is a Service with no endpoints.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .pg_harness import (
    Cluster,
    Node,
    as_run_user,
    chown_run_user,
    copy_primary_data,
    leak_needles,
    read_bytes_tree,
    wait_for,
)

RO, RW, NOWHERE = "127.0.0.2", "127.0.0.1", "127.0.0.3"
MiB = 1024 * 1024
DAY = 86400


# ------------------------------------------------------------------ helpers


def start_pair(cluster: Cluster, template: Node, standby_settings: dict[str, str] | None = None) -> tuple[Node, Node]:
    """Primary (on a copy of template) on 127.0.0.1 and a streaming standby on 127.0.0.2, both on the same port."""
    p, s = cluster.primary, cluster.node(1)
    s.port = p.port
    start_primary(cluster, template)
    s.init()
    s.start({"listen_addresses": RO} | (standby_settings or {}))
    wait_for(s.is_streaming, 30, "the standby to stream")
    return p, s


def start_primary(cluster: Cluster, template: Node) -> Node:
    """The cluster's primary pod on a copy of ``template``: init.sh (keeping the data) and postgres."""
    copy_primary_data(template, cluster.primary)
    return cluster.start_node(0)


def caught_up(primary: Node, standby: Node) -> None:
    lsn = primary.psql("SELECT pg_current_wal_lsn()")
    wait_for(lambda: standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'") == "t", 30, "the standby to replay everything")


def job_env(cluster: Cluster, dumps: Path, hosts: str, port: int, **extra: str) -> dict[str, str]:
    """What the dumps CronJob sets (LogicalBackup._env), with a TMPDIR of the test's."""
    tmp = cluster.base / "jobtmp"
    if not tmp.exists():
        cluster.job_dir("jobtmp")
    env = {
        "BACKUP_DIR": str(dumps),
        "BACKUP_HOSTS": hosts,
        "PGPORT": str(port),
        "BACKUP_KEEP": "7",
        "BACKUP_KEEP_DAYS": "0",
        "TMPDIR": str(tmp),
        "POD_NAME": "pg-backup-29111111-abcde",
    }
    return env | extra


def restore_env(target: Cluster, port: int) -> dict[str, str]:
    tmp = target.base / "jobtmp"
    if not tmp.exists():
        target.job_dir("jobtmp")
    return {"PGHOST": RW, "PGPORT": str(port), "TMPDIR": str(tmp)}


def complete_dumps(dumps: Path) -> list[str]:
    return sorted(d.name for d in dumps.iterdir() if d.is_dir() and not d.name.endswith(".partial") and (d / "MANIFEST").is_file())


def manifest(dump: Path) -> dict[str, list[str]]:
    """MANIFEST lines by their first word (each value: the rest of one line)."""
    out: dict[str, list[str]] = {}
    for line in (dump / "MANIFEST").read_text().splitlines()[1:]:
        key, _, rest = line.partition(" ")
        out.setdefault(key, []).append(rest)
    return out


def tree(root: Path) -> dict[str, bytes | None]:
    """Every entry under root: content for files, None for directories."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def fatal(cp: subprocess.CompletedProcess[str] | str, script: str = "backup.sh") -> str:
    """The one FATAL line of a failed run."""
    text = cp if isinstance(cp, str) else cp.stderr
    lines = [line for line in text.splitlines() if f"{script}[" in line and "FATAL:" in line]
    assert len(lines) == 1, text
    return lines[0]


def stamp(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(round(epoch)))


NOW = 1_800_000_000  # 2027-01-15T08:00:00Z: BACKUP_NOW of the tests that set the clock


class Session:
    """A psql session kept open (e.g. holding a lock in a transaction)."""

    def __init__(self, node: Node, db: str = "appdb") -> None:
        argv = [
            str(node.cluster.pg_bin / "psql"),
            *("-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(node.socket_dir), "-p", str(node.port), "-U", "postgres", "-d", db),
        ]
        self.proc = subprocess.Popen(as_run_user(argv, node.env()), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)

    def send(self, sql: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def lock_table(node: Node, table: str, db: str = "appdb") -> Session:
    """A session holding ACCESS EXCLUSIVE on table (uncommitted) until closed or committed."""
    session = Session(node, db)
    session.send(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;")
    wait_for(
        lambda: (
            node.psql(
                f"SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass AND mode = 'AccessExclusiveLock' AND granted", db=db
            )
            == "1"
        ),
        10,
        f"the lock on {table}",
    )
    return session


def pg_dump_waits(node: Node) -> bool:
    """A pg_dump session on node waits for a lock."""
    return node.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'") == "1"


def script_pid(stderr: str, script: str = "backup.sh") -> int:
    found = re.search(rf"{re.escape(script)}\[(\d+)\]", stderr)
    assert found, stderr
    return int(found.group(1))


def pg_dump_processes(port: int) -> list[int]:
    """pids of pg_dump processes connected to port (read from /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"pg_dump") and any(f"port={port} ".encode() in a for a in argv):
            pids.append(int(proc.name))
    return pids


# -------------------------------------------------- the data and its fingerprint

SALES = "Sales 2026/ö"


def populate(p: Node) -> None:
    """Roles with attributes, memberships and settings; three databases with tables of many
    types, a partitioned table, a materialized view, sequences, a function, a large object,
    default privileges, grants and owners other than postgres; an unlogged table."""
    p.psql(
        "CREATE ROLE readers NOLOGIN;"
        "CREATE ROLE reporter LOGIN CONNECTION LIMIT 3 VALID UNTIL '2031-01-01 00:00:00+00' PASSWORD 'reporter-pw' IN ROLE readers;"
        "CREATE ROLE ops CREATEDB CREATEROLE NOLOGIN BYPASSRLS;"
        "GRANT readers TO app WITH ADMIN OPTION;"
        "ALTER ROLE reporter SET statement_timeout = '5min';"
        "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, repeat('n', g) FROM generate_series(1, 50) g;"
    )
    p.psql(f'CREATE DATABASE "{SALES}" OWNER app')
    p.psql(f"""ALTER DATABASE "{SALES}" SET work_mem = '8MB'; REVOKE CONNECT ON DATABASE "{SALES}" FROM PUBLIC;
               GRANT CONNECT ON DATABASE "{SALES}" TO readers, app""")
    p.psql(
        'CREATE TABLE "Umsätze" (k text PRIMARY KEY, v numeric); ALTER TABLE "Umsätze" OWNER TO app;'
        "INSERT INTO \"Umsätze\" SELECT 'k' || g, g / 7.0 FROM generate_series(1, 300) g;",
        db=SALES,
    )
    p.psql(
        """
        CREATE SCHEMA shop AUTHORIZATION app;
        CREATE TABLE shop.items (id bigserial PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[],
                                 doc jsonb, raw bytea, at timestamptz);
        INSERT INTO shop.items (name, price, tags, doc, raw, at)
          SELECT CASE WHEN g % 3 = 0 THEN E'line\\nbreak ' || g WHEN g % 3 = 1 THEN 'quote''s "' || g ELSE 'ünïcödé ' || g END,
                 g * 1.25, ARRAY['a' || g, NULL], jsonb_build_object('g', g, 'odd', g % 2 = 1),
                 decode(md5(g::text), 'hex'), timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour'
          FROM generate_series(1, 2000) g;
        INSERT INTO shop.items (name) VALUES ('nulls');
        CREATE TABLE shop.orders (id int PRIMARY KEY, item_id bigint REFERENCES shop.items, qty int);
        INSERT INTO shop.orders SELECT g, g, g % 5 FROM generate_series(1, 500) g;
        CREATE TABLE shop.events (id int, day date) PARTITION BY RANGE (day);
        CREATE TABLE shop.events_2026 PARTITION OF shop.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        CREATE TABLE shop.events_2027 PARTITION OF shop.events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
        INSERT INTO shop.events SELECT g, date '2026-06-01' + g FROM generate_series(1, 400) g;
        CREATE MATERIALIZED VIEW shop.item_count AS SELECT count(*) AS n FROM shop.items;
        CREATE SEQUENCE shop.invoice_no START 1000;
        SELECT nextval('shop.invoice_no') FROM generate_series(1, 5);
        CREATE FUNCTION shop.total() RETURNS numeric LANGUAGE sql AS 'SELECT sum(price) FROM shop.items';
        REVOKE EXECUTE ON FUNCTION shop.total() FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION shop.total() TO readers;
        ALTER TABLE shop.items OWNER TO app; ALTER TABLE shop.orders OWNER TO app; ALTER TABLE shop.events OWNER TO app;
        ALTER SEQUENCE shop.invoice_no OWNER TO app; ALTER MATERIALIZED VIEW shop.item_count OWNER TO app;
        GRANT USAGE ON SCHEMA shop TO readers;
        GRANT SELECT ON shop.items, shop.orders TO readers;
        GRANT UPDATE (qty) ON shop.orders TO reporter;
        ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA shop GRANT SELECT ON TABLES TO readers;
        SELECT lo_from_bytea(424242, convert_to(repeat('large object payload ', 1000), 'UTF8'));
        ALTER LARGE OBJECT 424242 OWNER TO app;
        GRANT SELECT ON LARGE OBJECT 424242 TO readers;
        CREATE UNLOGGED TABLE shop.cache AS SELECT g AS k FROM generate_series(1, 10) g;
        """,
        db="appdb",
    )


def databases(node: Node) -> list[str]:
    out = node.psql("SELECT datname FROM pg_database WHERE datname NOT IN ('template0', 'template1') ORDER BY 1")
    return out.splitlines()


def sorted_acl(sql: str) -> str:
    """Replace sorted_acl(x) by an expression listing the items of ACL x in a stable order
    (GRANT order decides the stored order, and a restore grants in its own order)."""
    return re.sub(r"sorted_acl\(([a-z.]+)\)", r"(SELECT string_agg(i::text, ',' ORDER BY i::text) FROM unnest(\1) i)", sql)


ROLES_SQL = r"""
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT format('role %s super=%s inherit=%s createrole=%s createdb=%s login=%s repl=%s bypassrls=%s limit=%s until=%s config=%s',
                rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
                rolconnlimit, rolvaliduntil, rolconfig) AS x
    FROM pg_roles WHERE rolname !~ '^pg_'
  UNION ALL
  SELECT format('member %s of %s admin=%s by %s', m.rolname, r.rolname, a.admin_option, g.rolname)
    FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
    JOIN pg_roles g ON g.oid = a.grantor WHERE r.rolname !~ '^pg_'
  UNION ALL
  SELECT format('setting db=%s role=%s %s', coalesce(d.datname, '*'), coalesce(r.rolname, '*'), s.setconfig)
    FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole
  UNION ALL
  SELECT format('database %s owner=%s acl=%s encoding=%s', datname, datdba::regrole, sorted_acl(datacl), pg_encoding_to_char(encoding))
    FROM pg_database WHERE datname NOT IN ('template0', 'template1')
) s
"""

OBJECTS_SQL = r"""
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT format('rel %I.%I kind=%s owner=%s acl=%s persistence=%s', n.nspname, c.relname, c.relkind, c.relowner::regrole,
                sorted_acl(c.relacl), c.relpersistence) AS x
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
  UNION ALL
  SELECT format('column %s.%s acl=%s', a.attrelid::regclass, a.attname, sorted_acl(a.attacl))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE a.attacl IS NOT NULL AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL
  SELECT format('schema %I owner=%s acl=%s', nspname, nspowner::regrole, sorted_acl(nspacl))
    FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
  UNION ALL
  SELECT format('function %s owner=%s acl=%s', p.oid::regprocedure, p.proowner::regrole, sorted_acl(p.proacl))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL
  SELECT format('default acl %s in %s on %s: %s', defaclrole::regrole, defaclnamespace::regnamespace, defaclobjtype, sorted_acl(defaclacl))
    FROM pg_default_acl
  UNION ALL
  SELECT format('large object %s owner=%s acl=%s md5=%s', m.oid, m.lomowner::regrole, sorted_acl(m.lomacl), md5(lo_get(m.oid)))
    FROM pg_largeobject_metadata m
  UNION ALL
  SELECT format('extension %s', extname) FROM pg_extension
) s
"""

TABLES_SQL = r"""
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence = 'p'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' ORDER BY 1
"""

SEQUENCES_SQL = "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences ORDER BY 1"


def fingerprint(node: Node) -> dict[str, str]:
    """Roles and databases, then per database: every object with owner and grants, every row
    of every (logged) table, every sequence's state."""
    fp = {"roles": node.psql(sorted_acl(ROLES_SQL))}
    for db in databases(node):
        fp[f"{db}: objects"] = node.psql(sorted_acl(OBJECTS_SQL), db=db)
        for table in node.psql(TABLES_SQL, db=db).splitlines():
            fp[f"{db}: rows of {table}"] = node.psql(
                f"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM {table} t", db=db
            )
        for seq in node.psql(SEQUENCES_SQL, db=db).splitlines():
            fp[f"{db}: sequence {seq}"] = node.psql(f"SELECT last_value || ' ' || is_called FROM {seq}", db=db)
    return fp


def assert_same(expected: dict[str, str], actual: dict[str, str]) -> None:
    assert sorted(actual) == sorted(expected)
    differ = [key for key in expected if expected[key] != actual[key]]
    assert not differ, "\n\n".join(f"{k}:\n--- source\n{expected[k]}\n--- restored\n{actual[k]}" for k in differ)


# ------------------------------------------------------------------ a shared primary

_DIRS = itertools.count()


@pytest.fixture(scope="module")
def server(pg_bin: Path, template: Node) -> Iterator[Cluster]:
    """One primary (on a copy of ``template``) for the tests that dump, wait for and restart a
    primary but need none of their own: each gets its own dumps volume and table."""
    cluster = Cluster(pg_bin)
    try:
        start_primary(cluster, template)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def shared(server: Cluster) -> Cluster:
    """``server`` running, without the table a test may have left."""
    p = server.primary
    if p.proc is None:
        p.start()
    p.psql("DROP TABLE IF EXISTS a", db="appdb")
    return server


def dumps_dir(cluster: Cluster) -> Path:
    """A new, empty dumps volume on ``cluster``."""
    return cluster.job_dir(f"dumps-{next(_DIRS)}")


# ------------------------------------------------------------------ tests


def test_dump_from_the_standby_restores_everything_into_a_fresh_server(make_cluster: Callable[..., Cluster], template: Node) -> None:
    """Also: no password (nor a hash) in the output (xtrace on), the dump files or the server logs."""
    source = make_cluster()
    p, s = start_pair(source, template)
    populate(p)
    caught_up(p, s)
    dumps = source.job_dir("dumps")
    cp = source.run_job("backup.sh", env=job_env(source, dumps, f"{RO} {RW}", p.port), xtrace=True)
    (name,) = complete_dumps(dumps)
    dump = dumps / name
    facts = manifest(dump)
    assert facts["host"] == [RO] and facts["standby"] == ["true"]
    assert {line.split()[0] for line in facts["database"]} == {"appdb", "postgres", "Sales%202026%2F%C3%B6"}
    assert all(line.split()[2:] == [RO, "true"] for line in facts["database"])
    assert sorted(line.split()[2] for line in facts["file"]) == sorted(f.name for f in dump.iterdir() if f.name != "MANIFEST")
    assert re.search(
        rf"backup complete: {re.escape(str(dump))} \(3 databases, [0-9.]+ [KM]iB, [0-9.]+ s, from {RO} \(standby\)\)", cp.stderr
    )
    expected = fingerprint(s)
    # The standby serves every table but the unlogged one; the primary's rows are the standby's.
    for key in expected:
        if ": rows of " in key:
            db, _, table = key.partition(": rows of ")
            assert p.psql(f"SELECT count(*) FROM {table}", db=db) == expected[key].split()[0], key

    # A standby is no place to restore into.
    cp = source.run_job("restore.sh", str(dump), env=restore_env(source, s.port) | {"PGHOST": RO}, check=False)
    assert f"the server at {RO}:{s.port} is a standby (in recovery): restore into the primary" in fatal(cp, "restore.sh")

    target = make_cluster()
    t = target.primary
    target.start_node(0)
    restored = target.run_job("restore.sh", str(dump), env=restore_env(target, t.port), xtrace=True)
    assert "restored database Sales 2026/ö as a new database, in one transaction" in restored.stderr
    assert "restored database appdb into the existing database, in one transaction" in restored.stderr
    assert_same(expected, fingerprint(t))
    # Unlogged tables have no data on a standby: the definition only.
    assert t.psql("SELECT count(*) FROM shop.cache", db="appdb") == "0"
    assert p.psql("SELECT count(*) FROM shop.cache", db="appdb") == "10"
    # Passwords are the target stack's: the restored extra role has none, the stack's roles keep theirs.
    assert t.psql("SELECT rolname FROM pg_authid WHERE rolpassword IS NOT NULL ORDER BY 1").split() == ["app", "postgres", "replicator"]
    assert t.tcp_psql("SELECT 1", "app", target.passwords["password"], db="appdb").returncode == 0

    # Restoring the same dump again, over the databases it made, gives the same result.
    target.run_job("restore.sh", str(dump), env=restore_env(target, t.port))
    assert_same(expected, fingerprint(t))

    secrets = leak_needles([*source.passwords.values(), *target.passwords.values()])
    leaks = []
    for path, data in read_bytes_tree(dumps):
        leaks += [str(path) for needle in secrets if needle.encode() in data]
    globals_sql = subprocess.run(["gzip", "-dc", str(dump / "globals.sql.gz")], capture_output=True, check=True).stdout
    assert b"CREATE ROLE reporter" in globals_sql
    assert b"PASSWORD" not in globals_sql and b"SCRAM-SHA-256$" not in globals_sql and not re.search(rb"md5[0-9a-f]{32}", globals_sql)
    for cluster, tool in ((source, "+ pg_dump -Fc"), (target, "+ pg_restore")):
        output = cluster.all_script_output()
        assert "+ write_pgpass" in output and tool in output, "xtrace was not on"
        for what, text in (("script output", output), ("server logs", cluster.server_logs())):
            leaks += [what for needle in secrets if needle in text]
        # The passfile lived in TMPDIR for the run only.
        assert list((cluster.base / "jobtmp").iterdir()) == []
    assert not leaks, f"a password (or part of one) was found in: {sorted(set(leaks))}"


def test_without_a_standby_it_waits_for_and_dumps_the_primary(shared: Cluster) -> None:
    """The read-only Service has no endpoints and the primary answers only after a while:
    the run keeps trying, in order, and dumps the primary."""
    cluster = shared
    p = cluster.primary
    p.stop()
    dumps = dumps_dir(cluster)
    run = cluster.spawn_job("backup.sh", env=job_env(cluster, dumps, f"{NOWHERE} {RW}", p.port, BACKUP_CONNECT_SECONDS="60"))
    wait_for(lambda: "no server answers yet" in run.stderr(), 20, "a failed first round")
    p.start()
    assert run.wait(timeout=60) == 0, run.stderr()
    (name,) = complete_dumps(dumps)
    facts = manifest(dumps / name)
    assert facts["host"] == [RW] and facts["standby"] == ["false"] and "replayed_until" not in facts
    assert f"connected to {RW} (primary" in run.stderr()


def test_an_unreachable_host_list_fails_after_the_connect_limit(cluster: Cluster) -> None:
    dumps = cluster.job_dir("dumps")
    started = time.monotonic()
    cp = cluster.run_job(
        "backup.sh", env=job_env(cluster, dumps, f"{NOWHERE} 127.0.0.4", 5432, BACKUP_CONNECT_SECONDS="2"), check=False, timeout=60
    )
    elapsed = time.monotonic() - started
    assert cp.returncode == 1
    assert 1.9 <= elapsed <= 7, elapsed
    line = fatal(cp)
    assert f"no server answered within 2s (BACKUP_CONNECT_SECONDS) on any of BACKUP_HOSTS ({NOWHERE} 127.0.0.4)" in line
    assert f"{NOWHERE}: pg_isready:" in line and "127.0.0.4: pg_isready:" in line
    assert [d.name for d in dumps.iterdir()] == [".lock"]


# Retention: dumps already on the volume, by age in days at BACKUP_NOW (the run adds one of age 0).
RETENTION_CASES: dict[str, tuple[int, int, list[float], list[float]]] = {
    # name: (BACKUP_KEEP, BACKUP_KEEP_DAYS, ages of the dumps present, ages left after the run)
    "newest 3": (3, 0, [1, 2, 3, 4, 5], [0, 1, 2]),
    "younger than 3 days (strictly)": (0, 3, [1, 2.9, 3, 4], [0, 1, 2.9]),
    "either rule keeps: days keep more": (2, 4, [1, 2, 3, 3.5, 5], [0, 1, 2, 3, 3.5]),
    "either rule keeps: count keeps more": (4, 1, [2, 3, 10, 20, 30], [0, 2, 3, 10]),
    "only the new one": (1, 0, [1, 2, 3], [0]),
    "age rule alone": (0, 1, [5, 10], [0]),
    "no rule keeps all": (0, 0, [1, 30, 400], [0, 1, 30, 400]),
    # A dump from the future (a skewed clock) is the newest complete dump: never removed, and it
    # counts; the one just written is never removed either.
    "a future dump and the new one are kept": (1, 0, [-1, 1, 2], [-1, 0]),
}


def test_retention_keeps_the_newest_n_or_younger_than_n_days(shared: Cluster) -> None:
    """One run per case of the table, each on a dumps volume of its own."""
    cluster = shared
    p = cluster.primary
    for case, (keep, keep_days, present, left) in RETENTION_CASES.items():
        dumps = dumps_dir(cluster)
        for age in present:
            d = dumps / stamp(NOW - age * DAY)
            d.mkdir()
            (d / "MANIFEST").write_text("pgstack-dump 1\n")
        # Neither of these is a complete dump: never counted, never removed by retention.
        (dumps / stamp(NOW - 90 * DAY)).mkdir()
        (dumps / "lost+found").mkdir()
        for d in dumps.rglob("*"):
            chown_run_user(d)
        env = job_env(cluster, dumps, RW, p.port, BACKUP_KEEP=str(keep), BACKUP_KEEP_DAYS=str(keep_days), BACKUP_NOW=stamp(NOW))
        cp = cluster.run_job("backup.sh", env=env)
        expected = sorted(stamp(NOW - age * DAY) for age in left)
        assert complete_dumps(dumps) == expected, f"case {case!r}:\n{cp.stderr}"
        assert sorted(d.name for d in dumps.iterdir()) == sorted([*expected, stamp(NOW - 90 * DAY), "lost+found", ".lock"]), case
        if keep or keep_days:
            assert f"retention: kept {len(left)} complete dump(s), pruned {len(present) + 1 - len(left)}" in cp.stderr, case


def test_a_failed_dump_leaves_earlier_dumps_untouched(shared: Cluster) -> None:
    """The server ends the dump's session half-way (as a restart or a crash would)."""
    cluster = shared
    p = cluster.primary
    p.psql("CREATE TABLE a (id int); INSERT INTO a VALUES (1)", db="appdb")
    dumps = dumps_dir(cluster)
    env = job_env(cluster, dumps, RW, p.port, BACKUP_KEEP="1")
    cluster.run_job("backup.sh", env=env | {"BACKUP_NOW": stamp(NOW - 3 * DAY)})
    before = tree(dumps)

    session = lock_table(p, "a")
    run = cluster.spawn_job("backup.sh", env=env | {"BACKUP_NOW": stamp(NOW)})
    wait_for(lambda: pg_dump_waits(p), 20, "pg_dump to wait for the lock")
    assert (dumps / f"{stamp(NOW)}.partial").is_dir()
    p.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dump'")
    assert run.wait(timeout=30) == 1
    session.close()
    line = fatal(run.stderr())
    assert f"dump of database appdb from {RW} (primary) failed: pg_dump: error:" in line
    assert "terminating connection due to administrator command" in line
    assert tree(dumps) == before
    assert "retention" not in run.stderr()


def test_one_run_at_a_time_and_killed_runs_leave_nothing_behind(shared: Cluster) -> None:
    """A second run is refused while one runs; SIGTERM stops a run and cleans up; the
    .partial of a SIGKILLed run is removed by the next run, at its start."""
    cluster = shared
    p = cluster.primary
    p.psql("CREATE TABLE a (id int)", db="appdb")
    dumps = dumps_dir(cluster)
    env = job_env(cluster, dumps, RW, p.port)
    session = lock_table(p, "a")
    first = cluster.spawn_job("backup.sh", env=env | {"BACKUP_NOW": stamp(NOW)})
    wait_for(lambda: pg_dump_waits(p), 20, "the first run's pg_dump to wait for the lock")

    second = cluster.run_job("backup.sh", env=env | {"BACKUP_NOW": stamp(NOW + 60)}, check=False, timeout=30)
    assert second.returncode == 1
    assert f"another run holds {dumps}/.lock" in fatal(second)
    assert sorted(d.name for d in dumps.iterdir()) == [".lock", f"{stamp(NOW)}.partial"]

    # SIGTERM to the script alone, as the kubelet sends it to the container's PID 1.
    assert pg_dump_processes(p.port)
    os.kill(script_pid(first.stderr()), signal.SIGTERM)
    assert first.wait(timeout=30) == 143
    assert "received SIGTERM" in first.stderr()
    assert sorted(d.name for d in dumps.iterdir()) == [".lock"]
    assert pg_dump_processes(p.port) == []

    # SIGKILL to every process of the run (the container killed): its .partial stays ...
    third = cluster.spawn_job("backup.sh", env=env | {"BACKUP_NOW": stamp(NOW + 120)})
    wait_for(lambda: len(pg_dump_processes(p.port)) == 1, 20, "the third run's pg_dump")
    third.kill(signal.SIGKILL)
    third.wait(timeout=30)
    wait_for(lambda: pg_dump_processes(p.port) == [], 10, "pg_dump to die")
    assert sorted(d.name for d in dumps.iterdir()) == [".lock", f"{stamp(NOW + 120)}.partial"]
    session.close()
    # ... until the next run, which takes the lock (gone with the killed run) and removes it first.
    cp = cluster.run_job("backup.sh", env=env | {"BACKUP_NOW": stamp(NOW + 180)})
    assert f"removed {dumps}/{stamp(NOW + 120)}.partial, left by an interrupted run" in cp.stderr
    assert sorted(d.name for d in dumps.iterdir()) == [".lock", stamp(NOW + 180)]


def test_a_recovery_conflict_on_the_standby_dumps_that_database_from_the_primary(
    make_cluster: Callable[..., Cluster], template: Node
) -> None:
    """pg_dump on the standby holds a lock on a while it waits for b (locked by replay); the
    primary then locks a, and replay cancels pg_dump at once (max_standby_streaming_delay=0)."""
    c = make_cluster()
    p, s = start_pair(c, template, {"max_standby_streaming_delay": "0"})
    p.psql("CREATE TABLE a (id int); CREATE TABLE b (id int); INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)", db="appdb")
    holder = lock_table(p, "b")
    p.psql("SELECT txid_current()")  # a commit: flushes the WAL with the lock record
    wait_for(
        lambda: s.psql("SELECT count(*) FROM pg_locks WHERE relation = 'b'::regclass AND mode = 'AccessExclusiveLock'", db="appdb") == "1",
        20,
        "the standby to replay the lock on b",
    )
    dumps = c.job_dir("dumps")
    run = c.spawn_job("backup.sh", env=job_env(c, dumps, f"{RO} {RW}", p.port))
    wait_for(lambda: pg_dump_waits(s), 20, "pg_dump on the standby to wait for b")
    p.psql("BEGIN; LOCK TABLE a IN ACCESS EXCLUSIVE MODE; COMMIT", db="appdb")
    wait_for(lambda: "recovery conflict" in run.stderr(), 20, "the conflict")
    holder.send("COMMIT;")
    holder.close()
    assert run.wait(timeout=60) == 0, run.stderr()
    assert re.search(
        rf"recovery conflict: the standby {RO} cancelled the dump of database appdb \(.*conflict with recovery.*\); "
        "dumping it again from the next host",
        run.stderr(),
    )
    (name,) = complete_dumps(dumps)
    facts = manifest(dumps / name)
    assert facts["standby"] == ["true"]
    by_db = {line.split()[0]: line.split()[2:] for line in facts["database"]}
    assert by_db == {"appdb": [RW, "false"], "postgres": [RO, "true"]}
    assert re.search(rf"dumped database appdb \([0-9.]+ [KM]iB from {RW}\)", run.stderr())


def test_a_full_volume_is_told_and_leaves_earlier_dumps(cluster: Cluster, template: Node, mount_tmpfs: Callable[[Path, str], None]) -> None:
    p = start_primary(cluster, template)
    dumps = cluster.job_dir("dumps")
    mount_tmpfs(dumps, "2M")
    env = job_env(cluster, dumps, RW, p.port, BACKUP_KEEP="1")
    cluster.run_job("backup.sh", env=env | {"BACKUP_NOW": stamp(NOW - DAY)})
    before = tree(dumps)
    # 3 MB of random bytes: no compression makes that fit.
    p.psql(
        "CREATE TABLE r AS SELECT decode(md5(random()::text) || md5(random()::text), 'hex') AS b FROM generate_series(1, 100000)",
        db="appdb",
    )
    cp = cluster.run_job("backup.sh", env=env | {"BACKUP_NOW": stamp(NOW)}, check=False)
    assert cp.returncode == 1
    line = fatal(cp)
    assert f"backup volume full: dump of database appdb from {RW} (primary) failed: No space left on device" in line
    assert "the incomplete dump is removed and nothing was pruned" in line
    assert tree(dumps) == before
    assert os.statvfs(dumps).f_bavail * os.statvfs(dumps).f_frsize > MiB  # the partial's space is back


def test_restore_refuses_a_partial_or_tampered_dump_and_stops_on_a_globals_error(cluster: Cluster, template: Node) -> None:
    p = start_primary(cluster, template)
    spare = cluster.job_dir("spare")
    p.psql(f"CREATE TABLESPACE spare LOCATION '{spare}'")
    p.psql("CREATE TABLE a (id int); INSERT INTO a VALUES (1)", db="appdb")
    dumps = cluster.job_dir("dumps")
    cluster.run_job("backup.sh", env=job_env(cluster, dumps, RW, p.port, BACKUP_NOW=stamp(NOW)))
    good = dumps / stamp(NOW)
    p.psql("INSERT INTO a VALUES (2)", db="appdb")  # a restore would remove it

    def copy(name: str, change: Callable[[Path], object]) -> Path:
        d = dumps / name
        subprocess.run(["cp", "-a", str(good), str(d)], check=True)
        change(d)
        return d

    def flip_byte(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    cases = {
        "a partial dump (its run did not finish)": copy(f"{stamp(NOW + 1)}.partial", lambda d: None),
        "no MANIFEST": copy(stamp(NOW + 2), lambda d: (d / "MANIFEST").unlink()),
        "appdb.dump does not match its sha256 in the MANIFEST": copy(stamp(NOW + 3), lambda d: flip_byte(d / "appdb.dump")),
        "globals.sql.gz has 10 bytes, the MANIFEST says": copy(stamp(NOW + 4), lambda d: (d / "globals.sql.gz").write_bytes(b"x" * 10)),
        "postgres.dump is missing": copy(stamp(NOW + 5), lambda d: (d / "postgres.dump").unlink()),
    }
    env = restore_env(cluster, p.port)
    for message, d in cases.items():
        cp = cluster.run_job("restore.sh", str(d), env=env, check=False)
        assert cp.returncode == 1, (message, cp.stderr)
        line = fatal(cp, "restore.sh")
        assert f"refusing {d}" in line and message in line, (message, line)
    assert p.psql("SELECT id FROM a ORDER BY id", db="appdb").split() == ["1", "2"]

    # Globals that fail for another reason than an existing role or tablespace (with a MANIFEST
    # that matches them): the restore stops before any database.
    def bad_globals(d: Path) -> None:
        sql = subprocess.run(["gzip", "-dc", str(d / "globals.sql.gz")], capture_output=True, check=True).stdout
        (d / "globals.sql.gz").write_bytes(gzip.compress(sql + b"ALTER ROLE nobody_here NOLOGIN;\n"))
        data = (d / "globals.sql.gz").read_bytes()
        text = re.sub(
            r"^file \S+ \S+ globals\.sql\.gz$",
            f"file {hashlib.sha256(data).hexdigest()} {len(data)} globals.sql.gz",
            (d / "MANIFEST").read_text(),
            flags=re.M,
        )
        (d / "MANIFEST").write_text(text)

    cp = cluster.run_job("restore.sh", str(copy(stamp(NOW + 6), bad_globals)), env=env, check=False)
    line = fatal(cp, "restore.sh")
    assert re.search(
        r'applying the globals failed with 1 error\(s\): globals.sql line \d+: ERROR:  role "nobody_here" does not exist', line
    )
    assert p.psql("SELECT id FROM a ORDER BY id", db="appdb").split() == ["1", "2"]

    # The intact dump restores into the server it came from (roles and the tablespace exist):
    # over the live database, row 2 goes.
    cp = cluster.run_job("restore.sh", "--only", "appdb", str(good), env=env)
    assert "left 3 existing role(s) as they are" in cp.stderr
    assert p.psql("SELECT id FROM a ORDER BY id", db="appdb").split() == ["1"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BACKUP_KEEP": "-1"}, "BACKUP_KEEP='-1' is invalid"),
        ({"BACKUP_KEEP_DAYS": "week"}, "BACKUP_KEEP_DAYS='week' is invalid"),
        ({"BACKUP_CONNECT_SECONDS": "1m"}, "BACKUP_CONNECT_SECONDS='1m' is invalid"),
        ({"BACKUP_HOSTS": "db.ns.svc bad_host!"}, "BACKUP_HOSTS='db.ns.svc bad_host!' is invalid: expected host names"),
        ({"BACKUP_HOSTS": " "}, "BACKUP_HOSTS=' ' is invalid"),
        ({"BACKUP_DIR": "backups"}, "BACKUP_DIR='backups' is invalid"),
        ({"BACKUP_DIR": "/nonexistent/backups"}, "is not a directory (is the dumps volume mounted?)"),
        ({"PGPORT": ""}, "environment variable PGPORT is required"),
        ({"BACKUP_NOW": "2027-01-15"}, "BACKUP_NOW='2027-01-15' is invalid"),
    ],
)
def test_bad_configuration_fails_before_touching_anything(cluster: Cluster, env: dict[str, str], message: str) -> None:
    dumps = cluster.job_dir("dumps")
    cp = cluster.run_job("backup.sh", env=job_env(cluster, dumps, RW, 5432, BACKUP_CONNECT_SECONDS="1") | env, check=False)
    assert cp.returncode == 1 and message in fatal(cp), cp.stderr
    assert list(dumps.iterdir()) == []
