"""benchmarks/bench_evaluation.py's sides: the baseline is seed 000's end state, and both sides get what the CLI
would hand them. The timing itself is the benchmark's, not a test's (docs/testing.md#benchmarks)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tools.mock_run import plain, run_pulumi

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_evaluation
import flat_seed_000


def test_the_flat_program_is_seed_000s_end_state() -> None:
    run = run_pulumi(flat_seed_000.program)
    assert sorted(r.type for r in run.resources) == ["kubernetes:apps/v1:StatefulSet", "kubernetes:helm.sh/v3:Release"]
    release = plain(run.one("kubernetes:helm.sh/v3:Release", "longhorn").inputs)
    assert (release["chart"], release["version"], release["namespace"]) == ("longhorn", "1.6.2", "longhorn-system")
    spec = plain(run.one("kubernetes:apps/v1:StatefulSet", "postgres").inputs)["spec"]
    assert spec["replicas"] == 2
    assert spec["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "longhorn"
    [container] = spec["template"]["spec"]["containers"]
    assert container["image"] == "postgres:16"
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "POSTGRES_HOST_AUTH_METHOD": "trust",
        "PGDATA": "/var/lib/postgresql/data/pgdata",
    }


def test_a_stack_side_gets_its_config_as_the_cli_hands_it() -> None:
    spec = bench_evaluation.child_spec("prod", 9)
    assert spec["stack"] == "prod"
    assert all(isinstance(v, str) for v in spec["config"].values())  # objects as JSON text, as the engine sends them
    assert json.loads(spec["config"]["pgstack:postgres"])["replicas"] == 9
    assert bench_evaluation.child_spec(None, None) == {"stack": "dev", "config": {}, "secret_keys": []}
