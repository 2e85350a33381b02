"""LonghornRecurringJobs: snapshot and backup schedules for one stack's Longhorn volumes.

Longhorn runs a RecurringJob (longhorn.io/v1beta2, fields checked against the 1.10.1 CRD in
../shared/reference/longhorn-1.10.1/) for every volume in the job's group. A volume joins
the group through labels on its PVC (``recurring_job_labels``), which Longhorn syncs to the
volume, so existing volumes join in place. The StorageClass's recurringJobSelector would
only reach volumes created after it, and changing it replaces the class.

Snapshots and backups are crash-consistent: a restored volume holds the data as it was at
one instant, as after a power cut, and PostgreSQL runs crash recovery from its WAL on the
first start.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.longhorn_backups_args import LonghornRecurringJobsArgs, Schedule, recurring_job_name
from components.longhorn_backups_args import recurring_job_labels as recurring_job_labels  # re-exported (defined beside the Args)
from components.outputs import dependencies_of

RECURRING_JOB_API = "longhorn.io/v1beta2"


def recurring_job_spec(name: str, task: str, schedule: Schedule, group: str) -> dict[str, object]:
    return {
        "name": name,
        "task": task,
        "cron": schedule.cron,
        "retain": schedule.retain,
        # One volume at a time: a stack's volumes are few, and jobs compete with the database for I/O.
        "concurrency": 1,
        "groups": [group],
        "labels": {"app.kubernetes.io/managed-by": "pgstack"},
    }


class LonghornRecurringJobs(pulumi.ComponentResource):
    """A RecurringJob per task (``<group>-snapshot``, ``<group>-backup``) for the group's volumes."""

    def __init__(self, name: str, args: LonghornRecurringJobsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:LonghornRecurringJobs", name, None, opts)
        self.jobs: list[k8s.apiextensions.CustomResource] = []
        for task, schedule in (("snapshot", args.snapshot), ("backup", args.backup)):
            if schedule is None:
                continue
            job_name = recurring_job_name(args.group, task)
            self.jobs.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-{task}",
                    api_version=RECURRING_JOB_API,
                    kind="RecurringJob",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=job_name, namespace=args.namespace),
                    spec=recurring_job_spec(job_name, task, schedule, args.group),
                    # Longhorn's CRDs come with its chart: wait for what the component waits for.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=dependencies_of(opts)),
                )
            )
        self.register_outputs({})
