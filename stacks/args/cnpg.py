"""The CloudNativePG engine: the operator install and the Cluster, from the settings.

Pure: no resource is created here (stacks/args/__init__.py).
"""

from __future__ import annotations

import pulumi

from components.cnpg_operator_args import CnpgOperatorArgs
from components.postgres_cluster_args import BarmanS3, MigrateFrom, PostgresClusterArgs
from components.postgres_cluster_spec import operator_ca_secret
from components.postgres_names import wal_job, wal_s3_secret
from stacks.args.statefulset import database_fields, tls_args
from stacks.config.cnpg import CNPG, operator_adoptions
from stacks.config.schema import Settings
from stacks.config.secrets import DumpS3Secret


def migrate_from_of(settings: Settings) -> MigrateFrom | None:
    src = settings.postgres.migrateFrom
    if src is None:
        return None
    return MigrateFrom(
        host=src.host, password_secret=src.passwordSecret, port=src.port, user=src.user, password_key=src.passwordKey, ssl_mode=src.sslMode
    )


def barman_s3(settings: Settings, s3: DumpS3Secret | None) -> tuple[BarmanS3, dict[str, str]] | None:
    """backup.wal under this engine: the Barman Cloud plugin's S3 archive and the account's keys (pgstack:dumpS3,
    as the StatefulSet engine archives with); None without backup.wal or without the account."""
    wal = settings.backup.wal
    if wal is None or wal.s3Remote is None or s3 is None:
        return None
    endpoint = s3.endpoint if s3.endpoint is None or "://" in s3.endpoint else f"https://{s3.endpoint}"
    store = BarmanS3(remote=wal.s3Remote, credentials_secret=wal_s3_secret(settings.postgres.name), endpoint=endpoint)
    return store, {store.access_key_key: s3.accessKeyId, store.secret_key_key: s3.secretAccessKey}


def cluster_args(settings: Settings, storage_class: str, s3: DumpS3Secret | None = None) -> PostgresClusterArgs:
    """The CloudNativePG engine's Cluster from the same settings (postgres.engine cloudnative-pg)."""
    pg = settings.postgres
    archive = barman_s3(settings, s3)
    return PostgresClusterArgs(
        **database_fields(settings),
        namespace=settings.namespace,
        storage_class=storage_class,
        instances=pg.replicas,
        migrate_from=migrate_from_of(settings),
        adopt=f"cluster/{settings.namespace}/{pg.name}" in settings.adopt,
        operator_namespace=settings.cnpg.namespace,
        wal_object_store=wal_job(pg.name) if archive else None,
        wal_backup_schedule=settings.backup.wal.baseBackup.schedule if archive and settings.backup.wal else None,
        wal_s3=archive[0] if archive else None,
        wal_s3_keys=pulumi.Output.secret(archive[1]) if archive else None,
    )


def cnpg_operator_args(settings: Settings) -> CnpgOperatorArgs:
    ns, adopt = settings.cnpg.namespace, operator_adoptions(settings.cnpg.namespace, settings.adopt)
    return CnpgOperatorArgs(chart_version=settings.cnpg.chartVersion, namespace=ns, protect=settings.protect, adopt=adopt)


def dump_ca_secret(settings: Settings) -> str | None:
    """The Secret whose ca.crt the dump verifies the server with: the stack's TLS Secret, or on the CloudNativePG
    engine (always TLS) the operator's CA unless cert-manager or an existing Secret serves the certificate."""
    tls, name = tls_args(settings), settings.postgres.name
    if settings.postgres.engine == CNPG:
        return tls.secret_name(name) if tls is not None and (tls.issuer is not None or tls.existing_secret) else operator_ca_secret(name)
    return None if tls is None else tls.secret_name(name)
