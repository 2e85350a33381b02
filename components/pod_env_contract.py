"""The pod env contract: the environment between the Pulumi side and the pod scripts, declared once.

Every environment variable a script in components/scripts reads is declared here: its name,
meaning and format, and whether it is required or what it defaults to. Two contracts:
``POD_ENV`` (the database pods' containers: init.sh, readiness.sh, sync-passwords.sh) and
``DUMP_ENV`` (the dumps job's container: backup.sh, restore.sh).

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

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

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

V = TypeVar("V")

#: The generated file's name in the scripts ConfigMap (components/pod_env_contract_sh.py).
ENV_CONTRACT_FILE = "env-contract.sh"

_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_SCRIPT_RE = re.compile(r"^[a-z][a-z0-9-]*\.sh$")


class UndeclaredVariableError(ValueError):
    """An environment variable that its contract does not declare."""


@dataclass(frozen=True)
class EnvVar:
    """One environment variable of a contract."""

    name: str
    #: What it means, one line (rendered as a comment into env-contract.sh).
    meaning: str
    #: The value it takes when unset or empty; None: required (unset or empty stops the script).
    default: str | None = None
    #: What a value must look like (checked by env-contract.sh); an empty default allows empty.
    format: Format | None = None
    #: The pod spec sets it. False: left to its default (a tuning knob the tests set, libpq's own).
    set_by_pod: bool = True
    #: Set from the downward API (e.g. metadata.name) instead of a value.
    field_path: str | None = None
    #: The entry scripts that read it; None: every script of the contract; (): none (set for
    #: people and tools in the pod, not for the scripts).
    read_by: tuple[str, ...] | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def expected(self) -> str:
        """What the refusal of a bad value says is expected."""
        assert self.format is not None
        return f"empty or {self.format.expected}" if self.default == "" else self.format.expected


@dataclass(frozen=True)
class EnvContract:
    """The environment of one kind of container and the entry scripts it runs."""

    name: str
    #: Which container, for messages ("the database pods").
    container: str
    scripts: tuple[str, ...]
    variables: tuple[EnvVar, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for script in self.scripts:
            if not _SCRIPT_RE.match(script):
                raise ValueError(f"{self.name}: script name {script!r} is not a flat *.sh name")
        for v in self.variables:
            where = f"{self.name}.{v.name}"
            if not _NAME_RE.match(v.name):
                raise ValueError(f"{where}: not an environment variable name ([A-Z_][A-Z0-9_]*)")
            if v.name in seen:
                raise ValueError(f"{where}: declared twice")
            seen.add(v.name)
            if not v.meaning or "\n" in v.meaning:
                raise ValueError(f"{where}: the meaning must be one non-empty line")
            if v.default is not None and any(c in v.default for c in "\n\r\0"):
                raise ValueError(f"{where}: a default must be one line")
            if v.required and not v.set_by_pod:
                raise ValueError(f"{where}: a required variable must be set by the pod")
            if v.format is None and v.read_by != ():
                raise ValueError(f"{where}: a variable the scripts read needs a format")
            if v.format is not None and v.default and not re.search(v.format.regex, v.default):
                raise ValueError(f"{where}: the default {v.default!r} is not {v.format.expected}")
            if v.field_path is not None and not v.set_by_pod:
                raise ValueError(f"{where}: field_path needs set_by_pod")
            unknown = set(v.read_by or ()) - set(self.scripts)
            if unknown:
                raise ValueError(f"{where}: read_by names scripts outside {self.scripts}: {sorted(unknown)}")

    @property
    def names(self) -> frozenset[str]:
        """Every declared name."""
        return frozenset(v.name for v in self.variables)

    def pod_names(self) -> tuple[str, ...]:
        """The names the pod spec sets, in declaration order."""
        return tuple(v.name for v in self.variables if v.set_by_pod)

    def read_by(self, script: str) -> tuple[EnvVar, ...]:
        """The variables ``script`` reads, in declaration order."""
        if script not in self.scripts:
            raise ValueError(f"{script} is not a script of {self.name} ({', '.join(self.scripts)})")
        return tuple(v for v in self.variables if v.read_by is None or script in v.read_by)

    def required_by(self, script: str) -> tuple[str, ...]:
        """The variables without which ``script`` refuses to start."""
        return tuple(v.name for v in self.read_by(script) if v.required)

    def check_names(self, names: Iterable[str]) -> None:
        """Refuse any name this contract does not declare."""
        undeclared = sorted(set(names) - self.names)
        if undeclared:
            raise UndeclaredVariableError(
                f"{', '.join(undeclared)}: not declared in components/pod_env_contract.py {self.name} "
                f"(the environment of {self.container}); declare it there first"
            )

    def pod_entries(self, values: Mapping[str, V]) -> list[tuple[EnvVar, V | None]]:
        """What the pod spec sets, in declaration order: each variable with its value from
        ``values``, or None for one set from the downward API (``EnvVar.field_path``).

        ``values`` must hold exactly the other ``set_by_pod`` variables.
        """
        self.check_names(values)
        wanted = {v.name for v in self.variables if v.set_by_pod and v.field_path is None}
        missing, extra = sorted(wanted - set(values)), sorted(set(values) - wanted)
        if missing or extra:
            raise ValueError(f"{self.name}: values lack {missing} and have {extra} that the pod spec does not set by value")
        return [(v, None if v.field_path else values[v.name]) for v in self.variables if v.set_by_pod]


_POD_SCRIPTS = ("init.sh", "readiness.sh", "sync-passwords.sh")

POD_ENV = EnvContract(
    name="POD_ENV",
    container="the database pods (init, postgres and password-sync containers)",
    scripts=_POD_SCRIPTS,
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

CONTRACTS = (POD_ENV, DUMP_ENV)

#: The Secret's keys, mounted as files under SECRETS_DIR, that the scripts read.
SECRET_FILES: dict[str, str] = {
    "postgres-password": "the superuser's password (always)",
    "replication-password": "REPLICATION_USER's password (with REPLICATION_ENABLED=true)",
    "password": "APP_USER's password (when APP_USER is set)",
}
