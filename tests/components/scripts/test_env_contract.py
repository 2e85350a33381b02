"""The environment contract (components/pod_env_contract.py) as the real scripts keep it.

- A required variable that is unset or empty stops every entry script that needs it,
  with a message naming it, before anything is touched.
- The scripts read nothing else: they run with ``env -i`` and only declared names
  (the harness refuses the others), under ``set -u``, so a read of an undeclared
  variable stops them; and each entry script runs on its required variables alone,
  every other one taking its declared default.
- Every Secret file the contract declares is one the scripts need.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from components.pod_env_contract import DUMP_ENV, POD_ENV, SECRET_FILES, EnvContract, UndeclaredVariableError

from .pg_harness import PROCESS_ENV, Cluster, as_run_user, copy_scripts, run_script_path

LOOPBACK = "127.0.0.1"
JOB_POD = "pg-backup-29111111-abcde"
REQUIRED = [
    pytest.param(contract, script, name, id=f"{script}-{name}")
    for contract in (POD_ENV, DUMP_ENV)
    for script in contract.scripts
    for name in contract.required_by(script)
]


def run_as_pod(script: str, args: list[str], env: Mapping[str, str], path: str | None = None) -> subprocess.CompletedProcess[str]:
    """``script`` as OS user postgres with exactly ``env`` (no harness defaults added)."""
    argv = as_run_user(["bash", path or run_script_path(script), *args], env)
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def job_dirs(cluster: Cluster) -> tuple[Path, Path]:
    return cluster.job_dir("dumps"), cluster.job_dir("jobtmp")


def full_env(cluster: Cluster, contract: EnvContract, script: str, dumps: Path, tmp: Path) -> tuple[dict[str, str], list[str]]:
    """The environment and arguments ``script`` runs with in these tests."""
    if contract is POD_ENV:
        return cluster.primary.env(), ["--once"] if script == "sync-passwords.sh" else []
    port = str(cluster.primary.port)
    if script == "backup.sh":
        env = cluster.job_env(BACKUP_DIR=str(dumps), BACKUP_HOSTS=LOOPBACK, PGPORT=port, TMPDIR=str(tmp), POD_NAME=JOB_POD)
        return env, []
    return cluster.job_env(PGHOST=LOOPBACK, PGPORT=port, TMPDIR=str(tmp), POD_NAME=JOB_POD), [str(dumps / "20270115T080000Z")]


def untouched(cluster: Cluster, *dirs: Path) -> None:
    node = cluster.primary
    for d in (node.volume, node.socket_dir, *dirs):
        assert list(d.iterdir()) == [], f"{d} was touched"


@pytest.mark.parametrize("empty", [False, True], ids=["unset", "empty"])
@pytest.mark.parametrize(("contract", "script", "name"), REQUIRED)
def test_a_missing_required_variable_is_named_and_nothing_is_touched(
    cluster: Cluster, contract: EnvContract, script: str, name: str, empty: bool
) -> None:
    dumps, tmp = job_dirs(cluster)
    env, args = full_env(cluster, contract, script, dumps, tmp)
    assert name in env, f"the test gives {script} no {name} to take away"
    if empty:
        env[name] = ""
    else:
        del env[name]
    cp = run_as_pod(script, args, env)
    assert cp.returncode != 0, cp.stderr
    fatal = [line for line in cp.stderr.splitlines() if "FATAL:" in line]
    assert fatal and fatal[0].endswith(f"FATAL: environment variable {name} is required"), cp.stderr
    untouched(cluster, dumps, tmp)


def test_the_harness_passes_only_declared_names(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    node = cluster.primary
    assert set(node.env()) - PROCESS_ENV <= POD_ENV.names
    with pytest.raises(UndeclaredVariableError, match=r"PGSTACK_KNOB: not declared in components/pod_env_contract\.py POD_ENV"):
        node.env(PGSTACK_KNOB="1")
    # A database pod's variable is not the dump job's.
    with pytest.raises(UndeclaredVariableError, match=r"PGDATA: not declared in components/pod_env_contract\.py DUMP_ENV"):
        cluster.job_env(PGDATA=str(node.pgdata))
    with pytest.raises(UndeclaredVariableError, match="PGSTACK_KNOB"):
        make_cluster(extra_env={"PGSTACK_KNOB": "1"})


def test_reading_an_undeclared_variable_stops_the_script(cluster: Cluster) -> None:
    """The scripts give no variable a default of their own: one that the contract does not
    declare is unset under `env -i`, and `set -u` stops the script at the read."""
    copy = copy_scripts(cluster.base / "scripts-reading-more")
    lib = copy / "pod-config.sh"
    text = lib.read_text()
    assert text.count("  load_env\n") == 1
    lib.write_text(text.replace("  load_env\n", '  load_env\n  : "$PGSTACK_UNDECLARED_KNOB"\n'))
    cp = run_as_pod("init.sh", [], cluster.primary.env(), path=str(copy / "init.sh"))
    assert cp.returncode != 0 and "PGSTACK_UNDECLARED_KNOB: unbound variable" in cp.stderr, cp.stderr
    untouched(cluster)
    # The same copy without the read starts the pod: the read alone stopped it.
    lib.write_text(text)
    cp = run_as_pod("init.sh", [], cluster.primary.env(), path=str(copy / "init.sh"))
    assert cp.returncode == 0, cp.stderr


def minimal(contract: EnvContract, script: str, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without anything ``script`` does not require (PATH and HOME stay)."""
    keep = set(contract.required_by(script)) | PROCESS_ENV
    return {k: v for k, v in env.items() if k in keep}


def test_each_entry_script_runs_on_its_required_variables_alone(cluster: Cluster) -> None:
    """Every other variable a script reads takes its declared default: one read without
    a declared default would stop it (`set -u`)."""
    p = cluster.primary
    dumps, tmp = job_dirs(cluster)

    def run(contract: EnvContract, script: str, args: list[str] | None = None) -> str:
        env, default_args = full_env(cluster, contract, script, dumps, tmp)
        env = minimal(contract, script, env)
        cp = run_as_pod(script, default_args if args is None else args, env)
        cluster.record_output(f"{script} (required variables only)", cp.stdout, cp.stderr)
        assert cp.returncode == 0 and "unbound variable" not in cp.stderr, f"{script} with {sorted(env)}:\n{cp.stderr}"
        return cp.stderr

    # REPLICATION_ENABLED defaults to false: a single primary.
    assert "starts as primary; replication=false" in run(POD_ENV, "init.sh")
    p.start()
    assert "ready: primary accepting connections" in run(POD_ENV, "readiness.sh")
    assert "applied the Secret's passwords to roles: postgres" in run(POD_ENV, "sync-passwords.sh")
    assert "backup complete" in run(DUMP_ENV, "backup.sh")
    (dump,) = [d for d in dumps.iterdir() if d.is_dir()]
    assert "restore complete" in run(DUMP_ENV, "restore.sh", [str(dump)])


@pytest.mark.parametrize("name", sorted(SECRET_FILES))
def test_every_declared_secret_file_is_needed(cluster: Cluster, name: str) -> None:
    """With replication and an application user, init.sh refuses to start without any
    one of the Secret files the contract declares."""
    (cluster.secrets_dir / name).unlink()
    cp = cluster.primary.run_script("init.sh", check=False)
    assert cp.returncode != 0 and f"secret file {cluster.secrets_dir}/{name} is missing" in cp.stderr, cp.stderr
    assert not cluster.primary.pgdata.exists()
