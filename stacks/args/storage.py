"""Longhorn's install, the database StorageClass and the Longhorn recurring jobs, from the settings.

Pure: no resource is created here (stacks/args/__init__.py).
"""

from __future__ import annotations

import pulumi

from components.longhorn_backups_args import LonghornRecurringJobsArgs, Schedule
from components.longhorn_install_args import Adoptable, LonghornInstallArgs
from components.longhorn_storage_class_args import LonghornStorageClassArgs
from stacks.config.runbooks import BACKUP_TARGET_SECRET, LONGHORN_RELEASE
from stacks.config.schema import LonghornJob, Settings


def backup_group(settings: Settings) -> str | None:
    """The stack's Longhorn recurring-job group (named after its StorageClass), when it has jobs."""
    if settings.backup.snapshots is None and settings.backup.volumeBackups is None:
        return None
    return settings.storage.className


def longhorn_adoptions(settings: Settings) -> frozenset[Adoptable]:
    """The adopt entries (stacks/config/schema.py adoptable) that name a part of the Longhorn install."""
    ns = settings.longhorn.namespace
    entries: dict[str, Adoptable] = {
        f"namespace/{ns}": "namespace",
        f"release/{ns}/{LONGHORN_RELEASE}": "release",
        f"secret/{ns}/{BACKUP_TARGET_SECRET}": "backup_secret",
    }
    return frozenset(entries[e] for e in settings.adopt if e in entries)


def longhorn_install_args(
    settings: Settings,
    backup_target: pulumi.Input[str] | None = None,
    backup_credentials: pulumi.Output[dict[str, str]] | None = None,
) -> LonghornInstallArgs:
    """The Longhorn install; the backup target (secret config) comes wrapped as a secret Output."""
    lh = settings.longhorn
    return LonghornInstallArgs(
        chart_version=lh.chartVersion,
        namespace=lh.namespace,
        default_replica_count=lh.defaultReplicaCount,
        default_data_locality=lh.defaultDataLocality,
        node_down_pod_deletion_policy=lh.nodeDownPodDeletionPolicy,
        delete_all_volumes_on_uninstall=lh.deleteAllVolumesOnUninstall,
        uninstall_confirmation=lh.uninstallConfirmation,
        adopt=longhorn_adoptions(settings),
        protect=settings.protect,
        backup_target=backup_target,
        backup_credentials=backup_credentials,
    )


def storage_class_args(settings: Settings) -> LonghornStorageClassArgs:
    st = settings.storage
    return LonghornStorageClassArgs(
        name=st.className,
        replicas=st.numberOfReplicas,
        data_locality=st.dataLocality,
        reclaim_policy=st.reclaimPolicy,
        protect=settings.protect,
    )


def schedule_of(job: LonghornJob | None) -> Schedule | None:
    return Schedule(job.schedule, job.retain) if job else None


def recurring_jobs_args(settings: Settings, group: str, snapshot: Schedule | None, backup: Schedule | None) -> LonghornRecurringJobsArgs:
    return LonghornRecurringJobsArgs(namespace=settings.longhorn.namespace, group=group, snapshot=snapshot, backup=backup)
