"""WAL archiving and the base-backup job, from the settings (issue 20).

Pure: no resource is created here (stacks/args/__init__.py).
"""

from __future__ import annotations

import pulumi

from components.logical_backup_args import s3_endpoint_port
from components.naming import service_dns
from components.pod_env_contract import WAL_REMOTE
from components.postgres_names import credentials_secret, scripts_config_map, wal_s3_secret
from components.wal_archive_args import WalArchiveArgs, WalRestore, WalS3
from components.wal_backup_args import WalBaseBackupArgs
from components.wal_pod import RCLONE_CONF_KEY, rclone_conf
from stacks.args.cnpg import dump_ca_secret
from stacks.args.network import dns_egress_of
from stacks.config.cnpg import CNPG
from stacks.config.errors import ConfigError
from stacks.config.schema import Settings
from stacks.config.secrets import DumpS3Secret


def wal_rclone_conf(cred: DumpS3Secret) -> dict[str, str]:
    """The Secret <name>-wal-s3's data: rclone.conf with the S3 account of pgstack:dumpS3 as remote WAL."""
    values = {"type": "s3", "provider": cred.provider, "access_key_id": cred.accessKeyId, "secret_access_key": cred.secretAccessKey}
    values |= {k: v for k, v in (("endpoint", cred.endpoint), ("region", cred.region)) if v}
    # One line per key: a line break in a value would add lines of its own to the file.
    if any("\n" in v or "\r" in v for v in values.values()):
        raise ConfigError("invalid configuration:\n  pgstack:dumpS3: invalid (value hidden: secret); expected values without line breaks")
    return {RCLONE_CONF_KEY: rclone_conf(WAL_REMOTE, values)}


def wal_args(settings: Settings, s3: DumpS3Secret | None) -> WalArchiveArgs | None:
    """Archiving of a StatefulSet-engine stack with backup.wal set and its S3 account given; None: off."""
    wal = settings.backup.wal
    if wal is None or wal.s3Remote is None or s3 is None or settings.postgres.engine == CNPG:
        return None
    return WalArchiveArgs(
        s3=WalS3(
            remote=wal.s3Remote,
            credentials=pulumi.Output.secret(wal_rclone_conf(s3)),
            endpoint_port=s3_endpoint_port(s3.endpoint),
        ),
        archive_timeout=wal.archiveTimeout,
        schedule=wal.baseBackup.schedule,
        keep=wal.baseBackup.keep,
        restore=WalRestore(wal.restoreFrom.s3Remote, wal.restoreFrom.point) if wal.restoreFrom is not None else None,
    )


def wal_backup_args(settings: Settings, wal: WalArchiveArgs, database_pods: dict[str, str]) -> WalBaseBackupArgs:
    """The base-backup CronJob of a stack that archives: the primary's read-write Service, over TLS when on."""
    pg = settings.postgres
    return WalBaseBackupArgs(
        name=pg.name,
        namespace=settings.namespace,
        image=pg.image.reference,
        image_pull_policy=pg.image.pullPolicy,
        wal=wal,
        # Known names (plus depends_on db), as the dump job's (stacks/args/backups.py).
        scripts_config_map=scripts_config_map(pg.name),
        credentials_secret=credentials_secret(pg.name),
        s3_secret=wal_s3_secret(pg.name),
        primary_host=service_dns(pg.name, settings.namespace),
        replication_user=pg.replication.user,
        database_pods=database_pods,
        network_policy=pg.networkPolicy.enabled,
        dns=dns_egress_of(settings),
        tls_secret=dump_ca_secret(settings),
    )
