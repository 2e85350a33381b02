"""bin/recover-rollout, run for real against a fake `kubectl` that serves a cluster from a JSON file.

The fake answers the two reads the script makes (a StatefulSet, a pod, with -o jsonpath) and the one
write (a pod delete with DeleteOptions preconditions through --raw), checks the preconditions as the
API server does, and logs every call, so the tests can assert that nothing else was ever touched.
"""

from __future__ import annotations

import json
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fixed_config
from tools import recover
from tools.stack_files import ROOT

SCRIPT = ROOT / "bin" / "recover-rollout"

FAKE_KUBECTL = r"""#!/usr/bin/env python3
import json, os, re, sys
state_path, log_path = os.environ["FAKE_KUBE_STATE"], os.environ["FAKE_KUBE_LOG"]
argv = sys.argv[1:]
with open(log_path, "a") as log:
    log.write(json.dumps(argv) + "\n")
state = json.load(open(state_path))

def opt(name):
    return argv[argv.index(name) + 1] if name in argv else None

def jsonpath(obj, template):
    def one(expr):
        node = obj
        for step in re.findall(r'\.([^.\[]+)|\[\?\(@\.(\w+)=="([^"]*)"\)\]', expr):
            key, fkey, fval = step
            if key:
                node = node.get(key) if isinstance(node, dict) else None
            else:
                node = next((x for x in node or [] if x.get(fkey) == fval), None)
        return "" if node is None else str(node)
    return re.sub(r"\{([^}]*)\}", lambda m: one(m.group(1)), template)

if "delete" in argv:
    path = opt("--raw")
    pod = path.rsplit("/", 1)[1]
    body = json.load(open(opt("-f")))["preconditions"]
    obj = state["pods"].get(pod)
    if obj is None:
        sys.exit("Error from server (NotFound)")
    meta = obj["metadata"]
    if body.get("uid") != meta["uid"] or body.get("resourceVersion") != meta["resourceVersion"]:
        sys.exit("Error from server (Conflict): Precondition failed")
    del state["pods"][pod]
    state.setdefault("deleted", []).append(pod)
    json.dump(state, open(state_path, "w"))
    sys.exit(0)

kind, name = argv[argv.index("get") + 1], argv[argv.index("get") + 2]
table = {"statefulset": "statefulsets", "pod": "pods"}[kind]
obj = state[table].get(name)
if obj is None:
    sys.exit(0 if "--ignore-not-found" in argv else "NotFound")
print(jsonpath(obj, opt("-o").removeprefix("jsonpath=")), end="")
if kind == "pod" and state.get("bump_on_get"):
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
    json.dump(state, open(state_path, "w"))
"""

GOOD, BAD = "postgres-7c9d8b6f5", "postgres-5f6b7d8c9"


def statefulset(name: str, update: str, replicas: int, start: int = 0, generation: int = 4, observed: int = 4) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas}
    if start:
        spec["ordinals"] = {"start": start}
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "generation": generation},
        "spec": spec,
        "status": {"observedGeneration": observed, "updateRevision": update, "currentRevision": BAD},
    }


def pod(name: str, owner: str, revision: str, ready: bool, version: str = "100") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": version,
            "labels": {"controller-revision-hash": revision},
            "ownerReferences": [{"kind": "StatefulSet", "name": owner, "uid": f"uid-{owner}"}],
        },
        "status": {"conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": str(ready)}]},
    }


def cluster(primary_update: str = GOOD, primary_ready: bool = False, **extra: Any) -> dict[str, Any]:
    """prod's sets after the revert: the primary's pod still on the bad revision; two ready standbys."""
    return {
        "statefulsets": {
            "postgres": statefulset("postgres", primary_update, 1),
            "postgres-standby": statefulset("postgres-standby", GOOD, 2, start=1),
        },
        "pods": {
            "postgres-0": pod("postgres-0", "postgres", BAD, primary_ready),
            "postgres-standby-1": pod("postgres-standby-1", "postgres-standby", GOOD, True),
            "postgres-standby-2": pod("postgres-standby-2", "postgres-standby", GOOD, True),
        },
        **extra,
    }


@dataclass
class Kube:
    state: Path
    log: Path
    bin_dir: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.bin_dir}:/usr/bin:/bin", "HOME": str(self.bin_dir), "FAKE_KUBE_STATE": str(self.state)}
        env["FAKE_KUBE_LOG"] = str(self.log)
        return subprocess.run([str(SCRIPT), *args], cwd=self.bin_dir, env=env, capture_output=True, text=True, timeout=60)

    def set(self, content: dict[str, Any]) -> None:
        self.state.write_text(json.dumps(content))

    def now(self) -> dict[str, Any]:
        return dict(json.loads(self.state.read_text()))

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def kube(tmp_path: Path) -> Kube:
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    kubectl = fake_bin / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IXUSR)
    return Kube(state=tmp_path / "cluster.json", log=tmp_path / "kubectl.log", bin_dir=fake_bin)


