"""CnpgOperator: the pinned cloudnative-pg release, values that exist in the chart, retained on delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cnpg_operator import CNPG_CHART, CNPG_REPO, cnpg_values
from components.cnpg_operator_args import CnpgOperatorArgs
from components.validation import ArgsError
from stacks.config import ConfigError, parse_settings
from tests.stacks.test_database_cnpg import RELEASE, cnpg_run
from tools.mock_run import plain

# charts/cloudnative-pg/values.yaml at cloudnative-pg-v0.29.0 (chart 0.29.0, operator 1.30.0), beside the repository.
NAMESPACE = "kubernetes:core/v1:Namespace"
VALUES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "cloudnative-pg-1.30.0" / "chart-cloudnative-pg-0.29.0-values.yaml"


def _paths(values: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        out |= _paths(value, path + ".") if isinstance(value, dict) and value else {path}
    return out


def test_every_value_exists_in_the_pinned_chart_with_the_same_type() -> None:
    chart = yaml.safe_load(VALUES.read_text())
    ours = _paths(cnpg_values())
    assert ours == {
        "crds.create",
        "webhook.mutating.failurePolicy",
        "webhook.validating.failurePolicy",
        "config.clusterWide",
        "monitoring.podMonitorEnabled",
    }
    for path in ours:
        node: Any = chart
        for part in path.split("."):
            assert isinstance(node, dict) and part in node, f"{path} is not in the chart's values.yaml"
            node = node[part]
        value: Any = cnpg_values()
        for part in path.split("."):
            value = value[part]
        assert type(value) is type(node), path


def test_release_is_pinned_awaited_and_kept() -> None:
    run = cnpg_run("prod")
    component = run.one("pgstack:index:CnpgOperator", "cnpg")
    ns = run.one("kubernetes:core/v1:Namespace", "cnpg-ns")
    release = run.one(RELEASE, "cnpg-release")
    assert {ns.parent, release.parent} == {component.urn}
    assert plain(ns.inputs)["metadata"] == {
        "name": "cnpg-system",
        "labels": {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "audit", "warn")},
    }
    rel = plain(release.inputs)
    assert (rel["chart"], rel["version"], rel["repositoryOpts"]["repo"]) == (CNPG_CHART, "0.29.0", CNPG_REPO)
    assert (rel["namespace"], rel["values"], rel["skipAwait"]) == ("cnpg-system", cnpg_values(), False)
    assert ns.urn in release.dependencies
    # A destroy forgets the operator rather than uninstalling it; protect refuses even that on prod.
    for r in (ns, release):
        assert r.options.retain_on_delete and r.options.protect, r.name


def test_a_retained_install_is_adopted_only_when_named() -> None:
    fresh = cnpg_run("dev")
    assert {fresh.one(RELEASE, "cnpg-release").options.import_id, fresh.one(NAMESPACE, "cnpg-ns").options.import_id} == {""}
    adopted = cnpg_run("dev", {"adopt": ["namespace/cnpg-system", "release/cnpg-system/cnpg"]})
    assert adopted.one(NAMESPACE, "cnpg-ns").options.import_id == "cnpg-system"
    assert adopted.one(RELEASE, "cnpg-release").options.import_id == "cnpg-system/cnpg"
    # Only on a stack that installs the operator.
    with pytest.raises(ConfigError, match=r"pgstack:adopt: got \"release/cnpg-system/cnpg\""):
        parse_settings({"postgres": {"engine": "cloudnative-pg"}, "cnpg": {"install": False}, "adopt": ["release/cnpg-system/cnpg"]}, "dev")
    with pytest.raises(ArgsError):
        CnpgOperatorArgs(adopt=frozenset({"claims"}))  # type: ignore[arg-type]
