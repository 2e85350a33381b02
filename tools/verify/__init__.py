"""Verify a deployed stack: the seeds' persistence experiment, then what backups exist.

    python -m tools.verify dev [--context CTX] [--timeout SECONDS]       (or bin/verify dev)

Against the live cluster of a stack, in order, each step printed with its duration:

1. write a row through the read-write Service: psql over TCP to ``<name>.<ns>.svc.cluster.local``,
   run inside the primary pod with a passfile the pod builds from its mounted Secret (the password
   never leaves the pod: it is not on the exec command line, not in this program, not in its output);
2. delete the primary pod and wait until a new pod (another uid) is back and Ready;
3. scale the StatefulSets to zero, wait until their pods are gone, restore the replica counts they
   had (always, in a ``finally``), and wait until every pod is Ready;
4. read the row on every pod that should hold it (standbys may lag: polled);
5. the newest completed Longhorn backup of each database volume and the logical-dump CronJob's last
   success, with their ages. Neither configured is "not configured", not a failure. Then the primary's
   newest archived WAL segment and its age (pg_stat_archiver), flagged past 3 x archiveTimeout.

A preflight first checks that the StatefulSets have the replica counts the stack says and that every
pod is Ready: the experiment means nothing on a stack that is already broken.

The steps reach the cluster only through ``Cluster`` (a Protocol): ``KubernetesCluster`` implements
it over the official kubernetes client, the tests implement it with a simulated cluster. Waits poll
with an injectable clock and sleep, so the tests run the whole experiment in milliseconds.

The verification leaves one row per run in table ``pgstack_verify`` of the ``postgres`` database.

    cluster.py  the Cluster protocol, its records, and the stack's Target
    steps.py    the steps and the psql commands they run in the pod
    live.py     KubernetesCluster: the protocol over the official kubernetes client
    wal.py      the archived WAL's age (pg_stat_archiver on the primary)
    run.py      verify() (the steps in order) and main() (bin/verify)
"""

from tools.verify.cluster import (
    CONTAINER,
    DATABASE,
    FIELD_MANAGER,
    LONGHORN_BACKUP_VOLUME_LABEL,
    LONGHORN_DRIVER,
    PASSWORD_FILE,
    STEPS,
    TABLE,
    Cluster,
    CronJobStatus,
    Endpoint,
    ExecResult,
    LonghornBackup,
    PodState,
    Target,
    settings_from_config,
    target_of,
)
from tools.verify.live import KubernetesCluster
from tools.verify.run import main, verify
from tools.verify.steps import (
    SERVICE_PSQL_SCRIPT,
    StepError,
    Timing,
    age,
    new_row_id,
    preflight,
    psql_local_command,
    psql_service_command,
    read_row_everywhere,
    read_sql,
    report_backups,
    restart_primary,
    scale_to_zero_and_back,
    wait_until,
    write_row,
    write_sql,
)

__all__ = [
    "CONTAINER",
    "DATABASE",
    "FIELD_MANAGER",
    "LONGHORN_BACKUP_VOLUME_LABEL",
    "LONGHORN_DRIVER",
    "PASSWORD_FILE",
    "SERVICE_PSQL_SCRIPT",
    "STEPS",
    "TABLE",
    "Cluster",
    "CronJobStatus",
    "Endpoint",
    "ExecResult",
    "KubernetesCluster",
    "LonghornBackup",
    "PodState",
    "StepError",
    "Target",
    "Timing",
    "age",
    "main",
    "new_row_id",
    "preflight",
    "psql_local_command",
    "psql_service_command",
    "read_row_everywhere",
    "read_sql",
    "report_backups",
    "restart_primary",
    "scale_to_zero_and_back",
    "settings_from_config",
    "target_of",
    "verify",
    "wait_until",
    "write_row",
    "write_sql",
]
