"""The logical dump job, from the settings.

Pure: no resource is created here (stacks/args/__init__.py).
"""

from __future__ import annotations

import pulumi

from components.logical_backup_args import DumpS3, LogicalBackupArgs
from components.longhorn_backups_args import recurring_job_labels
from components.postgres_names import credentials_secret, scripts_config_map
from stacks.args.cnpg import dump_ca_secret
from stacks.args.network import dns_egress_of
from stacks.args.storage import backup_group
from stacks.config.schema import Settings


def dump_args(
    settings: Settings,
    namespace: pulumi.Input[str],
    hosts: list[pulumi.Input[str]],
    database_pods: dict[str, str],
    s3: DumpS3 | None = None,
) -> LogicalBackupArgs:
    """The dump job of a stack with backup.dumps set; where it reads from comes from the database."""
    dumps, pg, group = settings.backup.dumps, settings.postgres, backup_group(settings)
    assert dumps is not None
    return LogicalBackupArgs(
        name=pg.name,
        namespace=namespace,
        image=pg.image.reference,
        image_pull_policy=pg.image.pullPolicy,
        # Known names (plus depends_on db): the CronJob's spec never property-depends on an object
        # that can be deleted before it is replaced (components/postgres_names.py).
        scripts_config_map=scripts_config_map(pg.name),
        credentials_secret=credentials_secret(pg.name),
        hosts=hosts,
        port=pg.service.port,
        database_pods=database_pods,
        storage_class=settings.storage_class,
        schedule=dumps.schedule,
        keep=dumps.keep,
        keep_days=dumps.keepDays,
        storage_size=dumps.storageSize,
        claim_labels=recurring_job_labels(group) if group else {},
        s3=s3,
        network_policy=pg.networkPolicy.enabled,
        dns=dns_egress_of(settings),
        # The CA (ca.crt) of the Secret the database mounts: the dump verifies the server (verify-full).
        tls_secret=dump_ca_secret(settings),
    )
