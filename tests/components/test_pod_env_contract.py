"""The contract between the Pulumi side and the pod scripts, declared once in components/pod_env_contract.py.

What the scripts read is tested against real PostgreSQL in tests/components/scripts/test_env_contract.py
(a missing required variable is named, an undeclared one stops a script, each entry script
runs on its required variables alone). Here: the declaration, the bash rendered from it, and
that the rendered pods set exactly what it declares and ship that bash beside the scripts.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.pod_env_contract import (
    CONTRACTS,
    DUMP_ENV,
    ENV_CONTRACT_FILE,
    POD_ENV,
    SECRET_FILES,
    WAL_ENV,
    EnvContract,
    EnvVar,
    UndeclaredVariableError,
)
from components.pod_env_contract_sh import generated_scripts, render_env_contract
from tests.conftest import SECRET, STS, run_with
from tools.mock_run import plain as _plain

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "components" / "scripts"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


# ------------------------------------------------------------------ the declaration


def test_the_required_variables() -> None:
    pod = ("POD_NAME", "PGDATA", "PGPORT", "PG_SOCKET_DIR", "SECRETS_DIR")
    init = ("POD_NAME", "PGDATA", "STACK_PG_MAJOR", "PGPORT", "PG_SOCKET_DIR", "SECRETS_DIR")
    assert {s: POD_ENV.required_by(s) for s in POD_ENV.scripts} == dict.fromkeys(POD_ENV.scripts, pod) | {"init.sh": init}
    assert DUMP_ENV.required_by("backup.sh") == ("BACKUP_HOSTS", "BACKUP_DIR", "PGPORT", "SECRETS_DIR")
    assert DUMP_ENV.required_by("restore.sh") == ("PGHOST", "PGPORT", "SECRETS_DIR")
    assert WAL_ENV.required_by("wal-basebackup.sh") == ("WAL_TARGET", "PRIMARY_HOST", "PGPORT", "SECRETS_DIR")
    assert WAL_ENV.required_by("wal-pitr.sh") == ("WAL_TARGET", "PGDATA")


def test_what_the_pods_leave_to_the_defaults() -> None:
    """Tuning knobs the tests set, libpq's timeout, the tests' clock: declared with defaults, never set by a pod."""
    assert {v.name: v.default for v in POD_ENV.variables if not v.set_by_pod} == {
        "BOOTSTRAP_MAX_WAIT_SECONDS": "600",
        "BOOTSTRAP_BACKOFF_MAX_SECONDS": "30",
        "SYNC_INTERVAL_SECONDS": "10",
        "PEER_CHECK_SECONDS": "20",
        "PGCONNECT_TIMEOUT": "10",
        "TMPDIR": "/tmp",
    } | dict.fromkeys(RCLONE_WAL, "") | {"RCLONE_CONFIG": ""}
    assert {v.name: v.default for v in DUMP_ENV.variables if not v.set_by_pod} == {
        "BACKUP_CONNECT_SECONDS": "120",
        "BACKUP_NOW": "",
        "PGCONNECT_TIMEOUT": "10",
    }
    assert {v.name: v.default for v in WAL_ENV.variables if not v.set_by_pod} == dict.fromkeys(RCLONE_WAL, "") | {
        "PGCONNECT_TIMEOUT": "10",
        "RCLONE_CONFIG": "",
    }


# rclone's settings of remote WAL (an S3 target): rclone reads them, no script does (the script tests set them);
# the pods give rclone RCLONE_CONFIG instead, the Secret's rclone.conf mounted as a file.
RCLONE_WAL = [f"RCLONE_CONFIG_WAL_{key}" for key in ("TYPE", "PROVIDER", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "ENDPOINT", "REGION")]


def test_undeclared_names_are_refused() -> None:
    POD_ENV.check_names(["PGDATA", "APP_USER"])
    with pytest.raises(UndeclaredVariableError, match=r"BACKUP_DIR, PGHOST: not declared in components/pod_env_contract\.py POD_ENV"):
        POD_ENV.check_names(["PGDATA", "PGHOST", "BACKUP_DIR"])


def test_pod_entries_are_the_pod_set_variables_in_order() -> None:
    values = {v.name: f"value of {v.name}" for v in POD_ENV.variables if v.set_by_pod and v.field_path is None}
    entries = POD_ENV.pod_entries(values)
    assert [v.name for v, _ in entries] == list(POD_ENV.pod_names())
    assert {v.name: (v.field_path, value) for v, value in entries}["POD_NAME"] == ("metadata.name", None)
    with pytest.raises(ValueError, match=r"lack \['PGDATA'\]"):
        POD_ENV.pod_entries({k: v for k, v in values.items() if k != "PGDATA"})
    with pytest.raises(ValueError, match=r"have \['TMPDIR'\]"):
        POD_ENV.pod_entries(values | {"TMPDIR": "/tmp"})
    with pytest.raises(UndeclaredVariableError):
        POD_ENV.pod_entries(values | {"PGHOST": "x"})


# ------------------------------------------------------------------ env-contract.sh


def contract_in_bash(rendered: Path, script: str) -> tuple[list[str], dict[str, str]]:
    """What env_contract SCRIPT sets in bash: (ENV_REQUIRED, ENV_DEFAULTS)."""
    code = 'source "$1"; env_contract "$2"; printf "%s\\0" "${ENV_REQUIRED[@]}"; printf "\\1"; '
    code += 'for k in "${!ENV_DEFAULTS[@]}"; do printf "%s\\0%s\\0" "$k" "${ENV_DEFAULTS[$k]}"; done'
    cp = subprocess.run(["bash", "-c", code, "t", str(rendered), script], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert cp.returncode == 0, cp.stderr
    required, defaults = cp.stdout.split("\1")
    pairs = defaults.split("\0")[:-1]
    return required.split("\0")[:-1], dict(zip(pairs[::2], pairs[1::2], strict=True))


@pytest.mark.scanner
def test_env_contract_sh_is_shellcheck_clean(tmp_path: Path) -> None:
    rendered = tmp_path / ENV_CONTRACT_FILE
    rendered.write_text(render_env_contract())
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (apt-get install shellcheck)"
    cp = subprocess.run([shellcheck, str(rendered)], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout


def test_env_contract_sh_gives_each_script_its_declared_environment(tmp_path: Path) -> None:
    rendered = tmp_path / ENV_CONTRACT_FILE
    rendered.write_text(render_env_contract())
    for contract in CONTRACTS:
        for script in contract.scripts:
            required, defaults = contract_in_bash(rendered, script)
            assert required == list(contract.required_by(script))
            assert defaults == {v.name: v.default for v in contract.read_by(script) if v.default is not None}
    fails = subprocess.run(["bash", "-c", 'source "$1"; env_contract other.sh', "t", str(rendered)], capture_output=True)
    assert fails.returncode == 1


# A value of each format that passes, and one that does not.
GOOD = {
    "path": "/var/lib/x",
    "port": "5432",
    "bool": "true",
    "identifier": "app_user",
    "host": "pg-rw.ns.svc",
    "hosts": "pg-ro.ns pg-rw.ns",
    "host or socket": "/run/postgresql",
    "pod": "pg-0",
    "namespace": "db",
    "lsn": "0/3000148",
    "major": "18",
    "seconds": "10",
    "bytes": "16777216",
    "dumps": "7",
    "days": "0",
    "utc time": "20261122T010203Z",
    "wal target": "WAL:bucket/stack-a",
    "command": "/pgstack/bin/rclone",
    "restore point": "2026-12-06 17:00:00.5+00",
    "backups": "7",
}
BAD = {
    "path": "relative/x",
    "port": "54x",
    "bool": "yes",
    "identifier": "Bad-Name",
    "host": "bad host",
    "hosts": "pg-ro.ns bad_host!",
    "host or socket": "bad host",
    "pod": "Pg_0",
    "namespace": "db!",
    "lsn": "0/30001a8",
    "major": "eighteen",
    "seconds": "1m",
    "bytes": "-1",
    "dumps": "-1",
    "days": "week",
    "utc time": "2027-01-15",
    "wal target": "s3://bucket",
    "command": "rclone --fast",
    "restore point": "yesterday",
    "backups": "0",
}
CHECKED = [
    pytest.param(contract, script, v, id=f"{script}-{v.name}")
    for contract in CONTRACTS
    for script in contract.scripts
    for v in contract.read_by(script)
    if v.format is not None
]


def load_env_cases(directory: Path, cases: list[tuple[str, dict[str, str]]]) -> list[tuple[int, str]]:
    """env-contract.sh's load_env as each case's script runs it, with exactly the case's environment (die as
    lib-base.sh has it): (exit status, stderr) per case. One bash runs every case in a subshell of its own, started
    with an empty environment (bash adds PWD, SHLVL and _, as it does for a `bash -c` with env), so a case sees
    only its exports: a bash per case was a tenth of the unit tier's time."""
    rendered = directory / ENV_CONTRACT_FILE
    rendered.write_text(render_env_contract())
    lines = ['die() { printf "FATAL: %s\\n" "$*" >&2; exit 1; }']
    for n, (script, env) in enumerate(cases):
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        run = f"export {exports}; SCRIPT_NAME={shlex.quote(script)}; source {shlex.quote(str(rendered))}; load_env"
        lines.append(f"({run}) 2>{directory}/{n}.err; echo $? >{directory}/{n}.rc")
    (directory / "cases.sh").write_text("\n".join(lines) + "\n")
    cp = subprocess.run(["bash", str(directory / "cases.sh")], capture_output=True, text=True, env={})
    assert cp.returncode == 0, cp.stderr
    return [(int((directory / f"{n}.rc").read_text()), (directory / f"{n}.err").read_text()) for n in range(len(cases))]


