"""The pod scripts as files: shellcheck-clean, bash with strict mode, and
configuration errors reported before anything is touched."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .pg_harness import SCRIPTS_DIR, Cluster

REQUIRED = {"common.sh", "init.sh", "readiness.sh", "sync-passwords.sh"}
SCRIPTS = sorted(p.name for p in SCRIPTS_DIR.glob("*.sh"))


def test_expected_scripts_exist() -> None:
    assert REQUIRED.issubset(SCRIPTS)


def test_shellcheck_finds_nothing() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (apt-get install shellcheck)"
    files = sorted(str(p) for p in SCRIPTS_DIR.glob("*.sh"))
    cp = subprocess.run([shellcheck, "-x", *files], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_bash_with_strict_mode(name: str) -> None:
    lines = (SCRIPTS_DIR / name).read_text().splitlines()
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
    cp = subprocess.run(
        ["bash", "-c", 'source "$1"; pod_ordinal "$2"', "t", str(SCRIPTS_DIR / "common.sh"), pod],
        capture_output=True,
        text=True,
    )
    assert cp.returncode == 0 and cp.stdout.strip() == ordinal, cp.stderr
