"""What the steps see of a cluster (the Cluster protocol and its records), and what they act on: a stack's
Target, from its settings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from components.naming import service_dns
from components.postgres_names import backup_job, pod_names, primary_pod_name, statefulsets
from components.postgres_pod import SECRETS_MOUNT
from components.wal_archive_args import archive_timeout_seconds
from stacks.config import PROJECT, Settings, parse_settings

CONTAINER = "postgres"
DATABASE = "postgres"
TABLE = "pgstack_verify"
# The superuser's password file inside the pod (Secret key postgres-password, mounted read-only).
PASSWORD_FILE = f"{SECRETS_MOUNT}/postgres-password"
# Our name in the StatefulSets' managedFields while we hold spec.replicas (see release_replicas).
FIELD_MANAGER = "pgstack-verify"
# PostgreSQL's archive_timeout when a stack does not set pgstack:backup.wal.archiveTimeout (its default, 5min).
DEFAULT_ARCHIVE_TIMEOUT = 300
# Longhorn 1.10.1 labels every Backup with the name of its Longhorn volume under this key (no
# longhorn.io/ prefix): types.LonghornLabelBackupVolume = "backup-volume", set by the backup
# mutating webhook and by the backup-volume controller (longhorn/longhorn-manager v1.10.1).
LONGHORN_BACKUP_VOLUME_LABEL = "backup-volume"
LONGHORN_DRIVER = "driver.longhorn.io"

STEPS = (
    "write a row through the read-write Service",
    "delete the primary pod and wait until it is back and Ready",
    "scale to zero and back",
    "read the row on every pod",
    "newest Longhorn backup, logical dump and archived WAL",
)

ROW_ID = re.compile(r"^[a-z0-9-]{1,63}$")


# ---------------------------------------------------------------- what the steps see of a cluster


@dataclass(frozen=True)
class PodState:
    uid: str
    ready: bool
    terminating: bool = False


@dataclass(frozen=True)
class ExecResult:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class LonghornBackup:
    name: str
    volume: str
    state: str
    created: datetime | None


@dataclass(frozen=True)
class CronJobStatus:
    last_successful: datetime | None
    last_schedule: datetime | None


class Cluster(Protocol):
    """Everything the verification does to a cluster, in the stack's database namespace."""

    def pod(self, name: str) -> PodState | None:
        """The pod, or None when it does not exist."""
        ...

    def delete_pod(self, name: str) -> None: ...

    def replicas(self, statefulset: str) -> int | None:
        """spec.replicas, or None when the StatefulSet does not exist."""
        ...

    def scale(self, statefulset: str, replicas: int) -> None: ...

    def release_replicas(self, statefulset: str) -> None:
        """Give up our field ownership of spec.replicas (after restoring it), so the next
        `pulumi up` that changes replicas does not meet a server-side apply conflict."""
        ...

    def exec_sql(self, pod: str, sql: str, service: Endpoint | None = None) -> ExecResult:
        """psql as the superuser in the pod's postgres container: over the local socket (peer
        auth), or over TCP to ``service`` with a passfile built inside the pod."""
        ...

    def claim_volume(self, claim: str) -> str | None:
        """The Longhorn volume bound to the claim, or None (no claim, unbound, not Longhorn)."""
        ...

    def longhorn_backups(self, volumes: Sequence[str]) -> list[LonghornBackup] | None:
        """Longhorn Backup objects of these volumes, or None when the cluster has no Longhorn backup API."""
        ...

    def cronjob(self, name: str) -> CronJobStatus | None:
        """The CronJob's status, or None when it does not exist."""
        ...


# ---------------------------------------------------------------- the stack's names


@dataclass(frozen=True)
class Target:
    """What the verification acts on, from the stack's settings."""

    namespace: str
    primary: str
    pods: tuple[str, ...]
    # Pods that must hold the row: every pod with replication; without it each pod is its own database.
    row_pods: tuple[str, ...]
    # (StatefulSet, replicas the stack says), the primary's first.
    statefulsets: tuple[tuple[str, int], ...]
    service: Endpoint
    cronjob: str
    # pgstack:backup.wal.archiveTimeout in seconds (default 5 minutes): the archived WAL's age is flagged past 3x.
    archive_timeout: int = DEFAULT_ARCHIVE_TIMEOUT


def target_of(settings: Settings) -> Target:
    pg = settings.postgres
    replication = pg.replication.enabled
    pods = tuple(pod_names(pg.name, pg.replicas, replication))
    primary = primary_pod_name(pg.name, pg.replication.primary)
    sets = tuple((sts, replicas) for sts, _, replicas, _ in statefulsets(pg.name, pg.replicas, replication))
    return Target(
        namespace=settings.namespace,
        primary=primary,
        pods=pods,
        row_pods=pods if replication else (primary,),
        statefulsets=sets,
        service=Endpoint(service_dns(pg.name, settings.namespace), pg.service.port),
        cronjob=backup_job(pg.name),
        archive_timeout=archive_timeout_of(settings),
    )


def archive_timeout_of(settings: Settings) -> int:
    """pgstack:backup.wal.archiveTimeout in seconds; the default's when the stack does not archive."""
    wal = settings.backup.wal
    seconds = archive_timeout_seconds(wal.archiveTimeout) if wal is not None else None
    return seconds or DEFAULT_ARCHIVE_TIMEOUT


def settings_from_config(values: dict[str, Any]) -> Settings:
    """The stack's validated settings from its config values (``tools.stack_files.stack_config``)."""
    prefix = f"{PROJECT}:"
    return parse_settings({k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)})
