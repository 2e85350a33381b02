"""The Cluster's spec: strictly valid against the CloudNativePG 1.30.0 CRD, nothing the operator fixes, the webhook's
rules kept, and each setting mapped from the stack's."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jsonschema
import pytest

from components.logical_backup_args import backup_labels
from components.postgres_cluster_args import CNPG_API, FIXED_PARAMETERS, PARAMETER_NAME, MigrateFrom, PostgresClusterArgs
from components.postgres_cluster_spec import cluster_spec, server_alt_names, wal_parameters
from components.postgres_conf import MiB
from components.postgres_tls_args import IssuerRef, TlsArgs
from components.quantity import quantity
from tests.conftest import dns_rule_of
from tests.stacks.test_database_cnpg import CLUSTER, cnpg_run
from tests.tools.test_render import crd_schemas
from tools.mock_run import plain

ARGS = PostgresClusterArgs(namespace="db", storage_class="longhorn-postgres", image="docker.io/library/postgres:18.6")
GiB = 1024 * MiB
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


@functools.cache
def _schema() -> dict[str, Any]:
    return crd_schemas()[(CNPG_API, "Cluster")]


def _validate(spec: dict[str, Any]) -> None:
    obj = {"apiVersion": CNPG_API, "kind": "Cluster", "metadata": {"name": "postgres", "namespace": "db"}, "spec": spec}
    jsonschema.validators.validator_for(_schema())(_schema()).validate(obj)


GROUP = {"recurring-job-group.longhorn.io/x": "enabled"}
SOURCE = "postgres-0.postgres-hl.old.svc.cluster.local"
VARIANTS = {
    "defaults": ARGS,
    "three-hard": dataclasses.replace(ARGS, instances=3, anti_affinity="hard", claim_labels=GROUP),
    "tls-required": dataclasses.replace(ARGS, tls=TlsArgs(required=True, min_protocol="TLSv1.2")),
    "cert-manager": dataclasses.replace(ARGS, tls=TlsArgs(issuer=IssuerRef(name="ca"))),
    "migrate": dataclasses.replace(ARGS, migrate_from=MigrateFrom(host=SOURCE, password_secret="old")),
    "wal-archive": dataclasses.replace(ARGS, wal_object_store="postgres-wal"),
}


@pytest.mark.parametrize("args", VARIANTS.values(), ids=VARIANTS)
def test_every_variant_passes_the_crd_strictly(args: PostgresClusterArgs) -> None:
    _validate(cluster_spec("postgres", args, "postgres-tls" if args.tls and args.tls.issuer else None))


def test_the_crd_check_can_fail() -> None:
    spec = cluster_spec("postgres", ARGS)
    for bad in ({"instance": 1}, {"affinity": {"podAntiAffinityType": 3}}, {"storage": {"sise": "1Gi"}}, {"enablePDB": "false"}):
        with pytest.raises(jsonschema.ValidationError):
            _validate(spec | bad)


@pytest.mark.parametrize("args", VARIANTS.values(), ids=VARIANTS)
def test_no_parameter_the_operator_fixes_and_every_name_valid(args: PostgresClusterArgs) -> None:
    parameters = cluster_spec("postgres", args)["postgresql"]["parameters"]
    assert not set(parameters) & FIXED_PARAMETERS
    assert all(PARAMETER_NAME.fullmatch(k) for k in parameters)
    assert all(isinstance(v, str) for v in parameters.values())
    # The memory settings come from limits.memory (1Gi), as on the StatefulSet engine.
    assert (parameters["shared_buffers"], parameters["effective_cache_size"]) == ("256MB", "768MB")


def test_tls_settings() -> None:
    postgresql = cluster_spec("postgres", VARIANTS["tls-required"])["postgresql"]
    assert postgresql["parameters"]["ssl_min_protocol_version"] == "TLSv1.2"
    assert postgresql["pg_hba"] == ["hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"]
    assert "certificates" not in cluster_spec("postgres", VARIANTS["tls-required"])
    assert "pg_hba" not in cluster_spec("postgres", ARGS)["postgresql"]
    spec = cluster_spec("postgres", VARIANTS["cert-manager"], "postgres-tls")
    assert spec["certificates"] == {"serverTLSSecret": "postgres-tls", "serverCASecret": "postgres-tls"}


WAL_CASES = [
    (100 * MiB, ("64MB", "32MB", "12MB", "25MB")),
    (GiB, ("256MB", "64MB", "128MB", "256MB")),
    (20 * GiB, ("1024MB", "256MB", "1024MB", "5120MB")),
]


@pytest.mark.parametrize(("size", "expected"), WAL_CASES)
def test_wal_budget_fits_the_volume(size: int, expected: tuple[str, ...]) -> None:
    wal = wal_parameters(size)
    assert (wal["max_wal_size"], wal["min_wal_size"], wal["wal_keep_size"], wal["max_slot_wal_keep_size"]) == expected
    # The webhook's rule: min_wal_size below max_wal_size (cluster_webhook.go:1247-1256).
    assert quantity(wal["min_wal_size"].replace("MB", "Mi")) < quantity(wal["max_wal_size"].replace("MB", "Mi"))


def test_scheduling_and_disruption_budget() -> None:
    one, three = cluster_spec("postgres", ARGS), cluster_spec("postgres", VARIANTS["three-hard"])
    assert one["enablePDB"] is False and three["enablePDB"] is True
    assert one["affinity"] == {"enablePodAntiAffinity": True, "podAntiAffinityType": "preferred", "topologyKey": "kubernetes.io/hostname"}
    assert three["affinity"]["podAntiAffinityType"] == "required"
    assert three["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert three["topologySpreadConstraints"][0]["labelSelector"] == {"matchLabels": {"cnpg.io/cluster": "postgres"}}
    assert three["inheritedMetadata"] == {"labels": {"recurring-job-group.longhorn.io/x": "enabled"}}
    assert (one["postgresUID"], one["postgresGID"], one["imageName"]) == (999, 999, "docker.io/library/postgres:18.6")
    assert one["storage"] == {"storageClass": "longhorn-postgres", "size": "1Gi"}


def test_bootstrap_names_secrets_only() -> None:
    spec = cluster_spec("postgres", ARGS)
    assert spec["bootstrap"] == {"initdb": {"database": "app", "owner": "app", "secret": {"name": "postgres-app-user"}}}
    assert spec["superuserSecret"] == {"name": "postgres-superuser-user"} and spec["enableSuperuserAccess"] is True
    migrate = cluster_spec("postgres", VARIANTS["migrate"])
    owner = {"database": "app", "owner": "app", "secret": {"name": "postgres-app-user"}}
    assert migrate["bootstrap"] == {"pg_basebackup": {"source": "statefulset-primary", **owner}}
    (source,) = migrate["externalClusters"]
    # The webhook: pg_basebackup's source must be one of externalClusters (cluster_webhook.go:630-651).
    assert source["name"] == migrate["bootstrap"]["pg_basebackup"]["source"]
    assert source["connectionParameters"]["host"] == SOURCE
    assert source["connectionParameters"]["user"] == "replicator"
    assert source["password"] == {"name": "old", "key": "replication-password"}


def test_certificate_names_are_the_operators() -> None:
    names = server_alt_names("pg", "db", "cluster.local")
    assert names[:4] == ["pg-rw", "pg-rw.db", "pg-rw.db.svc", "pg-rw.db.svc.cluster.local"]
    assert {"pg-r", "pg-ro.db.svc.cluster.local"} <= set(names) and len(names) == 12


def _ports(rule: dict[str, Any]) -> set[int]:
    return {p["port"] for p in rule["ports"]}


def test_network_policy_admits_the_operator_and_the_clients() -> None:
    # Through the program (the policy's Args become the object the API server gets): dumps on, a scraper named.
    prom = {"podLabels": {"app": "prom"}, "namespaceLabels": {}}
    run = cnpg_run("dev", {"metrics": {"enabled": True, "allowFrom": [prom]}, "backup": {"dumps": {"keep": 3}}})
    spec = plain(run.one(NETPOL, "postgres-netpol").inputs)["spec"]
    assert spec["podSelector"] == {"matchLabels": {"cnpg.io/cluster": "postgres"}}
    operator_ns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cnpg-system"}}}
    operator = [r for r in spec["ingress"] if r["from"] == [operator_ns]]
    assert len(operator) == 1 and _ports(operator[0]) == {8000, 5432}
    clients = next(r for r in spec["ingress"] if _ports(r) == {5432} and r not in operator)
    assert {"podSelector": {"matchLabels": backup_labels("postgres")}} in clients["from"]
    assert {"podSelector": {"matchLabels": {"cnpg.io/cluster": "postgres"}}} in clients["from"]
    scrapers = next(r for r in spec["ingress"] if _ports(r) == {9187})
    assert scrapers["from"] == [{"podSelector": {"matchLabels": {"app": "prom"}}, "namespaceSelector": {"matchLabels": {}}}]
    # The instance manager watches the API server: its egress; no other port leaves for anywhere.
    assert [_ports(r) for r in spec["egress"] if "to" not in r] == [{443, 6443}]
    dns_rule_of(spec["egress"], "cnpg")


def test_a_migration_may_reach_its_source() -> None:
    source = {"host": "postgres-0.postgres-hl.old.svc.cluster.local", "passwordSecret": "old-credentials"}
    run = cnpg_run("dev", {"postgres": {"migrateFrom": source}})
    egress = plain(run.one(NETPOL, "postgres-netpol").inputs)["spec"]["egress"]
    assert {5432} in [_ports(r) for r in egress if "to" not in r]
    bootstrap = plain(run.one(CLUSTER, "postgres").inputs)["spec"]["bootstrap"]
    assert list(bootstrap) == ["pg_basebackup"]


def test_wal_archive_plugin() -> None:
    assert "plugins" not in cluster_spec("postgres", ARGS)
    plugins = cluster_spec("postgres", VARIANTS["wal-archive"])["plugins"]
    archiver = {"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": True}
    assert plugins == [archiver | {"parameters": {"barmanObjectName": "postgres-wal"}}]
