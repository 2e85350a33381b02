"""The CloudNativePG engine's settings: postgres.engine and postgres.migrateFrom (stacks/config/postgres.py holds
them) and the cnpg: block (the operator's install). What a Cluster cannot do is refused by stacks/config/engine.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from components.cnpg_operator_args import CNPG_CHART_VERSION, CNPG_RELEASE, CnpgAdoptable
from components.longhorn_install_args import CHART_VERSION
from components.postgres_cluster_args import SslMode
from stacks.config.errors import such_as
from stacks.config.formats import DnsName, DnsSubdomain, Model, PgIdentifier

Engine = Literal["statefulset", "cloudnative-pg"]
CNPG: Engine = "cloudnative-pg"
MIGRATION_RUNBOOK = "docs/operations.md#move-to-cloudnative-pg"


def _chart_version(value: str) -> str:
    if not CHART_VERSION.fullmatch(value):
        raise ValueError(f"a Helm chart version MAJOR.MINOR.PATCH, digits only (no v), {such_as(CNPG_CHART_VERSION)}")
    return value


class CnpgSettings(Model):
    """The CloudNativePG operator's install (helm.v3.Release of chart cloudnative-pg), read with postgres.engine cloudnative-pg."""

    install: bool = True
    """Install the operator from this stack (one per cluster: its CRDs and webhooks are cluster-wide); false if it is installed already."""
    chartVersion: Annotated[str, AfterValidator(_chart_version)] = CNPG_CHART_VERSION
    """Pinned version of the cloudnative-pg chart (https://cloudnative-pg.github.io/charts); 0.29.0 installs operator 1.30.0."""
    namespace: DnsName = "cnpg-system"
    """Namespace of the operator (Pod Security "restricted"); the database's NetworkPolicy admits it."""


class MigrateFromSettings(Model):
    """The running primary of a StatefulSet-engine stack that a new CloudNativePG Cluster copies with pg_basebackup."""

    host: DnsSubdomain
    """The source primary's host: its pod's name in the headless Service, such as postgres-0.postgres-hl.postgres.svc.cluster.local."""
    port: int = Field(5432, ge=1, le=65535)
    """The source's port."""
    user: PgIdentifier = "replicator"
    """The source's replication role (its postgres.replication.user)."""
    passwordSecret: DnsSubdomain
    """A Secret in this stack's namespace holding that role's password (a copy of the source's <name>-credentials)."""
    passwordKey: str = "replication-password"
    """The key of the password in passwordSecret."""
    sslMode: SslMode = "prefer"
    """libpq sslmode of the copy: prefer, or require when the source has tls.enabled."""


def operator_adoptions(namespace: str, adopt: list[str]) -> frozenset[CnpgAdoptable]:
    """The adopt entries (stacks/config/schema.py adoptable) that name a part of the operator's install."""
    parts: dict[str, CnpgAdoptable] = {f"namespace/{namespace}": "namespace", f"release/{namespace}/{CNPG_RELEASE}": "release"}
    return frozenset(parts[entry] for entry in adopt if entry in parts)
