"""bin/policy: the policy pack on a stack's mock render, without the Pulumi CLI or a cluster.

One run through the script itself, in a shell with no pulumi on PATH; the rest calls its entry point
(policy/offline.py main) in-process, on the same config file the workflows and bin/up pass the CLI.
"""

from __future__ import annotations

import json
import subprocess
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


def test_the_script_runs_without_the_cli_and_fails_on_a_mandatory_violation(tmp_path: Path) -> None:
    """dev listed as production: its one Longhorn replica and unprotected resources are mandatory violations."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_as_production("dev")))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [str(ROOT / "bin" / "policy"), "dev", "--config", str(config)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("mandatory production-protect: kubernetes:apps/v1:StatefulSet postgres: ") for line in lines), lines
    assert any(line.startswith("mandatory production-longhorn-replicas: kubernetes:storage.k8s.io/v1:StorageClass ") for line in lines)
    assert all(line.split(" ", 1)[0] in ("mandatory", "advisory") for line in lines)
    assert "bin/policy: dev (production rules, config.json)" in result.stderr


def test_every_stack_passes_with_the_repository_config(capsys: pytest.CaptureFixture[str]) -> None:
    """prod is a production stack in policy/config.json and passes; exit 0, one line per (advisory) violation."""
    assert offline.main(["prod"]) == 0
    out, err = capsys.readouterr()
    assert not [line for line in out.splitlines() if line.startswith("mandatory")]
    assert "bin/policy: prod (production rules, config.json)" in err


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
