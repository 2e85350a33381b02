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

import pulumi
import pulumi_kubernetes as k8s

from components.logical_backup_args import LogicalBackupArgs
from components.logical_backup_args import backup_labels as backup_labels  # re-exported (defined beside the Args)
from components.logical_backup_pod import cron_job_spec
from components.outputs import dependencies_of
from components.pod_security import checkov_skips
from components.postgres_names import CONTAINER_PORT, backup_job, dumps_claim, dumps_s3_secret
from components.postgres_network import dns_egress
from components.provider_annotations import PATCH_FORCE, SKIP_AWAIT


class LogicalBackup(pulumi.ComponentResource):
    """The dumps volume, the CronJob and the dump pods' NetworkPolicy."""

    cron_job_name: pulumi.Output[str]

    def __init__(self, name: str, args: LogicalBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:LogicalBackup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = backup_labels(args.name)
        claim_name, s3_secret_name = dumps_claim(args.name), dumps_s3_secret(args.name)
        # Like the data claims: applied (adopted if it exists), grown in place, never deleted by Pulumi.
        self.claim = k8s.core.v1.PersistentVolumeClaimPatch(
            f"{name}-claim",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=claim_name,
                namespace=args.namespace,
                labels=labels | args.claim_labels,
                # Not awaited: the provider's claim wait is a hard-coded 5 minutes (components/postgres_workload.py).
                annotations={PATCH_FORCE: "true", SKIP_AWAIT: "true"},
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
                metadata=k8s.meta.v1.ObjectMetaArgs(name=s3_secret_name, namespace=args.namespace, labels=labels),
                type="Opaque",
                string_data=s3_credentials,
                opts=child,
            )
        else:
            self.s3_secret = None
        # A known name plus depends_on, not the Secret's output: the CronJob's spec never property-depends
        # on an object that can be deleted before it is replaced (tools/changes.py).
        s3_secret = s3_secret_name if self.s3_secret is not None else None
        self.cron_job = k8s.batch.v1.CronJob(
            f"{name}-cron",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=backup_job(args.name),
                namespace=args.namespace,
                labels=labels,
                annotations=checkov_skips(args.image, args.image_pull_policy),
            ),
            spec=cron_job_spec(args, labels, claim_name, s3_secret),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.claim, *([self.s3_secret] if self.s3_secret else [])]),
        )
        self.network_policy = self._network_policy(name, args, labels) if args.network_policy else None
        self.cron_job_name = pulumi.Output.from_input(backup_job(args.name))
        self.register_outputs({"cron_job_name": self.cron_job_name})

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
            metadata=k8s.meta.v1.ObjectMetaArgs(name=backup_job(args.name), namespace=args.namespace, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                policy_types=["Ingress", "Egress"],
                egress=egress,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
