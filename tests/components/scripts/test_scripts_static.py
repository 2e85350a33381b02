"""The pod scripts as files: shellcheck-clean, bash with strict mode, flat names,
one concern per library, and configuration errors reported before anything is touched.

The files checked are those a pod gets (pg_harness.scripts_dir): components/scripts/*.sh
and env-contract.sh, generated from components/pod_env_contract.py."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from components.pod_env_contract import DUMP_ENV, ENV_CONTRACT_FILE, POD_ENV, WAL_ENV

from .pg_harness import SCRIPTS_DIR, Cluster, run_library, scripts_dir

# What the pod spec and the CronJob run by name from /scripts.
ENTRY = {
    "init.sh",
    "readiness.sh",
    "sync-passwords.sh",
    "backup.sh",
    "restore.sh",
    "wal-archive.sh",
    "wal-restore.sh",
    "wal-basebackup.sh",
    "wal-pitr.sh",
}
# The libraries they source, one concern each, named by who sources them (lib-base.sh says how).
LIBRARIES = {
    "lib-base.sh",
    "pod-config.sh",
    "lib-secrets.sh",
    "pod-psql.sh",
    "pod-roles.sh",
    "init-volume.sh",
    "init-layout.sh",
    "init-temp-server.sh",
    "init-pitr.sh",
    "pod-control-data.sh",
    "pod-upstream.sh",
    "pod-slots.sh",
    "init-primary.sh",
    "init-standby.sh",
    "init-managed-conf.sh",
    "init-wal-sizing.sh",
    "dump-format.sh",
    "dump-config.sh",
    "backup-run.sh",
    "backup-hosts.sh",
    "backup-dump.sh",
    "backup-retention.sh",
    "restore-dump.sh",
    "restore-server.sh",
    "restore-props.sh",
    "restore-globals.sh",
    "wal-target.sh",
    "wal-manifest.sh",
    "wal-retention.sh",
}
REQUIRED = ENTRY | LIBRARIES
SCRIPTS = sorted(p.name for p in SCRIPTS_DIR.glob("*.sh"))
SHIPPED = sorted([*SCRIPTS, ENV_CONTRACT_FILE])


def test_expected_scripts_exist() -> None:
    assert REQUIRED.issubset(SCRIPTS)
    # The generated file is not committed beside them (it would go stale).
    assert ENV_CONTRACT_FILE not in SCRIPTS
    assert set(POD_ENV.scripts) | set(DUMP_ENV.scripts) | set(WAL_ENV.scripts) == ENTRY


@pytest.mark.scanner
def test_shellcheck_finds_nothing() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (apt-get install shellcheck)"
    files = sorted(str(p) for p in scripts_dir().glob("*.sh"))
    assert ENV_CONTRACT_FILE in {p.rsplit("/", 1)[-1] for p in files}
    cp = subprocess.run([shellcheck, "-x", *files], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr


@pytest.mark.parametrize("name", SHIPPED)
def test_bash_with_strict_mode(name: str) -> None:
    lines = (scripts_dir() / name).read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    code = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert code[0] == "set -euo pipefail"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"POD_NAME": "pg-x"}, "cannot read an ordinal from pod name 'pg-x'"),
        ({"REPLICATION_ENABLED": "yes"}, "REPLICATION_ENABLED='yes' is invalid"),
        ({"APP_USER": "Bad-Name"}, "APP_USER='Bad-Name' is invalid"),
        ({"APP_USER": "", "APP_DATABASE": "appdb"}, "needs APP_USER"),
        ({"REPLICATION_USER": "postgres"}, "reserved for the superuser"),
        ({"PGDATA": "relative/path"}, "PGDATA='relative/path' is invalid"),
        ({"PRIMARY_HOST": "bad host"}, "PRIMARY_HOST='bad host' is invalid"),
        ({"READINESS_MAX_LAG_BYTES": "lots"}, "READINESS_MAX_LAG_BYTES='lots' is invalid"),
    ],
)
def test_bad_configuration_fails_before_touching_anything(cluster: Cluster, env: dict[str, str], message: str) -> None:
    node = cluster.node(1)
    for script in ("init.sh", "readiness.sh"):
        cp = node.run_script(script, env=env, check=False)
        assert cp.returncode != 0 and message in cp.stderr, cp.stderr
    assert list(node.volume.iterdir()) == []
    assert list(node.socket_dir.iterdir()) == []


def test_missing_or_multiline_secret_is_refused(cluster: Cluster) -> None:
    p = cluster.primary
    cluster.set_password("postgres-password", "line one\nline two\n")
    cp = p.run_script("init.sh", check=False)
    assert cp.returncode != 0 and "must hold a single line" in cp.stderr
    (cluster.secrets_dir / "postgres-password").unlink()
    cp = p.run_script("init.sh", check=False)
    assert cp.returncode != 0 and "postgres-password is missing" in cp.stderr
    assert not p.pgdata.exists()


@pytest.mark.parametrize(("pod", "ordinal"), [("pg-0", "0"), ("pg-standby-12", "12"), ("db-007", "7")])
def test_ordinal_is_the_suffix_after_the_last_dash(pod: str, ordinal: str) -> None:
    cp = run_library('pod_ordinal "$1"', pod, libs=["lib-base.sh", "pod-config.sh"], env={"PATH": "/usr/bin:/bin"})
    assert cp.returncode == 0 and cp.stdout.strip() == ordinal, cp.stderr


def defines(library: str, *functions: str) -> bool:
    """Whether sourcing ``library`` (after lib-base.sh) defines every one of ``functions``."""
    libs = ["lib-base.sh"] if library == "lib-base.sh" else ["lib-base.sh", library]
    cp = run_library('declare -F "$@" >/dev/null', *functions, libs=libs, env={"PATH": "/usr/bin:/bin"})
    return cp.returncode == 0


def test_every_library_can_be_sourced_on_its_own() -> None:
    for library in sorted(LIBRARIES):
        libs = ["lib-base.sh"] if library == "lib-base.sh" else ["lib-base.sh", library]
        cp = run_library("true", libs=libs, env={"PATH": "/usr/bin:/bin"})
        assert cp.returncode == 0 and not cp.stderr, f"{library}: {cp.stderr}"


def test_the_clone_flusher_lives_in_one_library() -> None:
    """A benchmark turns the flusher off by appending no-op start_flusher/stop_flusher
    definitions to a copy of the one library that defines them."""
    defining = [name for name in sorted(LIBRARIES) if defines(name, "start_flusher", "stop_flusher")]
    assert defining == ["init-standby.sh"]


def sourced_by() -> dict[str, set[str]]:
    """Each library -> the entry scripts that source it (libraries source none themselves)."""
    sources = re.compile(r'^\. "\$(?:SCRIPT_DIR|\(dirname -- "\$\{BASH_SOURCE\[0\]\}"\))/([a-z-]+\.sh)"$', re.M)
    users: dict[str, set[str]] = {name: set() for name in LIBRARIES}
    for name in SCRIPTS:
        for library in sources.findall((SCRIPTS_DIR / name).read_text()):
            if library == ENV_CONTRACT_FILE:  # lib-base.sh applies it for every script
                continue
            assert name in ENTRY, f"{name} sources {library}: only entry scripts source libraries"
            users[library].add(name)
    return users


def family(entries: set[str]) -> str:
    """The prefix a library sourced by ``entries`` carries: its name says who runs it."""
    pod, dump = set(POD_ENV.scripts), set(DUMP_ENV.scripts)
    if all(entry.startswith("wal-") for entry in entries):
        return "wal-"
    if entries & pod and entries & dump:
        return "lib-"
    if entries == {"init.sh"}:
        return "init-"
    if entries <= pod:
        return "pod-"
    return "dump-" if entries == dump else {"backup.sh": "backup-", "restore.sh": "restore-"}[min(entries)]


def test_a_library_name_says_who_sources_it() -> None:
    users = sourced_by()
    assert all(users.values()), [name for name, entries in users.items() if not entries]
    wrong = {name: sorted(entries) for name, entries in users.items() if not name.startswith(family(entries))}
    assert wrong == {}


def test_headers_do_not_restate_source_lists() -> None:
    """Which entry script sources a library is in its name and in the entry script; a
    header that lists them again goes stale."""
    for name in LIBRARIES:
        header = (SCRIPTS_DIR / name).read_text().split("\nset -euo pipefail", 1)[0]
        assert "Sourced" not in header, f"{name}: {header}"
