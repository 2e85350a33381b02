"""WalArchiveArgs: the contract of continuous WAL archiving (issue 20), field by field.

The database pods archive every finished WAL segment through components/scripts/wal-archive.sh
(archive_command) to ``target``; a CronJob (components/wal_backup.py WalBaseBackup) takes base backups
to the same place and prunes what no kept backup needs. Checked at construction like every Args
(components/validation.py): a wrong value raises one error naming the field, the value and the form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from components.pod_env_contract import PITR_POINT, WAL_REMOTE
from components.validation import check_cron, check_range, fail

# What rclone gets as WAL:<bucket/prefix>: no scheme, no leading slash (the dumps' S3_REMOTE, which
# components/logical_backup_args.py cannot lend here: it imports postgres_args, which imports this module).
S3_REMOTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")

# A PostgreSQL duration for archive_timeout (a time GUC whose unit is s: guc.c's units ms, s, min, h, d).
ARCHIVE_TIMEOUT = re.compile(r"([1-9][0-9]{0,5})(s|min|h)")
_UNIT_SECONDS = {"s": 1, "min": 60, "h": 3600}
# Below 30 s every forced switch ships a whole (mostly empty) 16 MiB segment: PostgreSQL's docs call a minute or
# so reasonable (continuous-archiving.html, archive_timeout). Above a day it is no recovery point objective.
MIN_ARCHIVE_TIMEOUT_SECONDS, MAX_ARCHIVE_TIMEOUT_SECONDS = 30, 24 * 3600
# What wal-basebackup.sh accepts as WAL_KEEP_BACKUPS (components/pod_env_contract.py BACKUPS), kept modest.
MAX_KEEP = 100


def archive_timeout_seconds(value: str) -> int | None:
    """The seconds a PostgreSQL duration such as 5min names, or None if it is not one of the accepted forms."""
    match = ARCHIVE_TIMEOUT.fullmatch(value)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None


@dataclass(frozen=True)
class WalS3:
    """The archive on S3-compatible storage, through rclone's remote WAL (RCLONE_CONFIG_WAL_* from a Secret)."""

    remote: str
    """bucket/prefix (no scheme); the archive is WAL:<remote> with wal/ and base/ under it."""
    credentials: pulumi.Output[dict[str, str]]
    """The data of the Secret <name>-wal-s3 (secret): rclone.conf with the S3 account as remote WAL, which the pods
    and the base-backup job mount as a file (components/wal_pod.py), never as env literals."""
    endpoint_port: int = 443
    """The endpoint's TCP port, opened in the database pods' and the job's egress."""

    def __post_init__(self) -> None:
        if not S3_REMOTE.fullmatch(self.remote):
            accepted = "an rclone bucket/prefix without a scheme: letters, digits, '.', '_', '/' and '-', starting with a letter or digit"
            fail(self, "remote", self.remote, accepted, examples=("backups/orders-db-wal", "my-bucket"))
        check_range(self, "endpoint_port", self.endpoint_port, 1, 65535)

    @property
    def target(self) -> str:
        """WAL_TARGET: rclone's remote WAL and the bucket/prefix."""
        return f"{WAL_REMOTE}:{self.remote}"


# Where a point-in-time restore stops (PITR_TARGET, components/pod_env_contract.py): latest (all archived WAL), a WAL
# position X/Y, or a time as wal-pitr.sh hands it to GNU date (ISO 8601, a zone or UTC).
RESTORE_POINT = re.compile(PITR_POINT.regex)


@dataclass(frozen=True)
class WalRestore:
    """Fill an EMPTY primary volume from another archive at a point in time, instead of initdb (init-pitr.sh)."""

    remote: str
    """The archive's bucket/prefix, read through the same S3 account (rclone's remote WAL)."""
    point: str
    """latest, a WAL position X/Y, or a time such as '2026-12-06 17:00:00+00'."""

    def __post_init__(self) -> None:
        if not S3_REMOTE.fullmatch(self.remote):
            fail(self, "remote", self.remote, "an rclone bucket/prefix without a scheme", examples=("backups/orders-db-wal",))
        if not RESTORE_POINT.match(self.point):
            accepted = "latest, a WAL position X/Y in upper-case hex, or a time YYYY-MM-DD HH:MM:SS[.ffffff][zone]"
            fail(self, "point", self.point, accepted, examples=("latest", "0/3000148", "2026-12-06 17:00:00+00"))

    @property
    def target(self) -> str:
        """PITR_FROM: the archive wal-pitr.sh restores from."""
        return f"{WAL_REMOTE}:{self.remote}"


@dataclass(frozen=True)
class WalArchiveArgs:
    """Continuous archiving: where, how often at the latest, and the base backups that make it restorable."""

    s3: WalS3
    """The archive (the only target: a volume every pod can write is refused by stacks/config/wal.py)."""
    archive_timeout: str = "5min"
    """archive_timeout, the recovery point objective: a PostgreSQL duration (30s to 24h, such as 5min)."""
    schedule: str = "@daily"
    """When the base-backup CronJob runs: a five-field cron schedule or a macro such as @daily."""
    keep: int = 7
    """Base backups kept (1 to 100), with every WAL file the oldest of them needs."""
    restore: WalRestore | None = None
    """A new stack's primary starts from this archive at a point in time (an empty volume only); None: initdb."""

    def __post_init__(self) -> None:
        seconds = archive_timeout_seconds(self.archive_timeout)
        if seconds is None or not MIN_ARCHIVE_TIMEOUT_SECONDS <= seconds <= MAX_ARCHIVE_TIMEOUT_SECONDS:
            fail(
                self,
                "archive_timeout",
                self.archive_timeout,
                "a PostgreSQL duration from 30s to 24h: a whole number and s, min or h",
                examples=("5min", "60s", "1h"),
                why="below 30s each forced switch archives a whole 16 MiB segment",
            )
        check_cron(self, "schedule", self.schedule)
        check_range(self, "keep", self.keep, 1, MAX_KEEP)
        if self.restore is not None and self.restore.remote == self.s3.remote:
            fail(
                self.restore,
                "remote",
                self.restore.remote,
                f"another bucket/prefix than the archive's own ({self.s3.remote})",
                why="the restored primary archives a new timeline, which must not mix into the archive it came from",
            )

    @property
    def target(self) -> str:
        """WAL_TARGET of the pods and the base-backup job."""
        return self.s3.target


def wal_labels(name: str) -> dict[str, str]:
    """The base-backup pods' labels: not the database's (no database selector matches them) nor the dump job's
    (its NetworkPolicy selects those)."""
    return {"app.kubernetes.io/name": "postgresql-wal-backup", "app.kubernetes.io/instance": name}