def _deletes(kube: Kube) -> list[list[str]]:
    return [c for c in kube.calls() if "delete" in c]


def test_after_the_revert_the_stuck_primary_pod_is_deleted_and_nothing_else(kube: Kube) -> None:
    kube.set(cluster())
    result = kube.run("prod")
    assert result.returncode == 0, result.stderr
    assert "postgres-0: deleted (revision postgres-5f6b7d8c9, not Ready); the controller recreates it from postgres-7c9d8b6f5" in (
        result.stdout
    )
    assert "postgres-standby-1: kept: Ready" in result.stdout
    assert kube.now()["deleted"] == ["postgres-0"]
    [delete] = _deletes(kube)
    assert delete[:3] == ["delete", "--raw", "/api/v1/namespaces/postgres-prod/pods/postgres-0"]
    # Only reads of the stack's sets and pods, in the stack's namespace: never a claim.
    for call in kube.calls():
        assert call in (delete,) or (call[:3] == ["-n", "postgres-prod", "get"] and call[3] in ("statefulset", "pod")), call


def test_before_the_fix_is_applied_nothing_is_deleted(kube: Kube) -> None:
    kube.set(cluster(primary_update=BAD))
    result = kube.run("prod")
    assert result.returncode == 1
    assert "postgres-0: kept: not Ready, but already on the set's current revision postgres-5f6b7d8c9: the fix is not applied yet" in (
        result.stdout
    )
    assert "nothing deleted" in result.stdout
    assert _deletes(kube) == []


def test_a_ready_pod_on_an_old_revision_is_never_deleted(kube: Kube) -> None:
    kube.set(cluster(primary_ready=True))
    result = kube.run("prod")
    assert result.returncode == 1
    assert "postgres-0: kept: Ready: a ready pod is never deleted" in result.stdout
    assert _deletes(kube) == []


def test_a_set_the_controller_has_not_caught_up_with_is_left_alone(kube: Kube) -> None:
    state = cluster()
    state["statefulsets"]["postgres"]["status"]["observedGeneration"] = 3
    kube.set(state)
    result = kube.run("prod")
    assert result.returncode == 1
    assert "postgres: kept: the controller has not caught up with generation 4 yet (observed 3)" in result.stdout
    assert _deletes(kube) == []


def test_a_pod_that_changed_after_it_was_read_is_not_deleted(kube: Kube) -> None:
    """The delete's preconditions: a pod that became Ready between the read and the delete has a new resourceVersion."""
    kube.set(cluster(bump_on_get=True))
    result = kube.run("prod")
    assert result.returncode == 1
    assert "postgres-0: not deleted: it changed since it was read" in result.stdout
    [delete] = _deletes(kube)
    body_file = Path(delete[delete.index("-f") + 1])
    assert not body_file.exists()  # the temporary body is removed
    assert "postgres-0" in kube.now()["pods"]


def test_a_pod_of_another_owner_is_never_deleted(kube: Kube) -> None:
    state = cluster()
    state["pods"]["postgres-0"]["metadata"]["ownerReferences"][0]["uid"] = "uid-someone-else"
    kube.set(state)
    result = kube.run("prod")
    assert result.returncode == 1 and "postgres-0: kept: not owned by the StatefulSet" in result.stdout
    assert _deletes(kube) == []


def test_dry_run_deletes_nothing_and_context_reaches_every_call(kube: Kube) -> None:
    kube.set(cluster())
    result = kube.run("prod", "--dry-run", "--context", "lab")
    assert result.returncode == 0, result.stderr
    assert "postgres-0: would delete" in result.stdout
    assert _deletes(kube) == []
    assert kube.calls() and all(call[:2] == ["--context", "lab"] for call in kube.calls())


def test_a_stack_without_its_file_is_refused_before_any_kubectl(kube: Kube) -> None:
    kube.set(cluster())
    result = kube.run("prdo")
    assert result.returncode == 1
    assert "no stack file Pulumi.prdo.yaml" in result.stderr
    assert kube.calls() == []


def test_a_cloudnative_pg_stack_is_refused_with_where_to_look(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The operator runs that engine's pods: there is no StatefulSet to unstick (tools/recover.py, in process)."""
    config = fixed_config("dev")
    config["pgstack:postgres"] = {**config["pgstack:postgres"], "engine": "cloudnative-pg"}
    monkeypatch.setattr(recover, "stack_config", lambda stack: config)
    assert recover.main(["ops"]) == 1
    assert capsys.readouterr().err == (
        "recover-rollout: Pulumi.ops.yaml runs pgstack:postgres.engine cloudnative-pg: its operator runs the pods, there is "
        f"no StatefulSet rollout to unstick; see the Cluster's phase with `kubectl -n {config['pgstack:namespace']} get "
        "cluster postgres` (docs/operations.md#cloudnative-pg)\n"
    )
    config["pgstack:postgres"]["engine"] = "statefulset"
    assert recover.main(["ops"]) == 0
