"""LogicalBackup: a CronJob that dumps every database to a volume of its own (and S3).

Why per-database ``pg_dump -Fc`` plus ``pg_dumpall --globals-only`` rather than one
``pg_dumpall``: the custom format is compressed, restores one database (or one table)
at a time, and restores in parallel (``pg_restore -j``); the globals file carries the
roles and tablespaces that per-database dumps lack. ``components/scripts/backup.sh``
writes, checks and prunes the dumps; ``restore.sh`` restores one.

The job runs the database's own image, so pg_dump is always the server's major. It
dumps from the read-only Service (a standby) when one answers, else the primary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from components.naming import dependencies_of, name_of
from components.postgres_statefulset import (
    CONTAINER_PORT,
    PATCH_FORCE,
    SCRIPTS_MOUNT,
    SECRETS_MOUNT,
    DnsEgress,
    checkov_skips,
    container_security,
    dns_egress,
    pod_security_context,
)

BACKUP_MOUNT = "/backups"
# rclone: a maintained, single static binary speaking S3 and every other object store, in a
# small official image. Pinned by digest as public projects pin it (unverified against the
# registry from this machine, which has no registry access).
RCLONE_IMAGE = "docker.io/rclone/rclone:1.75.0@sha256:b06aed988cf5967de7c25be5925240983981c757f4ed1ac9d2fa659d51d60548"
RCLONE_REMOTE = "DUMPS"
# Keys of the S3 Secret, each becoming RCLONE_CONFIG_DUMPS_<KEY> (rclone's env config).
S3_KEYS = ("provider", "access_key_id", "secret_access_key", "endpoint", "region")


@dataclass(frozen=True)
class DumpS3:
    """Copy every complete dump to S3-compatible storage; retention there is the bucket's lifecycle rule."""

    remote: str
    """bucket/prefix."""
    credentials: pulumi.Output[dict[str, str]]
    """provider, access_key_id, secret_access_key and optionally endpoint and region (secret)."""
    endpoint_port: int = 443


@dataclass(frozen=True)
class LogicalBackupArgs:
    name: str
    """The database set's name; the CronJob is <name>-backup, the volume <name>-dumps."""
    namespace: pulumi.Input[str]
    image: str
    image_pull_policy: str
    scripts_config_map: pulumi.Input[str]
    credentials_secret: pulumi.Input[str]
    hosts: list[pulumi.Input[str]]
    """Where to dump from, in order: the read-only Service, then the read-write one."""
    port: int
    database_pods: dict[str, str]
    """Labels of the database pods (egress to them only)."""
    storage_class: str
    schedule: str = "30 2 * * *"
    keep: int = 7
    keep_days: int = 0
    storage_size: str = "5Gi"
    claim_labels: dict[str, str] = field(default_factory=dict)
    s3: DumpS3 | None = None
    network_policy: bool = True
    dns: DnsEgress = field(default_factory=DnsEgress)

    def __post_init__(self) -> None:
        if self.keep < 0 or self.keep_days < 0 or self.keep == self.keep_days == 0:
            raise ValueError(f"LogicalBackupArgs: keep={self.keep}, keep_days={self.keep_days}; expected >= 0 and not both 0")
        if not self.hosts:
            raise ValueError("LogicalBackupArgs.hosts: at least one host")


def backup_labels(name: str) -> dict[str, str]:
    """The dump pods' labels: not the database's, so no database selector (Services, PDB,
    anti-affinity, peer discovery) ever matches them."""
    return {"app.kubernetes.io/name": "postgresql-backup", "app.kubernetes.io/instance": name}


def s3_endpoint_port(endpoint: str | None) -> int:
    """The TCP port the dump pod must reach for an S3 endpoint URL (443 by default)."""
    if not endpoint:
        return 443
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    return parts.port or (80 if parts.scheme == "http" else 443)


