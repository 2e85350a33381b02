"""bin/policy: the policy pack on a stack's mock render, without the Pulumi CLI or a cluster.

Its entry point (policy/offline.py main), in-process; the script itself runs as the README writes it, in a
shell with no pulumi on PATH, in test_readme_commands.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy import offline
from stacks.mock_run import ROOT


def _as_production(stack: str) -> dict[str, object]:
    config = offline.load_config()
    for entry in config.values():
        if isinstance(entry, dict) and "productionStacks" in entry:
            entry["productionStacks"] = [*entry["productionStacks"], stack]
    return config


def test_a_stack_listed_as_production_fails_on_its_mandatory_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """dev listed as production: its one Longhorn replica and unprotected resources are mandatory; exit 1,
    one line per violation, and the summary says which rules applied."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_as_production("dev")))
    assert offline.main(["dev", "--config", str(config)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert any(line.startswith("mandatory production-protect: kubernetes:apps/v1:StatefulSet postgres: ") for line in lines), lines
    assert any(line.startswith("mandatory production-longhorn-replicas: kubernetes:storage.k8s.io/v1:StorageClass ") for line in lines)
    assert all(line.split(" ", 1)[0] in ("mandatory", "advisory") for line in lines)
    assert "bin/policy: dev (production rules, config.json)" in err


def test_an_unknown_stack_or_a_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert offline.main(["stagin"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "bin/policy: no stack file Pulumi.stagin.yaml; the stacks here: "
        + ", ".join(sorted(p.name[7:-5] for p in ROOT.glob("Pulumi.*.yaml")))
    ]
    bad = tmp_path / "config.json"
    bad.write_text('{"production-protect": {"productionStacks": "prod"}}')
    assert offline.main(["dev", "--config", str(bad)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"bin/policy: {bad}: production-protect.productionStacks: 'prod' is not a list of stack names")
