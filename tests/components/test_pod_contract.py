"""The contract between the Pulumi side and the pod scripts: env names and Secret keys agree."""

from __future__ import annotations

import re

from components.postgres_statefulset import SECRETS_MOUNT, script_files
from stacks.render import _plain
from tests.conftest import SECRET, STS, run_with

# The dump job's scripts; every other script runs in the database pods.
DUMP_SCRIPTS = {"backup.sh", "restore.sh"}


def code(names: set[str] | None = None) -> str:
    """The scripts' code without comments (comments may mention variables in prose)."""
    texts = [text for name, text in script_files().items() if names is None or name in names]
    return "\n".join(line for text in texts for line in text.splitlines() if not line.lstrip().startswith("#"))


def env_read_by(text: str) -> set[str]:
    """Variables the scripts read from the environment (the NAME=${NAME-...} and `for v in` forms)."""
    return set(re.findall(r"\b([A-Z][A-Z0-9_]+)=\$\{\1[-:]", text)) | {
        name for names in re.findall(r"for v in ([A-Z_ ]+); do", text) for name in names.split()
    }


SCRIPTS = code()
SCRIPT_ENV = env_read_by(code(set(script_files()) - DUMP_SCRIPTS))
# Tuning knobs with defaults in common.sh; the tests set them, the pod leaves the defaults.
DEFAULTED = {"BOOTSTRAP_MAX_WAIT_SECONDS", "BOOTSTRAP_BACKOFF_MAX_SECONDS", "SYNC_INTERVAL_SECONDS", "PEER_CHECK_SECONDS"}
SECRET_FILES = set(re.findall(r"secret_path ([a-z-]+)", SCRIPTS))


def test_scripts_contract_is_what_we_parse() -> None:
    assert {"PGDATA", "PGPORT", "PG_SOCKET_DIR", "POD_NAME", "SECRETS_DIR", "PRIMARY_POD", "REPLICATION_USER"} <= SCRIPT_ENV
    assert {"postgres-password", "replication-password", "password"} == SECRET_FILES


def test_every_env_var_the_pod_sets_is_read_by_the_scripts_and_none_is_missing() -> None:
    run = run_with({"pgstack:postgres": {"replicas": 2}})
    secret_keys = set(_plain(run.one(SECRET, "postgres-credentials").inputs["stringData"]))
    assert secret_keys == SECRET_FILES
    for sts in run.of_type(STS):
        pod = _plain(sts.inputs["spec"])["template"]["spec"]
        for container in pod["containers"] + pod["initContainers"]:
            env = {e["name"] for e in container["env"]}
            # POSTGRES_PASSWORD_FILE follows the image's convention for anyone exec-ing into the pod.
            assert env - {"POSTGRES_PASSWORD_FILE"} <= SCRIPT_ENV, f"{sts.name}/{container['name']} sets unknown variables"
            missing = SCRIPT_ENV - env - DEFAULTED
            missing -= {"PGCONNECT_TIMEOUT"}  # libpq's own, defaulted by the scripts
            assert not missing, f"{sts.name}/{container['name']} lacks {missing}"
            secrets_dir = next(e["value"] for e in container["env"] if e["name"] == "SECRETS_DIR")
            assert secrets_dir == SECRETS_MOUNT


def test_the_dump_job_sets_what_its_scripts_read() -> None:
    from tests.test_backups import CRON, _pod, _prod

    wanted = env_read_by(code(DUMP_SCRIPTS)) - {"BACKUP_CONNECT_SECONDS", "PGCONNECT_TIMEOUT"}
    wanted -= {"BACKUP_NOW"}  # the tests' clock
    assert {"BACKUP_DIR", "BACKUP_HOSTS", "BACKUP_KEEP", "PGHOST", "SECRETS_DIR"} <= wanted
    (dump,) = _pod(_prod().one(CRON, "dumps-cron"))["containers"]
    env = {e["name"] for e in dump["env"]}
    assert env == wanted, f"set but unread: {env - wanted}; read but unset: {wanted - env}"
    assert dump["command"][0].removeprefix("/scripts/") in DUMP_SCRIPTS
