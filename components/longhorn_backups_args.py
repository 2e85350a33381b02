"""LonghornRecurringJobsArgs: the contract of LonghornRecurringJobs (components/longhorn_backups.py)."""

from __future__ import annotations

from dataclasses import dataclass

from components.validation import check_cron, check_name, check_range, fail

# Longhorn refuses a RecurringJob whose spec.name is longer (longhorn-manager v1.10.1 datastore/longhorn.go:42
# NameMaximumLength = 40, checked by ValidateRecurringJob at :5577 from the RecurringJob webhook). The name is
# also the CronJob's, which Kubernetes caps at 52 (batch validation ValidateCronJobCreate): 40 covers both.
RECURRING_JOB_NAME_MAX = 40


@dataclass(frozen=True)
class Schedule:
    cron: str
    """Five-field cron expression or macro, as Kubernetes and Longhorn parse it (components/cron.py)."""
    retain: int
    """Snapshots or backups Longhorn keeps per volume, 1 to 100."""

    def __post_init__(self) -> None:
        check_cron(self, "cron", self.cron)
        check_range(self, "retain", self.retain, 1, 100)


@dataclass(frozen=True)
class LonghornRecurringJobsArgs:
    namespace: str
    """Longhorn's namespace; RecurringJobs live there, shared by every stack on the cluster."""
    group: str
    """The stack's job group (named after its StorageClass, so unique per stack on a cluster)."""
    snapshot: Schedule | None = None
    """Crash-consistent snapshots, kept on the volumes' replicas."""
    backup: Schedule | None = None
    """Off-cluster backups to the cluster's default BackupTarget."""

    def __post_init__(self) -> None:
        check_name(self, "namespace", self.namespace)
        # <group>-<task> names a RecurringJob (spec.name too) and the CronJob Longhorn runs for it.
        check_name(self, "group", self.group, "subdomain", max_len=RECURRING_JOB_NAME_MAX - len("-snapshot"))
        if self.snapshot is None and self.backup is None:
            fail(self, "snapshot", None, "a Schedule in snapshot or backup (or both): a job group with no job")
