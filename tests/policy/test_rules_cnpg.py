"""The policy pack on the CloudNativePG engine: each rule reads the Cluster's equivalent of the pod field it checks
(or the operator fixes it: pgdata-subdirectory), so the pack holds both engines to the same rules.

The Cluster is the one the program registers for the fixed prod with postgres.engine cloudnative-pg and
tls.required (tests/stacks/test_database_cnpg.py); each case breaks one field and must be caught."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.postgres_cluster_args import CNPG_API
from policy import rules
from tests.policy.test_rules import POLICIES, _drop, _set, edited, mandatory, run_pack, violations
from tests.stacks.test_database_cnpg import cnpg_run
from tools.mock_run import Registered, Run

CLUSTER = f"kubernetes:{CNPG_API}:Cluster"
TLS_REQUIRED = {"tls": {"enabled": True, "required": True}}


def _run() -> Run:
    return cnpg_run("prod", TLS_REQUIRED)


def _cluster() -> Registered:
    (cluster,) = _run().of_type(CLUSTER)
    return cluster


def _add_hba(line: str) -> Callable[[dict[str, Any]], None]:
    return lambda inputs: inputs["spec"]["postgresql"]["pg_hba"].append(line)


def _no_spread(inputs: dict[str, Any]) -> None:
    inputs["spec"]["affinity"]["enablePodAntiAffinity"] = False
    del inputs["spec"]["topologySpreadConstraints"]


# (rule, edit of the Cluster's inputs, options, words in the message)
CASES: list[tuple[str, Callable[[dict[str, Any]], None], dict[str, Any], str]] = [
    ("no-trust-auth", _add_hba("host all all 0.0.0.0/0 trust"), {}, "trust"),
    ("passwords-from-secrets", _set(["spec", "env"], [{"name": "PGPASSWORD", "value": "hunter2"}]), {}, "PGPASSWORD is a literal"),
    ("requests-and-limits", _drop(["spec", "resources", "limits"]), {}, "limits lacks"),
    ("claim-storage-class", _drop(["spec", "storage", "storageClass"]), {}, "storageClass"),
    ("claim-storage-class", _set(["spec", "walStorage"], {"size": "1Gi"}), {}, "walStorage"),
    (
        "spread-replicas",
        _no_spread,
        {},
        "enablePodAntiAffinity false",
    ),
    ("restricted-security-context", _set(["spec", "securityContext"], {"allowPrivilegeEscalation": True}), {}, "privilege"),
    ("restricted-security-context", _set(["spec", "postgresUID"], 0), {}, "root"),
    ("restricted-security-context", _set(["spec", "podSecurityContext"], {"runAsNonRoot": False}), {}, "root"),
    ("production-protect", lambda i: None, {"protect": False}, "not protected"),
    ("production-image-digest", lambda i: i["spec"].update(imageName=i["spec"]["imageName"].split("@")[0]), {}, "digest"),
    ("production-tls", _drop(["spec", "postgresql", "pg_hba"]), {}, "tls.required"),
    ("stateful-unguarded", lambda i: None, {"protect": False}, "not protected"),
]
# The rules with nothing to read on a Cluster (policy/rules.py says why): the operator fixes PGDATA inside the volume;
# a Cluster has no claim retention field (protect guards it: production-protect, stateful-unguarded); the Longhorn
# rules read the release and the StorageClass, which both engines share.
NOT_ON_A_CLUSTER = {
    "pgdata-subdirectory",
    "pvc-retention-retain",
    "storage-class-retain",
    "longhorn-uninstall-disarmed",
    "production-longhorn-replicas",
    # The Cluster archives through CloudNativePG's own plugin (issue 20's Barman Cloud wiring), not archive_command.
    "production-wal-archiving",
}


def test_every_rule_has_a_cluster_case_or_a_reason() -> None:
    assert {c[0] for c in CASES} | NOT_ON_A_CLUSTER == set(POLICIES)
    assert rules.CLUSTER in rules.STATEFUL_TYPES


def test_the_whole_pack_passes_the_cloudnative_pg_render() -> None:
    assert mandatory(run_pack(_run())) == {}
    assert mandatory(run_pack(cnpg_run("dev"))) == {}


@pytest.mark.parametrize(("rule", "edit", "options", "words"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_broken_cluster_is_caught(rule: str, edit: Callable[[dict[str, Any]], None], options: dict[str, Any], words: str) -> None:
    cluster = _cluster()
    assert violations(POLICIES[rule], cluster) == []
    found = violations(POLICIES[rule], edited(cluster, edit, **options))
    assert any(words.lower() in m.lower() for m in found), found


def test_production_tls_on_a_cluster_follows_the_config() -> None:
    without = cnpg_run("prod")
    (cluster,) = without.of_type(CLUSTER)
    assert violations(POLICIES["production-tls"], cluster)
    assert violations(POLICIES["production-tls"], cluster, {"productionStacks": []}) == []
