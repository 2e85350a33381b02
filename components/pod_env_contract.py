"""The pod env contract: the environment between the Pulumi side and the pod scripts, declared once.

Every environment variable a script in components/scripts reads is declared here: its name,
meaning and format, and whether it is required or what it defaults to. Three contracts:
``POD_ENV`` (the database pods' containers: init.sh, readiness.sh, sync-passwords.sh, and the
WAL archive and restore commands PostgreSQL runs there), ``DUMP_ENV`` (the dumps job's
container: backup.sh, restore.sh) and ``WAL_ENV`` (the base-backup job and a point-in-time
restore). The model (``EnvVar``, ``EnvContract``) is in components/pod_env_model.py.

The scripts do not repeat it. components/pod_env_contract_sh.py renders both into
``env-contract.sh``, shipped beside the scripts in their ConfigMap, and the first thing every
entry script does is apply it (``load_env``): it stops, naming the variable, when a required
one is unset or empty or a value lacks its declared format, and gives every other declared
variable its default. No script reads a default of its own or checks a declared format by
hand, so under ``set -u`` a variable that is not declared here is an error, which the script
tests (run with ``env -i`` and only declared names, see ``check_names``) turn up. The pod
specs set exactly the variables marked ``set_by_pod`` (``pod_entries``), in declaration order.

The ceiling of the pod scripts: they stay bash for what they do today: check this
environment, run PostgreSQL's tools in order, read single values (pg_controldata fields, one
psql row) and filter a dump's listings (restore-globals.sh, restore-props.sh). Logic that
parses server output beyond that, or keeps state across runs beyond today's marker files,
goes into a small injected binary or Python tool with its own tests, not into more bash.

Pure Python: nothing here needs pulumi.
"""

from __future__ import annotations

from components.pod_env_formats import (
    BOOL,
    BYTES,
    DAYS,
    DUMPS,
    HOST,
    HOST_OR_SOCKET,
    HOSTS,
    IDENT,
    LSN,
    NAMESPACE,
    PATH,
    PG_MAJOR,
    POD,
    PORT,
    SECONDS,
    UTC_STAMP,
    Format,
)
from components.pod_env_model import ENV_CONTRACT_FILE, EnvContract, EnvVar, UndeclaredVariableError

# What importers of this module use from the model, kept importable from here.
__all__ = [
    "CONTRACTS",
    "DUMP_ENV",
    "ENV_CONTRACT_FILE",
    "PATH",
    "POD_ENV",
    "SECRET_FILES",
    "WAL_ENV",
    "EnvContract",
    "EnvVar",
    "UndeclaredVariableError",
]

_POD_SCRIPTS = ("init.sh", "readiness.sh", "sync-passwords.sh")
# PostgreSQL runs these in the postgres container (archive_command, restore_command), with its environment.
_WAL_COMMANDS = ("wal-archive.sh", "wal-restore.sh")

# The WAL archive (components/scripts/wal-target.sh): an rclone remote path REMOTE:bucket/prefix (REMOTE
# configured by RCLONE_CONFIG_<REMOTE>_*), or an absolute directory (rclone's local backend, a mounted
# volume). Nothing in it needs quoting where wal-pitr.sh writes it into restore_command.
WAL_TARGET = Format(
    "wal target",
    "^([A-Z][A-Z0-9_]*:[A-Za-z0-9][A-Za-z0-9._/-]*|/[A-Za-z0-9._/-]*[A-Za-z0-9._-])$",
    "an rclone remote path REMOTE:bucket/prefix (REMOTE in upper case) or an absolute directory",
)
PITR_POINT = Format(
    "restore point",
    "^(latest|[0-9A-F]{1,8}/[0-9A-F]{1,8}"
    "|[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)$",
    "latest, a WAL position X/Y or a time YYYY-MM-DD HH:MM:SS[.ffffff][zone]",
)
COMMAND = Format("command", "^([a-z][a-z0-9_-]*|/[A-Za-z0-9._/-]+)$", "a command name or an absolute path")
BACKUPS = Format("backups", "^[1-9][0-9]{0,3}$", "a positive integer (base backups to keep)")
#: The rclone remote WAL_TARGET names when it is S3 (as the dumps' upload, components/logical_backup_pod.py).
WAL_REMOTE = "WAL"


