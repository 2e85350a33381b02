"""LonghornRecurringJobsArgs: the contract of LonghornRecurringJobs (components/longhorn_backups.py)."""

from __future__ import annotations

from dataclasses import dataclass

from components.validation import check_cron, check_name, check_range, fail

# Longhorn refuses a RecurringJob whose spec.name is longer (longhorn-manager v1.10.1 datastore/longhorn.go:42
# NameMaximumLength = 40, checked by ValidateRecurringJob at :5577 from the RecurringJob webhook). The name is
# also the CronJob's, which Kubernetes caps at 52 (batch validation ValidateCronJobCreate): 40 covers both.
RECURRING_JOB_NAME_MAX = 40
# The tasks, each a RecurringJob named <group>-<task>.
RECURRING_JOB_TASKS = ("snapshot", "backup")
# Longhorn's PVC labels: the source label makes Longhorn sync the PVC's recurring-job labels
# to its volume (longhorn-manager, "PVC as recurring job label source", Longhorn >= 1.6).
SOURCE_LABEL = "recurring-job.longhorn.io/source"
GROUP_LABEL_PREFIX = "recurring-job-group.longhorn.io/"
GROUP_EXAMPLES = ("longhorn-postgres",)


def recurring_job_name(group: str, task: str) -> str:
    """A RecurringJob's name, ``<group>-snapshot`` or ``<group>-backup``: Longhorn labels what the job makes with it."""
    return f"{group}-{task}"


def recurring_job_labels(group: str) -> dict[str, str]:
    """PVC labels that put a volume into a job group."""
    return {SOURCE_LABEL: "enabled", f"{GROUP_LABEL_PREFIX}{group}": "enabled"}


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
        self._check_group()
        if self.snapshot is None and self.backup is None:
            fail(self, "snapshot", None, "a Schedule in snapshot or backup (or both): a job group with no job")

    def _check_group(self) -> None:
        """<group>-<task> names a RecurringJob (spec.name too) and the CronJob Longhorn runs for it; the
        longer of the two names counts, so turning the other task on later cannot fail."""
        if len(self.group) < 2:
            # Longhorn's ValidateRecurringJob checks each group with ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$
            # (longhorn-manager v1.10.1 datastore/longhorn.go:5581, util/util.go:285).
            why = "it is the Longhorn recurring-job group, and Longhorn refuses a one-character group"
            fail(self, "group", self.group, "a group name of at least 2 characters", examples=GROUP_EXAMPLES, why=why)
        job = max((f"{self.group}-{task}" for task in RECURRING_JOB_TASKS), key=len)
        if len(job) > RECURRING_JOB_NAME_MAX:
            fail(
                self,
                "group",
                self.group,
                f"a group name of at most {RECURRING_JOB_NAME_MAX - (len(job) - len(self.group))} characters",
                examples=GROUP_EXAMPLES,
                why=f"it names the Longhorn recurring job {job} ({len(job)} characters; the longer of the two, so turning "
                f"the other on later cannot fail), and Longhorn refuses a job name over {RECURRING_JOB_NAME_MAX} "
                "(longhorn-manager NameMaximumLength)",
            )
        check_name(self, "group", self.group, "subdomain")
