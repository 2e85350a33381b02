"""The backup.wal block: continuous WAL archiving and the base backups that make it restorable (issue 20).

The archive's rules (archiveTimeout's form and bounds, the schedule, keep) are the Args'
(components/wal_archive_args.py WalArchiveArgs), said under these keys by stacks/config/contract.py; here only
what the config alone knows: exactly one target, and why a volume target is refused.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from components.wal_archive_args import S3_REMOTE
from stacks.config.errors import FieldError, such_as
from stacks.config.formats import Model, Schedule


def _s3_remote(value: str) -> str:
    if not S3_REMOTE.fullmatch(value):
        raise ValueError(
            "an rclone bucket/prefix without a scheme: letters, digits, '.', '_', '/' and '-', starting with a letter or "
            f"digit, {such_as('backups/orders-db-wal', 'my-bucket')}"
        )
    return value


# Why a volume target is refused: the archive must be writable by every database pod (any of them may be the
# primary) and the base-backup job at once, so a ReadWriteMany claim; Longhorn serves those over NFS
# (share-manager), and kubelet applies no fsGroup to them (the CSIDriver's default fsGroupPolicy
# ReadWriteOnceWithFSType: longhorn/longhorn#3661, #3762, open), so the pods, which run as uid 999 without root,
# could not write a root-owned volume. Nothing here can check a cluster's RWX support either.
VOLUME_REFUSED = (
    "null: a volume target needs a ReadWriteMany claim every pod can write, and Longhorn's RWX volumes are "
    "root-owned (kubelet applies no fsGroup to them: longhorn/longhorn#3661); archive to S3 with s3Remote, "
    f"{such_as('backups/orders-db-wal')}"
)


class BaseBackupSettings(Model):
    """The base-backup CronJob (pg_basebackup of the primary, uploaded to the archive) and its retention."""

    schedule: Schedule = "@daily"
    """When the base backup runs: a five-field cron schedule or an @daily-style macro, as Kubernetes parses it."""
    keep: int = Field(7, ge=1, le=100)
    """Base backups kept, the newest, with every WAL file the oldest of them needs (a restore reaches back to it)."""


class RestoreFromSettings(Model):
    """Bootstrap a NEW stack from another stack's archive at a point in time (CloudNativePG's bootstrap.recovery):
    an empty primary volume is filled by wal-pitr.sh instead of initdb; a volume with data is never touched."""

    s3Remote: Annotated[str, AfterValidator(_s3_remote)]
    """The archive's bucket/prefix (another stack's backup.wal.s3Remote), read with pgstack:dumpS3's account."""
    time: str | None = None
    """Replay up to this time, such as "2026-12-06 17:00:00+00" (no zone: UTC); one of time, lsn and latest."""
    lsn: str | None = None
    """Replay up to this WAL position X/Y (upper-case hex), such as "0/3000148"."""
    latest: bool = False
    """Replay every archived WAL file."""

    @model_validator(mode="after")
    def _one_point(self) -> RestoreFromSettings:
        given = [k for k in ("time", "lsn") if getattr(self, k) is not None] + (["latest"] if self.latest else [])
        if len(given) != 1:
            raise FieldError(
                given[1] if len(given) > 1 else "time",
                getattr(self, given[1]) if len(given) > 1 else None,
                f"exactly one of time, lsn and latest, {such_as('2026-12-06 17:00:00+00')} for time",
            )
        return self

    @property
    def point(self) -> str:
        """PITR_TARGET: latest, the LSN or the time."""
        return "latest" if self.latest else str(self.time or self.lsn)


class WalSettings(Model):
    """Continuous WAL archiving (archive_command on the primary) and base backups: point-in-time recovery."""

    s3Remote: Annotated[str, AfterValidator(_s3_remote)] | None = None
    """Archive to this S3 bucket/prefix through rclone, credentials in pgstack:dumpS3 (secret): wal/ and base/ under it."""
    volume: Any = None
    """Refused (a volume every pod can write is a ReadWriteMany claim, which Longhorn serves root-owned): null."""
    archiveTimeout: str = "5min"
    """The recovery point objective: a segment is archived at the latest this long after it began (30s to 24h: 5min, 1h)."""
    baseBackup: BaseBackupSettings = BaseBackupSettings()
    restoreFrom: RestoreFromSettings | None = None
    """A new stack's empty primary is restored from this archive at a point in time instead of initdb; null: initdb."""

    @model_validator(mode="after")
    def _one_target(self) -> WalSettings:
        if self.volume is not None:
            raise FieldError("volume", self.volume, VOLUME_REFUSED)
        if self.s3Remote is None:
            raise FieldError("s3Remote", None, f"the archive's bucket/prefix, {such_as('backups/orders-db-wal')}")
        return self