def _wal_remote_config() -> tuple[EnvVar, ...]:
    """rclone's settings of remote WAL, which rclone reads itself (no script does): set from the S3
    Secret (secretKeyRef, never a literal) when WAL_TARGET is WAL:bucket/prefix."""
    keys = ("type", "provider", "access_key_id", "secret_access_key", "endpoint", "region")
    return tuple(
        EnvVar(f"RCLONE_CONFIG_{WAL_REMOTE}_{key.upper()}", f"rclone's {key} of remote {WAL_REMOTE}", "", set_by_pod=False, read_by=())
        for key in keys
    )


# rclone reads it itself (no script does): its config file, where the pods' remote WAL comes from (the Secret
# <name>-wal-s3's rclone.conf, mounted as a file: components/wal_pod.py); set beside the contract's env, where a WAL
# command runs. Unset: no config file, the remote from RCLONE_CONFIG_WAL_* (the script tests).
_RCLONE_CONFIG = EnvVar(
    "RCLONE_CONFIG", "rclone's config file (remote WAL's S3 account, a mounted Secret file)", "", set_by_pod=False, read_by=()
)

POD_ENV = EnvContract(
    name="POD_ENV",
    container="the database pods (init, postgres and password-sync containers)",
    scripts=(*_POD_SCRIPTS, *_WAL_COMMANDS),
    variables=(
        # In the order the pod spec sets them.
        EnvVar("POD_NAME", "this pod's name (pg-0, pg-standby-1): ordinal, role, slot name", field_path="metadata.name", format=POD),
        EnvVar(
            "POD_NAMESPACE",
            "this pod's namespace, for the kubectl commands the logs suggest",
            "",
            field_path="metadata.namespace",
            format=NAMESPACE,
        ),
        EnvVar("PRIMARY_HOST", "the primary's host name; required when REPLICATION_ENABLED=true", "", format=HOST),
        EnvVar("PEERS_HOST", "the headless Service (every pod); empty: no peer check before an empty primary", "", format=HOST),
        EnvVar("PRIMARY_POD", "the pod that must be the primary; empty: the pod with ordinal 0", "", format=POD),
        EnvVar("PGDATA", "the data directory, a subdirectory of DATA_MOUNT", format=PATH),
        EnvVar(
            "STACK_PG_MAJOR",
            "the PostgreSQL major the stack configures (postgres.image.tag); init.sh refuses a server of another major",
            read_by=("init.sh",),
            format=PG_MAJOR,
        ),
        EnvVar("DATA_MOUNT", "the data volume's mount path; empty: implied by PGDATA's image layout", "", format=PATH),
        EnvVar("PGPORT", "the port PostgreSQL listens on", format=PORT),
        EnvVar("PG_SOCKET_DIR", "the unix socket directory (the pod's emptyDir)", format=PATH),
        EnvVar("REPLICATION_ENABLED", "true: a primary and streaming standbys; false: one primary", "false", format=BOOL),
        EnvVar("PRIMARY_PORT", "the primary's port", "5432", format=PORT),
        EnvVar("REPLICATION_USER", "the role standbys stream as", "replicator", format=IDENT),
        EnvVar("SECRETS_DIR", "the directory of the Secret's files (SECRET_FILES)", format=PATH),
        EnvVar(
            "POSTGRES_PASSWORD_FILE",
            "the superuser's password file, the official image's convention for people in the pod",
            "",
            read_by=(),
        ),
        EnvVar("APP_USER", "the application role; empty: none", "", format=IDENT),
        EnvVar("APP_DATABASE", "the application database, owned by APP_USER; empty: none", "", format=IDENT),
        EnvVar("READINESS_MAX_LAG_BYTES", "a standby replaying further behind than this is not ready", "16777216", format=BYTES),
        EnvVar(
            "PROMOTE_ACCEPT_WAL_LOSS_UP_TO",
            "a WAL position (X/Y): promote even though a peer's WAL reaches this far past this pod's; empty: refuse",
            "",
            format=LSN,
        ),
        EnvVar(
            "TLS_DIR",
            "the mounted TLS files (tls.crt, tls.key, ca.crt): server certificate and the stack's CA; empty: TLS off",
            "",
            format=PATH,
        ),
        EnvVar("TLS_REQUIRED", "true: TCP clients and standbys must use TLS (hostnossl ... reject); needs TLS_DIR", "false", format=BOOL),
        EnvVar("MONITOR_USER", "the metrics exporter's role (pg_monitor, peer over the socket only); empty: none", "", format=IDENT),
        EnvVar(
            "WAL_TARGET",
            "where archive_command stores WAL and restore_command fetches it (wal-target.sh); empty: no archive",
            "",
            read_by=_WAL_COMMANDS,
            format=WAL_TARGET,
        ),
        EnvVar("WAL_RCLONE", "the rclone binary the WAL commands run (a copy in the pod)", "rclone", read_by=_WAL_COMMANDS, format=COMMAND),
        # Left to their defaults by the pod; the tests shorten them.
        EnvVar(
            "BOOTSTRAP_MAX_WAIT_SECONDS",
            "how long a new standby waits for the primary before it fails",
            "600",
            set_by_pod=False,
            format=SECONDS,
        ),
        EnvVar("BOOTSTRAP_BACKOFF_MAX_SECONDS", "longest pause between two clone attempts", "30", set_by_pod=False, format=SECONDS),
        EnvVar("SYNC_INTERVAL_SECONDS", "pause between two password-sync passes", "10", set_by_pod=False, format=SECONDS),
        EnvVar(
            "PEER_CHECK_SECONDS", "how long an empty primary looks for peers running PostgreSQL", "20", set_by_pod=False, format=SECONDS
        ),
        EnvVar("PGCONNECT_TIMEOUT", "libpq's connection timeout in seconds", "10", set_by_pod=False, format=SECONDS),
        EnvVar("TMPDIR", "where temporary files go (the pod's /tmp emptyDir)", "/tmp", set_by_pod=False, format=PATH),
        *_wal_remote_config(),
        _RCLONE_CONFIG,
        # A point-in-time restore into a new stack (init-pitr.sh): an empty primary volume is filled from
        # PITR_FROM by wal-pitr.sh instead of initdb.
        EnvVar(
            "PITR_FROM",
            "the archive an empty primary is restored from (wal-pitr.sh, then promoted); empty: initdb",
            "",
            read_by=("init.sh",),
            format=WAL_TARGET,
        ),
        EnvVar("PITR_TARGET", "where that restore stops: latest, an LSN X/Y or a time", "latest", read_by=("init.sh",), format=PITR_POINT),
    ),
)

