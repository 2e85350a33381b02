"""The StatefulSet engine: PostgresStatefulSetArgs with its TLS and metrics parts, from the settings.

Pure: no resource is created here (stacks/args/__init__.py).
"""

from __future__ import annotations

from typing import TypedDict

import pulumi

from components.logical_backup_args import backup_labels
from components.longhorn_backups_args import recurring_job_labels
from components.network_args import DnsEgress, NetworkPolicyPeer
from components.postgres_args import AntiAffinity, PostgresStatefulSetArgs, PullPolicy
from components.postgres_metrics_args import MetricsArgs
from components.postgres_tls_args import IssuerRef, TlsArgs
from components.wal_archive_args import WalArchiveArgs, wal_labels
from stacks.args.network import dns_egress_of, peer_of
from stacks.args.storage import backup_group
from stacks.config.schema import Settings


def metrics_args(settings: Settings) -> MetricsArgs | None:
    """The exporter sidecar and its scrapers; None while metrics are off."""
    m = settings.metrics
    if not m.enabled:
        return None
    return MetricsArgs(
        image=m.image.reference,
        image_pull_policy=m.image.pullPolicy,
        allow_from=tuple(peer_of(c) for c in m.allowFrom),
        pod_monitor=m.podMonitor,
        prometheus_rule=m.prometheusRule,
    )


def tls_args(settings: Settings) -> TlsArgs | None:
    """TLS of the database and its clients; None while tls.enabled is false."""
    tls = settings.tls
    if not tls.enabled:
        return None
    ref = tls.certManager.issuerRef if tls.certManager is not None else None
    return TlsArgs(
        required=tls.required,
        min_protocol=tls.minProtocol,
        validity_days=tls.validityDays,
        renew_before_days=tls.renewBeforeDays,
        ca_validity_days=tls.caValidityDays,
        issuer=IssuerRef(name=ref.name, kind=ref.kind, group=ref.group) if ref is not None else None,
        existing_secret=tls.existingSecret,
    )


class DatabaseFields(TypedDict):
    """The arguments both engines' components take from the same settings (PostgresStatefulSetArgs and
    stacks/args/cnpg.py's PostgresClusterArgs): one mapping, so a setting reaches both or neither."""

    image: str
    image_pull_policy: PullPolicy
    storage_size: str
    requests: dict[str, str]
    limits: dict[str, str]
    database: str
    username: str | None
    password_rotation: int
    anti_affinity: AntiAffinity
    protect: bool
    claim_labels: dict[str, str]
    backup_clients: dict[str, str] | None
    network_policy: bool
    dns: DnsEgress
    allowed_clients: tuple[NetworkPolicyPeer, ...]
    metrics: MetricsArgs | None
    tls: TlsArgs | None


def database_fields(settings: Settings) -> DatabaseFields:
    pg = settings.postgres
    group = backup_group(settings)
    return DatabaseFields(
        image=pg.image.reference,
        image_pull_policy=pg.image.pullPolicy,
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
    )


def postgres_args(
    settings: Settings, namespace: pulumi.Input[str], storage_class: pulumi.Input[str], wal: WalArchiveArgs | None = None
) -> PostgresStatefulSetArgs:
    """Map validated settings onto the component's typed arguments (wal: stacks/args/wal.py wal_args, which needs
    the secret config)."""
    pg = settings.postgres
    return PostgresStatefulSetArgs(
        **database_fields(settings),
        namespace=namespace,
        storage_class=storage_class,
        replicas=pg.replicas,
        service_type=pg.service.type,
        service_port=pg.service.port,
        node_port=pg.service.nodePort,
        replication=pg.replication.enabled,
        replication_user=pg.replication.user,
        max_lag_bytes=pg.replication.maxLagBytes,
        primary_pod=pg.replication.primary,
        accept_wal_loss_up_to=pg.replication.acceptWalLossUpTo,
        shm_size=pg.shmSize,
        hold=settings.holdDatabase,
        wal=wal,
        wal_clients=wal_labels(pg.name) if wal is not None else None,
    )
