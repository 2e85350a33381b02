"""The dump job's pod, built by pure functions: the dump container, the S3 upload and the volumes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from components.pod_env_contract import DUMP_ENV
from components.pod_security import container_security, pod_security_context
from components.postgres_conf import TLS_MOUNT
from components.postgres_pod import SCRIPTS_MOUNT, SECRETS_MOUNT, env_vars
from components.wal_pod import RCLONE_IMAGE

if TYPE_CHECKING:
    from components.logical_backup_args import DumpS3, LogicalBackupArgs

BACKUP_MOUNT = "/backups"
RCLONE_REMOTE = "DUMPS"
# Keys of the S3 Secret, each becoming RCLONE_CONFIG_DUMPS_<KEY> (rclone's env config).
S3_KEYS = ("provider", "access_key_id", "secret_access_key", "endpoint", "region")


def cron_job_spec(
    args: LogicalBackupArgs, labels: dict[str, str], claim_name: str, s3_secret: pulumi.Input[str] | None
) -> k8s.batch.v1.CronJobSpecArgs:
    # Never two dumps at once (backup.sh also takes a lock on the volume); a failed dump fails the Job.
    return one_at_a_time(args.schedule, labels, 6 * 3600, dump_pod_spec(args, claim_name, s3_secret))


def one_at_a_time(
    schedule: str, labels: dict[str, str], deadline_seconds: int, pod: k8s.core.v1.PodSpecArgs
) -> k8s.batch.v1.CronJobSpecArgs:
    """A backup CronJob: never two runs at once (Forbid), a missed start kept for an hour, one retry for a blip
    before the next schedule tries again, and a run stopped after deadline_seconds."""
    return k8s.batch.v1.CronJobSpecArgs(
        schedule=schedule,
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        job_template=k8s.batch.v1.JobTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=1,
                active_deadline_seconds=deadline_seconds,
                template=k8s.core.v1.PodTemplateSpecArgs(metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels), spec=pod),
            ),
        ),
    )


def job_resources() -> k8s.core.v1.ResourceRequirementsArgs:
    """A backup job's main container (the dump, the base backup): a client of the server, a core at most."""
    return k8s.core.v1.ResourceRequirementsArgs(requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "1Gi"})


def dump_env(args: LogicalBackupArgs) -> list[k8s.core.v1.EnvVarArgs]:
    hosts = pulumi.Output.all(*args.hosts).apply(lambda hs: " ".join(hs))
    plain = {
        "BACKUP_DIR": BACKUP_MOUNT,
        "PGPORT": str(args.port),
        "SECRETS_DIR": SECRETS_MOUNT,
        "BACKUP_KEEP": str(args.keep),
        "BACKUP_KEEP_DAYS": str(args.keep_days),
        "TMPDIR": "/tmp",
        # With TLS the dump verifies the server against the stack's CA and its name (the Services' names are
        # among the certificate's SANs: components/postgres_tls_args.py server_names).
        "PGSSLMODE": "prefer" if args.tls_secret is None else "verify-full",
        "PGSSLROOTCERT": "" if args.tls_secret is None else f"{TLS_MOUNT}/ca.crt",
    }
    # restore.sh restores into PGHOST: the read-write Service (docs/backups.md#restore-dump-same-stack).
    return env_vars(DUMP_ENV, {"BACKUP_HOSTS": hosts, "PGHOST": args.hosts[-1], **plain})


def dump_pod_spec(args: LogicalBackupArgs, claim_name: str, s3_secret: pulumi.Input[str] | None) -> k8s.core.v1.PodSpecArgs:
    """The dump container (an init container when an upload follows), its volumes and security."""
    mounts = [
        k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_MOUNT, read_only=True),
        k8s.core.v1.VolumeMountArgs(name="secrets", mount_path=SECRETS_MOUNT, read_only=True),
        k8s.core.v1.VolumeMountArgs(name="dumps", mount_path=BACKUP_MOUNT),
        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
    ]
    if args.tls_secret is not None:
        mounts.append(k8s.core.v1.VolumeMountArgs(name="tls", mount_path=TLS_MOUNT, read_only=True))
    dump = k8s.core.v1.ContainerArgs(
        name="dump",
        image=args.image,
        image_pull_policy=args.image_pull_policy,
        command=[f"{SCRIPTS_MOUNT}/backup.sh"],
        env=dump_env(args),
        security_context=container_security(),
        resources=job_resources(),
        volume_mounts=mounts,
    )
    init_containers, containers = [], [dump]
    if args.s3 is not None and s3_secret is not None:
        # The upload runs only after the dump succeeded: the dump is an init container.
        init_containers, containers = [dump], [uploader(args.s3, s3_secret)]
    return k8s.core.v1.PodSpecArgs(
        restart_policy="Never",
        automount_service_account_token=False,
        enable_service_links=False,
        security_context=pod_security_context(),
        init_containers=init_containers or None,
        containers=containers,
        volumes=[
            k8s.core.v1.VolumeArgs(
                name="scripts", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=args.scripts_config_map, default_mode=0o555)
            ),
            k8s.core.v1.VolumeArgs(
                name="secrets", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=args.credentials_secret, default_mode=0o440)
            ),
            k8s.core.v1.VolumeArgs(
                name="dumps", persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim_name)
            ),
            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi")),
            *([] if args.tls_secret is None else [ca_volume(args.tls_secret)]),
        ],
    )


def ca_volume(tls_secret: str) -> k8s.core.v1.VolumeArgs:
    """Only the CA of the database's TLS Secret (items): the server's private key never reaches the job."""
    only_ca = [k8s.core.v1.KeyToPathArgs(key="ca.crt", path="ca.crt")]
    return k8s.core.v1.VolumeArgs(
        name="tls", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=tls_secret, items=only_ca, default_mode=0o440)
    )


def uploader(s3: DumpS3, secret_name: pulumi.Input[str]) -> k8s.core.v1.ContainerArgs:
    """rclone copies every complete dump to S3 after the dump succeeded."""
    env = [
        k8s.core.v1.EnvVarArgs(name=f"RCLONE_CONFIG_{RCLONE_REMOTE}_TYPE", value="s3"),
        k8s.core.v1.EnvVarArgs(name="RCLONE_CONFIG", value="/tmp/rclone.conf"),
        k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),
    ] + [
        k8s.core.v1.EnvVarArgs(
            name=f"RCLONE_CONFIG_{RCLONE_REMOTE}_{key.upper()}",
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret_name, key=key, optional=key in ("endpoint", "region"))
            ),
        )
        for key in S3_KEYS
    ]
    return k8s.core.v1.ContainerArgs(
        name="upload",
        image=RCLONE_IMAGE,
        image_pull_policy="IfNotPresent",
        # copy never deletes remotely: a lost or emptied dumps volume cannot wipe the bucket.
        command=["rclone", "copy", BACKUP_MOUNT, f"{RCLONE_REMOTE}:{s3.remote}", "--exclude", "*.partial/**", "--exclude", ".*"],
        env=env,
        security_context=container_security(),
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "256Mi"}
        ),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name="dumps", mount_path=BACKUP_MOUNT, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ],
    )