def _good(contract: EnvContract, script: str) -> dict[str, str]:
    return {v.name: GOOD[v.format.name] for v in contract.read_by(script) if v.format} | {"PATH": "/usr/bin:/bin"}


def _cases(contract: EnvContract, script: str, var: EnvVar) -> list[tuple[str, dict[str, str]]]:
    """Every value of a format is fine, the bad one for var, and an empty var where it may be empty."""
    assert var.format is not None
    good = _good(contract, script)
    return [(script, good), (script, good | {var.name: BAD[var.format.name]})] + [(script, good | {var.name: ""})] * (var.default == "")


@pytest.fixture(scope="module")
def load_env_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[int, str]]]:
    """Every CHECKED case's load_env results, by test id: one bash for the module (load_env_cases)."""
    cases = {p.id: _cases(*p.values) for p in CHECKED}
    flat = load_env_cases(tmp_path_factory.mktemp("load_env"), [c for each in cases.values() for c in each])
    results, at = {}, 0
    for key, each in cases.items():
        results[key], at = flat[at : at + len(each)], at + len(each)
    return results


def test_every_format_has_a_good_and_a_bad_example() -> None:
    used = {v.format.name for c in CONTRACTS for v in c.variables if v.format}
    assert used == set(GOOD) == set(BAD)


