"""WalBaseBackup: the CronJob that takes base backups of the primary into the WAL archive (issue 20).

``components/scripts/wal-basebackup.sh`` runs pg_basebackup over the replication protocol from the read-write
Service, uploads the backup to WAL_TARGET/base/<stamp>/ and then prunes the base backups beyond the newest
``keep`` and the WAL none of the kept ones needs. The job runs the database's own image (pg_basebackup of the
server's major) with rclone copied in by an init container, as the database pods do for archive_command.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.outputs import dependencies_of
from components.pod_security import checkov_skips
from components.postgres_names import CONTAINER_PORT, wal_job
from components.postgres_network import dns_egress, s3_egress
from components.wal_archive_args import wal_labels
from components.wal_backup_args import WalBaseBackupArgs
from components.wal_backup_pod import wal_cron_job_spec


class WalBaseBackup(pulumi.ComponentResource):
    """The job's ServiceAccount (no token), the CronJob and the job pods' NetworkPolicy."""

    cron_job_name: pulumi.Output[str]

    def __init__(self, name: str, args: WalBaseBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:WalBaseBackup", name, None, opts)
        labels, job = wal_labels(args.name), wal_job(args.name)
        meta = k8s.meta.v1.ObjectMetaArgs(name=job, namespace=args.namespace, labels=labels)
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=meta, automount_service_account_token=False, opts=pulumi.ResourceOptions(parent=self)
        )
        # Known names (the ServiceAccount's, the database's Secrets and ConfigMap) plus depends_on: the spec never
        # property-depends on an object that can be deleted before it is replaced.
        self.cron_job = k8s.batch.v1.CronJob(
            f"{name}-cron",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=job, namespace=args.namespace, labels=labels, annotations=checkov_skips(args.image, args.image_pull_policy)
            ),
            spec=wal_cron_job_spec(args, labels, job),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service_account, *dependencies_of(opts)]),
        )
        self.network_policy = self._network_policy(name, args, labels) if args.network_policy else None
        self.cron_job_name = pulumi.Output.from_input(job)
        self.register_outputs({"cron_job_name": self.cron_job_name})

    def _network_policy(self, name: str, args: WalBaseBackupArgs, labels: dict[str, str]) -> k8s.networking.v1.NetworkPolicy:
        """No ingress; egress to DNS, the database pods' port and the S3 endpoint's port."""
        database = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.database_pods))
        egress = [
            dns_egress(args.dns),
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[database], ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=CONTAINER_PORT, protocol="TCP")]
            ),
            *s3_egress(args.wal.s3.endpoint_port),
        ]
        return k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=wal_job(args.name), namespace=args.namespace, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels), policy_types=["Ingress", "Egress"], egress=egress
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
