"""LogicalBackupArgs: the contract of LogicalBackup (components/logical_backup.py), field by field.

Checked at construction like every Args (components/validation.py): a wrong value raises one
ValueError naming the field, the value and the accepted form, before any resource is registered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pulumi

from components.network_args import DnsEgress
from components.postgres_args import MIN_STORAGE, PullPolicy
from components.validation import check_cron, check_literals, check_name, check_quantity, check_range, fail

# What the dump script hands rclone as <remote>:<bucket/prefix>: no scheme, no leading slash.
S3_REMOTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


@dataclass(frozen=True)
class DumpS3:
    """Copy every complete dump to S3-compatible storage; retention there is the bucket's lifecycle rule."""

    remote: str
    """bucket/prefix."""
    credentials: pulumi.Output[dict[str, str]]
    """provider, access_key_id, secret_access_key and optionally endpoint and region (secret)."""
    endpoint_port: int = 443
    """The endpoint's TCP port, opened in the dump pods' egress (s3_endpoint_port reads it from the URL)."""

    def __post_init__(self) -> None:
        if not S3_REMOTE.fullmatch(self.remote):
            accepted = "an rclone bucket/prefix without a scheme: letters, digits, '.', '_', '/' and '-', starting with a letter or digit"
            fail(self, "remote", self.remote, accepted, examples=("backups/orders-db", "my-bucket"))
        check_range(self, "endpoint_port", self.endpoint_port, 1, 65535)


@dataclass(frozen=True)
class LogicalBackupArgs:
    name: str
    """The database set's name; the CronJob is <name>-backup, the volume <name>-dumps."""
    namespace: pulumi.Input[str]
    """The database's namespace (a DNS-1123 label)."""
    image: str
    """The database's own image, so pg_dump is always the server's major."""
    image_pull_policy: PullPolicy
    """As the database pods'."""
    scripts_config_map: pulumi.Input[str]
    """The database's scripts ConfigMap (backup.sh, restore.sh)."""
    credentials_secret: pulumi.Input[str]
    """The database's credentials Secret; the dump connects as the superuser."""
    hosts: list[pulumi.Input[str]]
    """Where to dump from, in order: the read-only Service, then the read-write one. Not empty."""
    port: int
    """The client Services' port, 1 to 65535."""
    database_pods: dict[str, str]
    """Labels of the database pods (egress to them only)."""
    storage_class: str
    """StorageClass of the dumps volume (a DNS-1123 subdomain)."""
    schedule: str = "30 2 * * *"
    """Five-field cron schedule (or a macro such as @daily)."""
    keep: int = 7
    """Complete dumps kept by count, >= 0 (0: no count rule)."""
    keep_days: int = 0
    """Complete dumps kept by age in days, >= 0 (0: no age rule); not both 0."""
    storage_size: str = "5Gi"
    """The dumps volume, a quantity in whole bytes; grows in place."""
    claim_labels: dict[str, str] = field(default_factory=dict)
    """Extra labels on the dumps claim (Longhorn recurring-job groups)."""
    s3: DumpS3 | None = None
    """Also copy every dump to S3-compatible storage."""
    network_policy: bool = True
    """Create the dump pods' NetworkPolicy (no ingress; egress to DNS, the database and S3)."""
    dns: DnsEgress = field(default_factory=DnsEgress)
    """Where the dump pods may send DNS queries."""
    tls_secret: str | None = None
    """The database's TLS Secret: its ca.crt alone is mounted, and the dump connects with sslmode=verify-full
    (the hosts are among the server certificate's names); None: TLS off (sslmode=prefer)."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_name(self, "name", self.name, "dns1035")
        check_name(self, "namespace", self.namespace)
        check_name(self, "storage_class", self.storage_class, "subdomain")
        check_range(self, "port", self.port, 1, 65535)
        if self.tls_secret is not None:
            check_name(self, "tls_secret", self.tls_secret, "subdomain")
        check_cron(self, "schedule", self.schedule)
        check_quantity(self, "storage_size", self.storage_size, whole=True, minimum=MIN_STORAGE)
        check_range(self, "keep", self.keep, 0)
        check_range(self, "keep_days", self.keep_days, 0)
        if self.keep == self.keep_days == 0:
            fail(
                self,
                "keep",
                self.keep,
                "at least 1 in keep or keep_days",
                examples=(7, 14),
                why="with neither, dumps would fill their volume",
                refs=("keep", "keep_days"),
            )
        if not self.hosts:
            fail(self, "hosts", self.hosts, "at least one host")


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