class LogicalBackup(pulumi.ComponentResource):
    """The dumps volume, the CronJob and the dump pods' NetworkPolicy."""

    cron_job_name: pulumi.Output[str]

    def __init__(self, name: str, args: LogicalBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:LogicalBackup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = backup_labels(args.name)
        claim_name = f"{args.name}-dumps"
        # Like the data claims: applied (adopted if it exists), grown in place, never deleted by Pulumi.
        self.claim = k8s.core.v1.PersistentVolumeClaimPatch(
            f"{name}-claim",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=claim_name, namespace=args.namespace, labels=labels | args.claim_labels, annotations={PATCH_FORCE: "true"}
            ),
            spec=k8s.core.v1.PersistentVolumeClaimSpecPatchArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=args.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsPatchArgs(requests={"storage": args.storage_size}),
            ),
            # The namespace, the storage class and the database this component waits for.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=dependencies_of(opts)),
        )
        if args.s3 is not None:
            s3_credentials: pulumi.Output[dict[str, str]] = pulumi.Output.secret(args.s3.credentials)
            self.s3_secret: k8s.core.v1.Secret | None = k8s.core.v1.Secret(
                f"{name}-s3",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{args.name}-dumps-s3", namespace=args.namespace, labels=labels),
                type="Opaque",
                string_data=s3_credentials,
                opts=child,
            )
        else:
            self.s3_secret = None
        self.cron_job = k8s.batch.v1.CronJob(
            f"{name}-cron",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{args.name}-backup",
                namespace=args.namespace,
                labels=labels,
                annotations=checkov_skips(args.image, args.image_pull_policy),
            ),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args.schedule,
                # Never two dumps at once (backup.sh also takes a lock on the volume).
                concurrency_policy="Forbid",
                starting_deadline_seconds=3600,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.batch.v1.JobSpecArgs(
                        # A failed dump fails the Job (one retry for a blip); the next schedule tries again.
                        backoff_limit=1,
                        active_deadline_seconds=6 * 3600,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                            spec=self._pod(args, claim_name),
                        ),
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.claim]),
        )
        self.network_policy = self._network_policy(name, args, labels) if args.network_policy else None
        self.cron_job_name = pulumi.Output.from_input(f"{args.name}-backup")
        self.register_outputs({"cron_job_name": self.cron_job_name})

    @staticmethod
    def _env(args: LogicalBackupArgs) -> list[k8s.core.v1.EnvVarArgs]:
        hosts = pulumi.Output.all(*args.hosts).apply(lambda hs: " ".join(hs))
        plain = {
            "BACKUP_DIR": BACKUP_MOUNT,
            "PGPORT": str(args.port),
            "SECRETS_DIR": SECRETS_MOUNT,
            "BACKUP_KEEP": str(args.keep),
            "BACKUP_KEEP_DAYS": str(args.keep_days),
            "TMPDIR": "/tmp",
        }
        return [
            k8s.core.v1.EnvVarArgs(
                name="POD_NAME",
                value_from=k8s.core.v1.EnvVarSourceArgs(field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="metadata.name")),
            ),
            k8s.core.v1.EnvVarArgs(name="BACKUP_HOSTS", value=hosts),
            # restore.sh restores into PGHOST: the read-write Service (README "Restore from a dump").
            k8s.core.v1.EnvVarArgs(name="PGHOST", value=args.hosts[-1]),
        ] + [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in plain.items()]

    def _pod(self, args: LogicalBackupArgs, claim_name: str) -> k8s.core.v1.PodSpecArgs:
        mounts = [
            k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_MOUNT, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="secrets", mount_path=SECRETS_MOUNT, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="dumps", mount_path=BACKUP_MOUNT),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ]
        dump = k8s.core.v1.ContainerArgs(
            name="dump",
            image=args.image,
            image_pull_policy=args.image_pull_policy,
            command=[f"{SCRIPTS_MOUNT}/backup.sh"],
            env=self._env(args),
            security_context=container_security(),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "1Gi"}
            ),
            volume_mounts=mounts,
        )
        init_containers, containers = [], [dump]
        if args.s3 is not None and self.s3_secret is not None:
            # The upload runs only after the dump succeeded: the dump is an init container.
            init_containers, containers = [dump], [self._uploader(args.s3, self.s3_secret)]
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
            ],
        )

    @staticmethod
    def _uploader(s3: DumpS3, secret: k8s.core.v1.Secret) -> k8s.core.v1.ContainerArgs:
        secret_name = name_of(secret)
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

    def _network_policy(self, name: str, args: LogicalBackupArgs, labels: dict[str, str]) -> k8s.networking.v1.NetworkPolicy:
        """No ingress; egress to DNS, the database pods' port, and (with S3) the endpoint's port."""
        egress = [
            dns_egress(args.dns),
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.database_pods))],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=CONTAINER_PORT, protocol="TCP")],
            ),
        ]
        if args.s3 is not None:
            # Object storage lives outside the cluster at addresses we cannot know: its port only.
            egress.append(
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=args.s3.endpoint_port, protocol="TCP")]
                )
            )
        return k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{args.name}-backup", namespace=args.namespace, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                policy_types=["Ingress", "Egress"],
                egress=egress,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
