"""The CloudNativePG engine: the operator install and the Cluster, from the settings.

Pure: no resource is created here (stacks/args/__init__.py).
"""

from __future__ import annotations

from components.cnpg_operator_args import CnpgOperatorArgs
from components.logical_backup_args import backup_labels
from components.longhorn_backups_args import recurring_job_labels
from components.postgres_cluster_args import MigrateFrom, PostgresClusterArgs
from components.postgres_cluster_spec import operator_ca_secret
from stacks.args.network import dns_egress_of, peer_of
from stacks.args.statefulset import metrics_args, tls_args
from stacks.args.storage import backup_group
from stacks.config.cnpg import CNPG, operator_adoptions
from stacks.config.schema import Settings


def migrate_from_of(settings: Settings) -> MigrateFrom | None:
    src = settings.postgres.migrateFrom
    if src is None:
        return None
    return MigrateFrom(
        host=src.host, password_secret=src.passwordSecret, port=src.port, user=src.user, password_key=src.passwordKey, ssl_mode=src.sslMode
    )


def cluster_args(settings: Settings, storage_class: str) -> PostgresClusterArgs:
    """The CloudNativePG engine's Cluster from the same settings (postgres.engine cloudnative-pg)."""
    pg = settings.postgres
    group = backup_group(settings)
    return PostgresClusterArgs(
        namespace=settings.namespace,
        storage_class=storage_class,
        image=pg.image.reference,
        image_pull_policy=pg.image.pullPolicy,
        instances=pg.replicas,
        storage_size=pg.storageSize,
        requests=pg.resources.requests.model_dump(),
        limits=pg.resources.limits.model_dump(),
        database=pg.database,
        username=pg.username,
        password_rotation=pg.passwordRotation,
        anti_affinity=pg.replication.podAntiAffinity,
        protect=settings.protect,
        claim_labels=recurring_job_labels(group) if group else {},
        backup_clients=backup_labels(pg.name) if settings.backup.dumps is not None else None,
        network_policy=pg.networkPolicy.enabled,
        dns=dns_egress_of(settings),
        allowed_clients=tuple(peer_of(c) for c in pg.networkPolicy.allowFrom),
        metrics=metrics_args(settings),
        tls=tls_args(settings),
        migrate_from=migrate_from_of(settings),
        adopt=f"cluster/{settings.namespace}/{pg.name}" in settings.adopt,
        operator_namespace=settings.cnpg.namespace,
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
