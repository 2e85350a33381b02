"""The base-backup job's pod, built by pure functions: wal-basebackup.sh in the database image with WAL_ENV,
rclone copied in, only the replication password and the CA mounted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi_kubernetes as k8s

from components.logical_backup_pod import ca_volume, job_resources, one_at_a_time
from components.pod_env_contract import WAL_ENV
from components.pod_security import container_security, pod_security_context
from components.postgres_conf import TLS_MOUNT
from components.postgres_names import CONTAINER_PORT
from components.postgres_pod import SCRIPTS_MOUNT, SECRETS_MOUNT, env_vars
from components.wal_pod import RCLONE_PATH, rclone_copy_container, rclone_mount, rclone_volume, wal_s3_env, wal_s3_mount, wal_s3_volume

if TYPE_CHECKING:
    from components.wal_backup_args import WalBaseBackupArgs

# The compressed base backup waits in TMPDIR until it is uploaded (wal-basebackup.sh): a disk-backed emptyDir
# whose limit bounds the database size one run can back up (unverified sizing: about the data's compressed size).
TMP_LIMIT = "20Gi"


def wal_job_env(args: WalBaseBackupArgs) -> list[k8s.core.v1.EnvVarArgs]:
    """WAL_ENV (components/pod_env_contract.py) as the job sets it, then RCLONE_CONFIG: the mounted config file."""
    values = {
        "WAL_TARGET": args.wal.target,
        "PRIMARY_HOST": args.primary_host,
        "PGPORT": str(CONTAINER_PORT),
        "REPLICATION_USER": args.replication_user,
        "SECRETS_DIR": SECRETS_MOUNT,
        "WAL_KEEP_BACKUPS": str(args.wal.keep),
        # wal-pitr.sh's; the job never restores (the contract requires a path).
        "PGDATA": "/tmp/pgdata",
        "WAL_RCLONE": RCLONE_PATH,
        "TMPDIR": "/tmp",
        # With TLS pg_basebackup verifies the read-write Service's name (a SAN of the server certificate) against
        # the stack's CA, as the dump job does (components/logical_backup_pod.py dump_env).
        "PGSSLMODE": "prefer" if args.tls_secret is None else "verify-full",
        "PGSSLROOTCERT": "" if args.tls_secret is None else f"{TLS_MOUNT}/ca.crt",
    }
    return [*env_vars(WAL_ENV, values), *wal_s3_env()]


def wal_job_pod_spec(args: WalBaseBackupArgs, service_account: str) -> k8s.core.v1.PodSpecArgs:
    """rclone's copy, then wal-basebackup.sh; no token, the restricted context."""
    mounts = [
        k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_MOUNT, read_only=True),
        k8s.core.v1.VolumeMountArgs(name="secrets", mount_path=SECRETS_MOUNT, read_only=True),
        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        rclone_mount(),
        wal_s3_mount(),
        *([k8s.core.v1.VolumeMountArgs(name="tls", mount_path=TLS_MOUNT, read_only=True)] if args.tls_secret else []),
    ]
    # Only the replication password (items): the job never sees the superuser's or the application's.
    replication_only = [k8s.core.v1.KeyToPathArgs(key="replication-password", path="replication-password")]
    secrets = k8s.core.v1.SecretVolumeSourceArgs(secret_name=args.credentials_secret, items=replication_only, default_mode=0o440)
    return k8s.core.v1.PodSpecArgs(
        restart_policy="Never",
        service_account_name=service_account,
        automount_service_account_token=False,
        enable_service_links=False,
        security_context=pod_security_context(),
        init_containers=[rclone_copy_container()],
        containers=[
            k8s.core.v1.ContainerArgs(
                name="basebackup",
                image=args.image,
                image_pull_policy=args.image_pull_policy,
                command=[f"{SCRIPTS_MOUNT}/wal-basebackup.sh"],
                env=wal_job_env(args),
                security_context=container_security(),
                resources=job_resources(),
                volume_mounts=mounts,
            )
        ],
        volumes=[
            k8s.core.v1.VolumeArgs(
                name="scripts", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=args.scripts_config_map, default_mode=0o555)
            ),
            k8s.core.v1.VolumeArgs(name="secrets", secret=secrets),
            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=TMP_LIMIT)),
            rclone_volume(),
            wal_s3_volume(args.s3_secret),
            *([ca_volume(args.tls_secret)] if args.tls_secret else []),
        ],
    )


def wal_cron_job_spec(args: WalBaseBackupArgs, labels: dict[str, str], service_account: str) -> k8s.batch.v1.CronJobSpecArgs:
    # Never two base backups at once: retention of one run must not prune under another's upload; a failed run
    # prunes nothing (wal-basebackup.sh).
    return one_at_a_time(args.wal.schedule, labels, 12 * 3600, wal_job_pod_spec(args, service_account))
