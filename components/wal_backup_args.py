"""WalBaseBackupArgs: the contract of WalBaseBackup (components/wal_backup.py), field by field.

Checked at construction like every Args (components/validation.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.network_args import DnsEgress
from components.postgres_args import PullPolicy
from components.validation import check_literals, check_name, check_pg_identifier
from components.wal_archive_args import WalArchiveArgs


@dataclass(frozen=True)
class WalBaseBackupArgs:
    name: str
    """The database set's name; the CronJob, its ServiceAccount and NetworkPolicy are <name>-wal."""
    namespace: pulumi.Input[str]
    """The database's namespace (a DNS-1123 label)."""
    image: str
    """The database's own image, so pg_basebackup is always the server's major."""
    image_pull_policy: PullPolicy
    """As the database pods'."""
    wal: WalArchiveArgs
    """The archive (target, schedule, keep) the database pods archive to."""
    scripts_config_map: pulumi.Input[str]
    """The database's scripts ConfigMap (wal-basebackup.sh and its library)."""
    credentials_secret: pulumi.Input[str]
    """The database's credentials Secret: only its replication-password is mounted."""
    s3_secret: pulumi.Input[str]
    """The WAL archive's S3 Secret (<name>-wal-s3), rclone's remote WAL through secretKeyRef."""
    primary_host: pulumi.Input[str]
    """The read-write Service's name: pg_basebackup copies the primary."""
    replication_user: str
    """The role pg_basebackup connects as (the replication role)."""
    database_pods: dict[str, str]
    """Labels of the database pods (egress to them only, on 5432)."""
    network_policy: bool = True
    """Create the job's NetworkPolicy (no ingress; egress to DNS, the database pods and the S3 endpoint)."""
    dns: DnsEgress = field(default_factory=DnsEgress)
    """Where the job may send DNS queries."""
    tls_secret: str | None = None
    """The database's TLS Secret: its ca.crt alone is mounted and pg_basebackup verifies the server (verify-full)."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_name(self, "name", self.name, "dns1035")
        check_name(self, "namespace", self.namespace)
        check_pg_identifier(self, "replication_user", self.replication_user)
        if self.tls_secret is not None:
            check_name(self, "tls_secret", self.tls_secret, "subdomain")