def test_one_bash_gives_each_case_exactly_its_environment(tmp_path: Path) -> None:
    """The batch's subshells do not leak one case's exports into the next."""
    contract, script, var = CHECKED[0].values
    good = _good(contract, script)
    bad = good | {var.name: BAD[var.format.name]}
    assert [rc for rc, _ in load_env_cases(tmp_path, [(script, bad), (script, good), (script, bad), (script, {})])] == [1, 0, 1, 1]


@pytest.mark.parametrize(("contract", "script", "var"), CHECKED)
def test_load_env_refuses_a_bad_value_of_each_format_in_one_line(
    request: pytest.FixtureRequest, load_env_results: dict[str, list[tuple[int, str]]], contract: EnvContract, script: str, var: EnvVar
) -> None:
    assert var.format is not None
    results = load_env_results[request.node.callspec.id]
    assert results[0] == (0, ""), results[0][1]
    bad = BAD[var.format.name]
    assert results[1] == (1, f"FATAL: {var.name}='{bad}' is invalid: expected {var.expected}\n")
    if var.default == "":
        assert results[2][0] == 0, f"{var.name} may be empty"


def test_generated_files_do_not_collide_with_the_scripts() -> None:
    assert not {p.name for p in SCRIPTS_DIR.glob("*.sh")} & set(generated_scripts())
    assert set(generated_scripts()) == {ENV_CONTRACT_FILE}


# ------------------------------------------------------------------ the rendered pods


def _names_and_values(container: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(e["name"], e.get("value", e.get("valueFrom"))) for e in container["env"]]


def test_every_database_container_sets_exactly_the_pod_contract() -> None:
    run = run_with({"pgstack:postgres": {"replicas": 2}})
    declared = {v.name: v for v in POD_ENV.variables}
    sets = run.of_type(STS)
    assert len(sets) == 2
    for sts in sets:
        pod = _plain(sts.inputs["spec"])["template"]["spec"]
        for container in pod["containers"] + pod["initContainers"]:
            where = f"{sts.name}/{container['name']}"
            env = _names_and_values(container)
            assert [name for name, _ in env] == list(POD_ENV.pod_names()), where
            for name, value in env:
                if declared[name].field_path is not None:
                    assert value == {"fieldRef": {"fieldPath": declared[name].field_path}}, f"{where} {name}"
            secrets = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "secrets")
            assert dict(env)["SECRETS_DIR"] == secrets, where


def test_the_dump_job_sets_exactly_the_dump_contract() -> None:
    from tests.stacks.test_backups import CRON, _pod, _prod

    (dump,) = _pod(_prod().one(CRON, "dumps-cron"))["containers"]
    env = _names_and_values(dump)
    assert [name for name, _ in env] == list(DUMP_ENV.pod_names())
    assert dict(env)["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert dump["command"][0].removeprefix("/scripts/") in DUMP_ENV.scripts


def test_the_scripts_configmap_ships_the_generated_contract() -> None:
    run = run_with({})
    (scripts,) = [cm for cm in run.of_type(CONFIG_MAP) if cm.name.endswith("-scripts")]
    data = scripts.inputs["data"]
    assert set(data) == {p.name for p in SCRIPTS_DIR.glob("*.sh")} | {ENV_CONTRACT_FILE}
    assert data[ENV_CONTRACT_FILE] == render_env_contract()


def test_the_secret_holds_exactly_the_declared_files() -> None:
    run = run_with({"pgstack:postgres": {"replicas": 2}})
    assert set(_plain(run.one(SECRET, "postgres-credentials").inputs["stringData"])) == set(SECRET_FILES)
