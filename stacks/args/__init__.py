"""Validated settings -> the components' Args: one mapping, used twice.

stacks/database.py builds the stack from these Args, and stacks/config/contract.py builds them while
validating the config, so every rule the Args check (their ``__post_init__``, the rules' only home)
refuses a bad stack file before any resource is registered, under the YAML key it came from.
Pure: no resource is created here, and no registration module is imported. One module per concern:
network (peers), storage (Longhorn, the class, recurring jobs), statefulset (the StatefulSet engine with its
TLS and metrics), cnpg (the CloudNativePG engine), monitoring (PodMonitor and alerts), backups (the dump job),
wal (WAL archiving and the base-backup job); this file only re-exports them.
"""

from stacks.args.backups import dump_args
from stacks.args.cnpg import cluster_args, cnpg_operator_args, dump_ca_secret, migrate_from_of
from stacks.args.monitoring import cluster_monitoring_args, monitoring_args
from stacks.args.network import dns_egress_of, peer_of
from stacks.args.statefulset import metrics_args, postgres_args, tls_args
from stacks.args.storage import (
    backup_group,
    longhorn_adoptions,
    longhorn_install_args,
    recurring_jobs_args,
    schedule_of,
    storage_class_args,
)
from stacks.args.wal import wal_args, wal_backup_args

__all__ = [
    "backup_group",
    "cluster_args",
    "cluster_monitoring_args",
    "cnpg_operator_args",
    "dns_egress_of",
    "dump_args",
    "dump_ca_secret",
    "longhorn_adoptions",
    "longhorn_install_args",
    "metrics_args",
    "migrate_from_of",
    "monitoring_args",
    "peer_of",
    "postgres_args",
    "recurring_jobs_args",
    "schedule_of",
    "storage_class_args",
    "tls_args",
    "wal_args",
    "wal_backup_args",
]
