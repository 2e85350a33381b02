"""The metrics exporter's role and its peer authentication on real PostgreSQL: init.sh with MONITOR_USER set
makes pgstack_monitor (pg_monitor, no password) and maps OS user nobody to it over the socket only.

Debian's prometheus-postgres-exporter 0.11.1 scrapes a PostgreSQL 15 server through that path, as the pods'
exporter does: OS user nobody, DATA_SOURCE_NAME over the socket, no password. The pods run 0.20.1
(components/postgres_metrics_args.py), which cannot run here (no container runtime, and no 0.20.1 binary in
Debian's archive); both read DATA_SOURCE_NAME the same way and connect with lib/pq, so 0.11.1 proves the
authentication path, not 0.20.1's collectors. On 18 (the major the stacks ship) the role and the map are
checked with psql as OS user nobody. One server per major, shared by the module's tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.postgres_exporter import EXPORTER_OS_USER
from components.postgres_names import MONITOR_ROLE

from .pg_harness import Cluster, Node, as_run_user, free_port, switch_user, wait_for
from .test_majors import use_major

EXPORTER = Path("/usr/bin/prometheus-postgres-exporter")
# The role from the socket as the exporter's OS user; the pods' DSN (components/postgres_exporter.py) with the
# node's socket directory and port.
# An OS user the map does not name (Debian's uid 1).
OTHER_OS_USER = "daemon"
SLEEPER = "pgstack-test-sleeper"
DSN = "host={socket} port={port} user=" + MONITOR_ROLE + " dbname=postgres sslmode=disable"


def _monitored(pg_bin: Path, major: str) -> Iterator[Node]:
    if os.geteuid() != 0:
        pytest.fail("the monitoring-role tests switch to OS user nobody: run the script tests as root", pytrace=False)
    cluster = Cluster(pg_bin, replication=False, extra_env={"MONITOR_USER": MONITOR_ROLE})
    try:
        node = cluster.node(0)
        use_major(node, major, pg_bin)
        # The socket directory is the pod's emptyDir, which the kubelet makes world-writable (0777:
        # kubernetes pkg/volume/emptydir/empty_dir.go, perm): the exporter's user reaches the socket.
        node.socket_dir.chmod(0o777)
        cluster.start_node(0)
        yield node
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def pg15(pg_bin: Path) -> Iterator[Node]:
    yield from _monitored(pg_bin, "15")


@pytest.fixture(scope="module")
def pg18(pg_bin: Path) -> Iterator[Node]:
    yield from _monitored(pg_bin, "18")


def _as(user: str, argv: list[str], env: dict[str, str]) -> list[str]:
    return [*switch_user(user), "env", "-i", "-C", "/", *(f"{k}={v}" for k, v in env.items()), *argv]


def _psql_as(node: Node, os_user: str, sql: str, db_user: str = MONITOR_ROLE) -> subprocess.CompletedProcess[str]:
    """psql over the node's socket as OS user ``os_user`` asking for role ``db_user``, never prompting."""
    psql = str(node.cluster.pg_bin / "psql")
    conninfo = f"host={node.socket_dir} port={node.port} user={db_user} dbname=postgres"
    argv = [psql, "-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql]
    return subprocess.run(_as(os_user, argv, {"PATH": "/usr/bin:/bin"}), capture_output=True, text=True, timeout=30)


def _scrape(node: Node, *os_users: str) -> dict[str, str]:
    """Debian's exporter as each of ``os_users`` at once, each on a free port: /metrics once pg_up is in it."""
    if not EXPORTER.is_file():
        pytest.fail(f"{EXPORTER} is missing: apt-get install -y prometheus-postgres-exporter", pytrace=False)
    env = {"DATA_SOURCE_NAME": DSN.format(socket=node.socket_dir, port=node.port)}
    running: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        for user in os_users:
            port = free_port()
            argv = [str(EXPORTER), f"--web.listen-address=127.0.0.1:{port}"]
            running[user] = (
                port,
                subprocess.Popen(_as(user, argv, env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True),
            )

        def scraped(user: str) -> str:
            port, proc = running[user]
            if proc.poll() is not None:
                raise AssertionError(f"the exporter as {user} exited {proc.returncode}")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = str(response.read().decode())
            return text if "\npg_up " in text else ""

        return {user: wait_for(lambda u=user: scraped(u), 15, f"the exporter as {user} to serve pg_up") for user in os_users}
    finally:
        for _, proc in running.values():
            # SIGKILL to the group: the exporter keeps no state, and nothing is gained by waiting for it.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def scrapes(pg15: Node) -> Iterator[dict[str, str]]:
    """/metrics of the exporter as nobody (mapped) and as daemon (not mapped), scraped side by side while the
    superuser runs a query: only pg_read_all_stats (a pg_monitor member role) sees another role's session's state."""
    psql = [str(pg15.cluster.pg_bin / "psql"), "-X", "-q", "-h", str(pg15.socket_dir), "-p", str(pg15.port), "-U", "postgres"]
    sleeper = subprocess.Popen(
        as_run_user([*psql, "-d", "postgres", "-c", f"SET application_name = '{SLEEPER}'; SELECT pg_sleep(60)"], pg15.env()),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        active = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{SLEEPER}' AND state = 'active'"
        wait_for(lambda: pg15.psql(active) == "1", 10, "the superuser's query to run")
        yield _scrape(pg15, EXPORTER_OS_USER, OTHER_OS_USER)
    finally:
        pg15.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{SLEEPER}'")
        os.killpg(sleeper.pid, signal.SIGKILL)
        sleeper.wait(timeout=10)


def _metric(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


def test_the_role_is_a_passwordless_pg_monitor_login_and_nothing_more(pg15: Node) -> None:
    row = pg15.psql(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolpassword IS NULL "
        f"FROM pg_authid WHERE rolname = '{MONITOR_ROLE}'"
    )
    assert row == "t|f|f|f|f|f|t"
    assert (
        pg15.psql(
            f"SELECT string_agg(b.rolname, ',') FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid "
            f"JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '{MONITOR_ROLE}'"
        )
        == "pg_monitor"
    )
    # Idempotent: the sidecar's pass applies the same roles again without an error, a notice or a change.
    cp = pg15.sync_passwords_once()
    assert cp.returncode == 0 and "NOTICE" not in cp.stderr, cp.stderr
    assert (
        pg15.psql(f"SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '{MONITOR_ROLE}'") == "1"
    )


def test_debians_exporter_scrapes_as_nobody_over_the_socket(pg15: Node, scrapes: dict[str, str]) -> None:
    text = scrapes[EXPORTER_OS_USER]
    assert "pg_up 1" in _metric(text, "pg_up"), _metric(text, "pg_up")
    # pg_monitor at work: the superuser's running query counts among the active sessions (its own scrape is the
    # other one); without pg_read_all_stats its state would be hidden (null) and only the scrape's own would count.
    active = [line for line in _metric(text, "pg_stat_activity_count{") if 'datname="postgres"' in line and 'state="active"' in line]
    assert len(active) == 1 and float(active[0].rsplit(" ", 1)[1]) >= 2, active
    # And pg_read_all_settings: data_directory is shown to its members only.
    assert _psql_as(pg15, EXPORTER_OS_USER, "SELECT count(*) FROM pg_settings WHERE name = 'data_directory'").stdout.strip() == "1"
    assert _metric(text, "pg_stat_database_xact_commit{"), "no pg_stat_database metrics"
    assert _metric(text, "pg_settings_max_connections"), "no pg_settings metrics"


def test_another_os_user_gets_pg_up_0(pg15: Node, scrapes: dict[str, str]) -> None:
    other = OTHER_OS_USER
    text = scrapes[other]
    assert "pg_up 0" in _metric(text, "pg_up"), _metric(text, "pg_up")
    log = pg15.log_path.read_text(errors="replace")
    assert f'no match in usermap "monitor" for user "{MONITOR_ROLE}" authenticated as "{other}"' in log


def test_the_role_never_logs_in_over_tcp_or_as_another_role(pg15: Node) -> None:
    cp = pg15.tcp_psql("SELECT 1", MONITOR_ROLE, None)
    assert cp.returncode != 0 and f'pg_hba.conf rejects connection for host "127.0.0.1", user "{MONITOR_ROLE}"' in cp.stderr, cp.stderr
    # The map admits nobody as the monitoring role only, and the role only through the map.
    cp = _psql_as(pg15, EXPORTER_OS_USER, "SELECT 1", db_user="postgres")
    assert cp.returncode != 0 and "Peer authentication failed" in cp.stderr, cp.stderr
    err = pg15.psql("SELECT 1", user=MONITOR_ROLE, check=False)
    assert "Peer authentication failed" in err, err


def test_on_18_nobody_is_the_monitoring_role_and_nothing_maps_to_it_once_metrics_are_off(pg18: Node) -> None:
    sql = "SELECT current_user, pg_has_role('pg_monitor', 'MEMBER'), current_setting('data_directory') <> ''"
    cp = _psql_as(pg18, EXPORTER_OS_USER, sql)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == f"{MONITOR_ROLE}|t|t"
    assert "map=monitor" in (pg18.pgdata / "pg_hba.conf").read_text().split()
    cp = pg18.tcp_psql("SELECT 1", MONITOR_ROLE, None)
    assert cp.returncode != 0 and "pg_hba.conf rejects connection" in cp.stderr, cp.stderr
    # Metrics turned off: the pod restarts without MONITOR_USER; the role is left alone, and no login reaches it.
    pg18.stop()
    pg18.init(MONITOR_USER="")
    pg18.start()
    assert pg18.psql(f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{MONITOR_ROLE}'") == "t"
    assert "monitor" not in (pg18.pgdata / "pg_ident.conf").read_text().split("\n", 1)[1]
    assert "map=monitor" not in (pg18.pgdata / "pg_hba.conf").read_text()
    cp = _psql_as(pg18, EXPORTER_OS_USER, "SELECT 1")
    # No map: the socket's scram line asks for a password the role does not have.
    assert cp.returncode != 0 and "no password supplied" in cp.stderr, cp.stderr


def test_nobody_is_the_exporters_user_on_this_machine_too() -> None:
    """The map names OS user nobody; the server resolves the socket peer's uid in its own /etc/passwd (Debian: 65534)."""
    assert pwd.getpwnam(EXPORTER_OS_USER).pw_uid == 65534
    assert shutil.which("setpriv")
