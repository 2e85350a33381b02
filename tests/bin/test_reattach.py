"""bin/reattach, run for real against a fake `kubectl` that answers from a small cluster state and records its calls."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.stack_files import ROOT

FAKE_KUBECTL = """#!/usr/bin/env python3
import json, os, sys
state = json.load(open(os.environ["FAKE_KUBECTL_STATE"]))
argv = sys.argv[1:]
stdin = sys.stdin.read() if argv[:2] == ["create", "-f"] else None
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps({"argv": argv, "stdin": stdin}) + "\\n")
if argv[:2] == ["get", "namespace"]:
    sys.exit(0 if argv[2] in state["namespaces"] else 1)
if argv[:2] == ["get", "pv"]:
    print("\\n".join("\\t".join(pv) for pv in state["pvs"]))
    sys.exit(0)
if argv[0] == "-n" and argv[2:4] == ["get", "pvc"]:
    sys.exit(0 if f"{argv[1]}/{argv[4]}" in state["pvcs"] else 1)
sys.exit(0)
"""

# name, phase, claim namespace, claim name, class, capacity
PRIMARY = ["pvc-aaa", "Released", "postgres", "data-postgres-0", "longhorn-postgres", "4Gi"]
STANDBY = ["pvc-bbb", "Released", "postgres", "data-postgres-standby-1", "longhorn-postgres", "4Gi"]
OTHERS = [
    ["pvc-ccc", "Bound", "postgres", "data-postgres-0", "longhorn-postgres", "4Gi"],  # not Released
    ["pvc-ddd", "Released", "postgres-staging", "data-postgres-0", "longhorn-postgres-staging", "2Gi"],  # another stack
    ["pvc-eee", "Released", "postgres", "postgres-dumps", "longhorn-postgres", "40Gi"],  # not a data claim
    ["pvc-fff", "Released", "postgres", "data-orders-0", "longhorn-postgres", "4Gi"],  # another set's
]


def _run(tmp_path: Path, state: dict[str, Any], *args: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "kubectl").write_text(FAKE_KUBECTL)
    (fake / "kubectl").chmod(0o755)
    (tmp_path / "state.json").write_text(json.dumps({"namespaces": ["postgres"], "pvcs": [], **state}))
    log = tmp_path / "kubectl.log"
    env = {
        "PATH": f"{fake}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_KUBECTL_STATE": str(tmp_path / "state.json"),
        "FAKE_KUBECTL_LOG": str(log),
    }
    result = subprocess.run([str(ROOT / "bin" / "reattach"), *args], env=env, capture_output=True, text=True, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def _changes(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in calls if c["argv"][0] in ("patch", "create")]


def test_reattach_binds_each_released_data_volume_to_its_claim(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, {"pvs": [*OTHERS, STANDBY, PRIMARY]}, "postgres")
    assert result.returncode == 0, result.stderr
    changes = _changes(calls)
    assert [c["argv"] for c in changes] == [
        ["patch", "pv", "pvc-aaa", "--type", "merge", "-p", '{"spec":{"claimRef":null}}'],
        ["create", "-f", "-"],
        ["patch", "pv", "pvc-bbb", "--type", "merge", "-p", '{"spec":{"claimRef":null}}'],
        ["create", "-f", "-"],
    ]
    claims = [yaml.safe_load(c["stdin"]) for c in changes if c["argv"][0] == "create"]
    assert claims[0] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-postgres-0", "namespace": "postgres"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "longhorn-postgres",
            "volumeName": "pvc-aaa",
            "resources": {"requests": {"storage": "4Gi"}},
        },
    }
    assert (claims[1]["metadata"]["name"], claims[1]["spec"]["volumeName"]) == ("data-postgres-standby-1", "pvc-bbb")
    assert "holdDatabase false" in result.stdout


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, {"pvs": [PRIMARY]}, "postgres", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "pvc-aaa -> postgres/data-postgres-0" in result.stdout
    assert _changes(calls) == []


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"pvs": [PRIMARY, ["pvc-new", *PRIMARY[1:]]]}, "two Released volumes"),
        ({"pvs": [PRIMARY], "pvcs": ["postgres/data-postgres-0"]}, "exists already"),
        ({"pvs": [PRIMARY], "namespaces": []}, "holdDatabase true first"),
        ({"pvs": OTHERS}, "nothing to do"),
    ],
    ids=["two candidates", "the claim exists", "no namespace", "no volume"],
)
def test_reattach_changes_nothing_when_in_doubt(tmp_path: Path, state: dict[str, Any], message: str) -> None:
    result, calls = _run(tmp_path, state, "postgres")
    assert result.returncode == 1
    assert message in result.stderr
    assert _changes(calls) == []


@pytest.mark.parametrize("args", [[], ["Postgres"], ["postgres", "pg", "extra"], ["postgres", "--force"]])
def test_bad_arguments_fail_before_kubectl_runs(tmp_path: Path, args: list[str]) -> None:
    result, calls = _run(tmp_path, {"pvs": [PRIMARY]}, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("bin/reattach: ")
    assert calls == []
