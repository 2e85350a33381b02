"""What a CloudNativePG Cluster cannot do: refused with postgres.engine cloudnative-pg, accepted otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import ConfigError, parse_settings

CNPG = {"engine": "cloudnative-pg"}
SOURCE = {"host": "postgres-0.postgres-hl.old.svc.cluster.local", "passwordSecret": "old-credentials"}
CASES = [
    ({"postgres": {"service": {"port": 5433}}}, "postgres.service.port", "5432 with postgres.engine cloudnative-pg"),
    ({"postgres": {"service": {"type": "NodePort"}}}, "postgres.service.type", "ClusterIP with postgres.engine cloudnative-pg"),
    ({"postgres": {"replicas": 2, "replication": {"primary": "postgres-standby-1"}}}, "postgres.replication.primary", "elects"),
    ({"postgres": {"replication": {"acceptWalLossUpTo": "0/3000148"}}}, "postgres.replication.acceptWalLossUpTo", "elects"),
    ({"postgres": {"replicas": 2, "replication": {"enabled": False}}}, "postgres.replication.enabled", "always stream"),
    ({"holdDatabase": True}, "holdDatabase", "the StatefulSet engine's"),
]


def _with(raw: dict[str, Any], postgres: dict[str, Any]) -> dict[str, Any]:
    return raw | {"postgres": {**raw.get("postgres", {}), **postgres}}


@pytest.mark.parametrize(("raw", "key", "says"), CASES, ids=[c[1] for c in CASES])
def test_refused_on_the_cluster_and_accepted_on_the_statefulsets(raw: dict[str, Any], key: str, says: str) -> None:
    parse_settings(raw, "dev")
    with pytest.raises(ConfigError, match=rf"pgstack:{key}: got .*{says}"):
        parse_settings(_with(raw, CNPG), "dev")


def test_a_migration_source_only_on_a_cloudnative_pg_stack() -> None:
    parse_settings({"postgres": {**CNPG, "migrateFrom": SOURCE}}, "dev")
    refused = r"pgstack:postgres.migrateFrom: got \"an object\"; expected null with postgres.engine statefulset"
    with pytest.raises(ConfigError, match=refused):
        parse_settings({"postgres": {"migrateFrom": SOURCE}}, "dev")


def test_the_database_namespace_is_not_the_operators() -> None:
    parse_settings({"namespace": "cnpg-system"}, "dev")
    parse_settings({"namespace": "cnpg-system", "postgres": CNPG, "cnpg": {"install": False}}, "dev")
    with pytest.raises(ConfigError, match=r"pgstack:namespace: got \"cnpg-system\"; expected a namespace other than cnpg.namespace"):
        parse_settings({"namespace": "cnpg-system", "postgres": CNPG}, "dev")
