"""The components' rules, said in YAML keys: validated settings are turned into the components' Args
(stacks/args.py, the same mapping the program uses), and an Args refusal (components/validation.py
ArgsError) becomes one config line naming the key the value came from. The cross-field rules live only
in the Args; the config checks what only the config knows (unknown keys, secrets, runbook keys, the
largest node)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from components.cnpg_operator_args import CnpgOperatorArgs
from components.logical_backup_args import LogicalBackupArgs
from components.longhorn_backups_args import LonghornRecurringJobsArgs, Schedule
from components.longhorn_install_args import LonghornInstallArgs
from components.longhorn_storage_class_args import LonghornStorageClassArgs
from components.naming import service_dns
from components.network_args import DnsEgress, NetworkPolicyPeer
from components.postgres_args import PostgresStatefulSetArgs
from components.postgres_cluster_args import MigrateFrom, PostgresClusterArgs
from components.postgres_metrics_args import MetricsArgs
from components.postgres_names import instance_labels
from components.postgres_tls_args import IssuerRef, TlsArgs
from components.validation import ArgsError
from components.wal_archive_args import WalArchiveArgs, WalRestore, WalS3
from stacks import args as build
from stacks.config.cnpg import CNPG
from stacks.config.errors import PROJECT, ConfigError, error_line
from stacks.config.schema import Settings
from stacks.config.secrets import SECRET_UNKNOWN, DumpS3Secret

_PG, _DNS = "postgres", "postgres.networkPolicy.dns"

# (Args class, field) -> the YAML key (below the prefix each build in check_contract names) it is set from.
YAML_KEYS: dict[tuple[type, str], str] = {
    (PostgresStatefulSetArgs, "namespace"): "namespace",
    (PostgresStatefulSetArgs, "image"): f"{_PG}.image.tag",
    (PostgresStatefulSetArgs, "image_pull_policy"): f"{_PG}.image.pullPolicy",
    (PostgresStatefulSetArgs, "replicas"): f"{_PG}.replicas",
    (PostgresStatefulSetArgs, "storage_size"): f"{_PG}.storageSize",
    (PostgresStatefulSetArgs, "requests"): f"{_PG}.resources.requests",
    (PostgresStatefulSetArgs, "limits"): f"{_PG}.resources.limits",
    (PostgresStatefulSetArgs, "database"): f"{_PG}.database",
    (PostgresStatefulSetArgs, "password_rotation"): f"{_PG}.passwordRotation",
    (PostgresStatefulSetArgs, "username"): f"{_PG}.username",
    (PostgresStatefulSetArgs, "service_type"): f"{_PG}.service.type",
    (PostgresStatefulSetArgs, "service_port"): f"{_PG}.service.port",
    (PostgresStatefulSetArgs, "node_port"): f"{_PG}.service.nodePort",
    (PostgresStatefulSetArgs, "replication"): f"{_PG}.replication.enabled",
    (PostgresStatefulSetArgs, "replication_user"): f"{_PG}.replication.user",
    (PostgresStatefulSetArgs, "max_lag_bytes"): f"{_PG}.replication.maxLagBytes",
    (PostgresStatefulSetArgs, "anti_affinity"): f"{_PG}.replication.podAntiAffinity",
    (PostgresStatefulSetArgs, "primary_pod"): f"{_PG}.replication.primary",
    (PostgresStatefulSetArgs, "accept_wal_loss_up_to"): f"{_PG}.replication.acceptWalLossUpTo",
    (PostgresStatefulSetArgs, "shm_size"): f"{_PG}.shmSize",
    (PostgresStatefulSetArgs, "<component name>"): f"{_PG}.name",
    (PostgresClusterArgs, "namespace"): "namespace",
    (PostgresClusterArgs, "image"): f"{_PG}.image.tag",
    (PostgresClusterArgs, "image_pull_policy"): f"{_PG}.image.pullPolicy",
    (PostgresClusterArgs, "instances"): f"{_PG}.replicas",
    (PostgresClusterArgs, "storage_size"): f"{_PG}.storageSize",
    (PostgresClusterArgs, "requests"): f"{_PG}.resources.requests",
    (PostgresClusterArgs, "limits"): f"{_PG}.resources.limits",
    (PostgresClusterArgs, "database"): f"{_PG}.database",
    (PostgresClusterArgs, "username"): f"{_PG}.username",
    (PostgresClusterArgs, "password_rotation"): f"{_PG}.passwordRotation",
    (PostgresClusterArgs, "anti_affinity"): f"{_PG}.replication.podAntiAffinity",
    (PostgresClusterArgs, "operator_namespace"): "cnpg.namespace",
    (PostgresClusterArgs, "<component name>"): f"{_PG}.name",
    (MigrateFrom, "host"): f"{_PG}.migrateFrom.host",
    (MigrateFrom, "password_secret"): f"{_PG}.migrateFrom.passwordSecret",
    (MigrateFrom, "port"): f"{_PG}.migrateFrom.port",
    (MigrateFrom, "user"): f"{_PG}.migrateFrom.user",
    (MigrateFrom, "password_key"): f"{_PG}.migrateFrom.passwordKey",
    (MigrateFrom, "ssl_mode"): f"{_PG}.migrateFrom.sslMode",
    (CnpgOperatorArgs, "chart_version"): "cnpg.chartVersion",
    (CnpgOperatorArgs, "namespace"): "cnpg.namespace",
    (MetricsArgs, "image"): "metrics.image.tag",
    (MetricsArgs, "image_pull_policy"): "metrics.image.pullPolicy",
    (TlsArgs, "required"): "tls.required",
    (TlsArgs, "min_protocol"): "tls.minProtocol",
    (TlsArgs, "validity_days"): "tls.validityDays",
    (TlsArgs, "renew_before_days"): "tls.renewBeforeDays",
    (TlsArgs, "ca_validity_days"): "tls.caValidityDays",
    (TlsArgs, "issuer"): "tls.certManager",
    (TlsArgs, "existing_secret"): "tls.existingSecret",
    (IssuerRef, "name"): "tls.certManager.issuerRef.name",
    (IssuerRef, "kind"): "tls.certManager.issuerRef.kind",
    (IssuerRef, "group"): "tls.certManager.issuerRef.group",
    (NetworkPolicyPeer, "cidr"): "cidr",
    (NetworkPolicyPeer, "pod_labels"): "podLabels",
    (NetworkPolicyPeer, "namespace_labels"): "namespaceLabels",
    (DnsEgress, "any"): f"{_DNS}.any",
    (DnsEgress, "cidrs"): f"{_DNS}.cidrs",
    (DnsEgress, "pod_labels"): f"{_DNS}.podLabels",
    (DnsEgress, "namespace_labels"): f"{_DNS}.namespaceLabels",
    (LonghornInstallArgs, "chart_version"): "longhorn.chartVersion",
    (LonghornInstallArgs, "namespace"): "longhorn.namespace",
    (LonghornInstallArgs, "default_replica_count"): "longhorn.defaultReplicaCount",
    (LonghornInstallArgs, "default_data_locality"): "longhorn.defaultDataLocality",
    (LonghornInstallArgs, "node_down_pod_deletion_policy"): "longhorn.nodeDownPodDeletionPolicy",
    (LonghornInstallArgs, "uninstall_confirmation"): "longhorn.uninstallConfirmation",
    (LonghornInstallArgs, "adopt"): "adopt",
    (LonghornStorageClassArgs, "name"): "storage.className",
    (LonghornStorageClassArgs, "replicas"): "storage.numberOfReplicas",
    (LonghornStorageClassArgs, "data_locality"): "storage.dataLocality",
    (LonghornStorageClassArgs, "reclaim_policy"): "storage.reclaimPolicy",
    (LonghornRecurringJobsArgs, "group"): "storage.className",
    (LonghornRecurringJobsArgs, "namespace"): "longhorn.namespace",
    (Schedule, "cron"): "schedule",
    (Schedule, "retain"): "retain",
    (LogicalBackupArgs, "name"): f"{_PG}.name",
    (LogicalBackupArgs, "image"): f"{_PG}.image.tag",
    (LogicalBackupArgs, "image_pull_policy"): f"{_PG}.image.pullPolicy",
    (LogicalBackupArgs, "port"): f"{_PG}.service.port",
    (LogicalBackupArgs, "schedule"): "backup.dumps.schedule",
    (LogicalBackupArgs, "keep"): "backup.dumps.keep",
    (LogicalBackupArgs, "keep_days"): "backup.dumps.keepDays",
    (LogicalBackupArgs, "storage_size"): "backup.dumps.storageSize",
    (LogicalBackupArgs, "tls_secret"): "tls.existingSecret",
    (WalArchiveArgs, "archive_timeout"): "backup.wal.archiveTimeout",
    (WalArchiveArgs, "schedule"): "backup.wal.baseBackup.schedule",
    (WalArchiveArgs, "keep"): "backup.wal.baseBackup.keep",
    (WalS3, "remote"): "backup.wal.s3Remote",
    (WalRestore, "remote"): "backup.wal.restoreFrom.s3Remote",
    (WalRestore, "point"): "backup.wal.restoreFrom",
}
# The S3 account as it stands while the config is checked: secret config is read after (parse_secrets).
_UNKNOWN_S3 = DumpS3Secret(accessKeyId=SECRET_UNKNOWN, secretAccessKey=SECRET_UNKNOWN)

_PART = re.compile(r"\[(.+?)\]")


def yaml_key(args_class: type, field: str, prefix: str = "") -> str | None:
    """The YAML key of an Args field, with its subscripts as key parts: requests['cpu'] -> ...requests.cpu."""
    base = field.split("[", 1)[0]
    key = YAML_KEYS.get((args_class, base))
    if key is None:
        return None
    parts = [str(json.loads(p.replace("'", '"'))) if p[0] in "'\"" else p for p in _PART.findall(field)]
    return ".".join([prefix + key, *parts])


def config_line(err: ArgsError, prefix: str = "") -> str:
    """An Args refusal as the config line of the key it came from; its own text where no key maps (a bug)."""
    key = yaml_key(err.args_class, err.field, prefix)
    if key is None:
        return f"{PROJECT}: {err} (a setting the program derived; please report it)"

    def rename(ref: str) -> str:
        return yaml_key(err.args_class, ref, prefix) or ref

    accepted = err.accepted(json.dumps, rename)
    accepted = re.sub(r"\bNone\b", "null", re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", accepted)))
    return error_line(key, err.value, accepted, f"{PROJECT}:")


def _checked(make: Callable[[], Any], prefix: str = "") -> Any:
    try:
        return make()
    except ArgsError as err:
        raise ConfigError(f"invalid configuration:\n  {config_line(err, prefix)}") from err


def check_contract(settings: Settings) -> None:
    """Build every Args the stack would build, so the components' checks refuse a bad value now, under its
    YAML key (a ConfigError whose cause is the ArgsError), before any resource is registered."""
    pg = settings.postgres
    for i, client in enumerate(pg.networkPolicy.allowFrom):
        _checked(partial(build.peer_of, client), f"{_PG}.networkPolicy.allowFrom.{i}.")
    for i, client in enumerate(settings.metrics.allowFrom):
        _checked(partial(build.peer_of, client), f"metrics.allowFrom.{i}.")
    args = _checked(lambda: build.postgres_args(settings, settings.namespace, settings.storage_class))
    _checked(lambda: args.check_component_name(pg.name))
    if pg.engine == CNPG:
        cluster = _checked(lambda: build.cluster_args(settings, settings.storage_class))
        _checked(lambda: cluster.check_component_name(pg.name))
        if settings.cnpg.install:
            _checked(lambda: build.cnpg_operator_args(settings))
    if settings.longhorn.install:
        # The backup target is secret config, read after this (parse_secrets refuses adopting its Secret
        # without it): here it stands as set, so the install's other rules are checked now.
        _checked(lambda: build.longhorn_install_args(settings, backup_target=SECRET_UNKNOWN))
    if settings.storage.existingClass is None:
        _checked(lambda: build.storage_class_args(settings))
    for job in ("snapshots", "volumeBackups"):
        _checked(partial(build.schedule_of, getattr(settings.backup, job)), f"backup.{job}.")
    group = build.backup_group(settings)
    if group is not None:
        snapshot, backup = build.schedule_of(settings.backup.snapshots), build.schedule_of(settings.backup.volumeBackups)
        _checked(lambda: build.recurring_jobs_args(settings, group, snapshot, backup))
    if settings.backup.wal is not None:
        _checked(lambda: build.wal_args(settings, _UNKNOWN_S3))
    if settings.backup.dumps is not None:
        hosts: list[Any] = [service_dns(pg.name, settings.namespace)]
        _checked(lambda: build.dump_args(settings, settings.namespace, hosts, instance_labels(pg.name)))