DUMP_ENV = EnvContract(
    name="DUMP_ENV",
    container="the dumps job (backup.sh; restore.sh run in the same environment)",
    scripts=("backup.sh", "restore.sh"),
    variables=(
        # In the order the CronJob sets them.
        EnvVar("POD_NAME", "this pod's name, for the logs", "", field_path="metadata.name", format=POD),
        EnvVar("BACKUP_HOSTS", "the servers to dump from, space-separated, first answering first", read_by=("backup.sh",), format=HOSTS),
        EnvVar("PGHOST", "the server restore.sh restores into (the read-write Service)", read_by=("restore.sh",), format=HOST_OR_SOCKET),
        EnvVar("BACKUP_DIR", "the dumps volume's mount path", read_by=("backup.sh",), format=PATH),
        EnvVar("PGPORT", "the servers' port", format=PORT),
        EnvVar("SECRETS_DIR", "the directory of the Secret's files (postgres-password)", format=PATH),
        EnvVar("BACKUP_KEEP", "keep the newest N complete dumps (0: no count rule)", "7", read_by=("backup.sh",), format=DUMPS),
        EnvVar("BACKUP_KEEP_DAYS", "keep complete dumps younger than N days (0: no age rule)", "0", read_by=("backup.sh",), format=DAYS),
        EnvVar("TMPDIR", "where the run's private files go (passfile, error output)", "/tmp", format=PATH),
        # libpq reads these two itself (no script does): verify-full against the stack's CA when TLS is on.
        EnvVar("PGSSLMODE", "libpq's sslmode: verify-full when the stack's TLS is on, else prefer", "prefer", read_by=()),
        EnvVar("PGSSLROOTCERT", "the stack's CA certificate, which verify-full checks the server against; empty: TLS off", "", read_by=()),
        # Left to their defaults by the job.
        EnvVar(
            "BACKUP_CONNECT_SECONDS",
            "how long a run retries BACKUP_HOSTS before it fails",
            "120",
            set_by_pod=False,
            read_by=("backup.sh",),
            format=SECONDS,
        ),
        EnvVar(
            "BACKUP_NOW",
            "the run's clock as a UTC time like 20261122T010203Z; tests only",
            "",
            set_by_pod=False,
            read_by=("backup.sh",),
            format=UTC_STAMP,
        ),
        EnvVar("PGCONNECT_TIMEOUT", "libpq's connection timeout in seconds", "10", set_by_pod=False, format=SECONDS),
    ),
)

