"""What the StatefulSet engine can set and the CloudNativePG Cluster cannot: each refusal says why."""

from __future__ import annotations

from components.postgres_cluster_args import CNPG_PORT
from stacks.config.cnpg import CNPG
from stacks.config.errors import FieldError
from stacks.config.postgres import PostgresSettings


def engine_rules(pg: PostgresSettings, hold_database: bool) -> None:
    """What the Cluster cannot do that a StatefulSet-engine stack can set (one FieldError, the first)."""
    if pg.engine != CNPG:
        if pg.migrateFrom is not None:
            accepted = f"null with postgres.engine {pg.engine}: only a new CloudNativePG stack copies a primary"
            raise FieldError("postgres.migrateFrom", "an object", accepted)
        return
    why = "with postgres.engine cloudnative-pg"
    services = f"the operator's Services are ClusterIP on {CNPG_PORT}"
    if pg.service.type != "ClusterIP":
        raise FieldError("postgres.service.type", pg.service.type, f"ClusterIP {why}: {services}")
    if pg.service.port != CNPG_PORT:
        raise FieldError("postgres.service.port", pg.service.port, f"{CNPG_PORT} {why}: {services}")
    for key in ("primary", "acceptWalLossUpTo"):
        if getattr(pg.replication, key) is not None:
            accepted = f"null {why}: the operator elects and promotes the primary"
            raise FieldError(f"postgres.replication.{key}", getattr(pg.replication, key), accepted)
    if not pg.replication.enabled and pg.replicas > 1:
        accepted = f"true {why} and replicas > 1: the operator's instances always stream from the primary"
        raise FieldError("postgres.replication.enabled", False, accepted)
    if hold_database:
        raise FieldError("holdDatabase", True, f"false {why}: the volume-restore hold is the StatefulSet engine's")