_BASEBACKUP = ("wal-basebackup.sh",)

WAL_ENV = EnvContract(
    name="WAL_ENV",
    container="the base-backup job (wal-basebackup.sh) and a point-in-time restore (wal-pitr.sh)",
    scripts=("wal-basebackup.sh", "wal-pitr.sh"),
    variables=(
        # In the order the pods set them.
        EnvVar("POD_NAME", "this pod's name, for the logs", "", field_path="metadata.name", format=POD),
        EnvVar("WAL_TARGET", "the WAL archive: base backups go to (come from) base/, WAL to wal/ (wal-target.sh)", format=WAL_TARGET),
        EnvVar("PRIMARY_HOST", "the primary's host (the read-write Service), pg_basebackup's source", read_by=_BASEBACKUP, format=HOST),
        EnvVar("PGPORT", "the primary's port", read_by=_BASEBACKUP, format=PORT),
        EnvVar("REPLICATION_USER", "the role pg_basebackup connects as", "replicator", read_by=_BASEBACKUP, format=IDENT),
        EnvVar("SECRETS_DIR", "the directory of the Secret's files (replication-password)", read_by=_BASEBACKUP, format=PATH),
        EnvVar(
            "WAL_KEEP_BACKUPS",
            "keep the newest N base backups and every WAL file the oldest of them needs",
            "7",
            read_by=_BASEBACKUP,
            format=BACKUPS,
        ),
        EnvVar("PGDATA", "the empty data directory wal-pitr.sh restores into", read_by=("wal-pitr.sh",), format=PATH),
        EnvVar("WAL_RCLONE", "the rclone binary (a copy in the pod)", "rclone", format=COMMAND),
        EnvVar("TMPDIR", "where the run's private files go (passfile, the base backup before its upload)", "/tmp", format=PATH),
        # libpq reads these two itself (no script does), as in DUMP_ENV.
        EnvVar("PGSSLMODE", "libpq's sslmode: verify-full when the stack's TLS is on, else prefer", "prefer", read_by=()),
        EnvVar("PGSSLROOTCERT", "the stack's CA certificate, which verify-full checks the server against; empty: TLS off", "", read_by=()),
        *_wal_remote_config(),
        EnvVar("PGCONNECT_TIMEOUT", "libpq's connection timeout in seconds", "10", set_by_pod=False, format=SECONDS),
        _RCLONE_CONFIG,
    ),
)

CONTRACTS = (POD_ENV, DUMP_ENV, WAL_ENV)

#: The Secret's keys, mounted as files under SECRETS_DIR, that the scripts read.
SECRET_FILES: dict[str, str] = {
    "postgres-password": "the superuser's password (always)",
    "replication-password": "REPLICATION_USER's password (with REPLICATION_ENABLED=true)",
    "password": "APP_USER's password (when APP_USER is set)",
}
