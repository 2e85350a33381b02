"""README "Add an environment": with new Pulumi.<name>.yaml files every unit test that reads the stack files
passes, and every per-stack test runs for each new stack.

Slow (it runs pytest again, in a copy of the repository with new stack files): deselect with -m "not slow".
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.repo_copy import COLLECTED, INNER, ONLY_STACKS, copy_repository, run_in
from tests.stacks.test_secure_config import secure_stack_file
from tools.stack_files import ROOT

# A realistic second staging stack, unlike every committed one: two pods, reached through a NodePort,
# its own namespace and StorageClass on a shared Longhorn, and an image by tag only.
STAGE2 = """\
# stage2: a second staging database on dev's cluster, reached through a NodePort.
config:
  pgstack:namespace: postgres-stage2
  pgstack:longhorn:
    install: false
  pgstack:storage:
    className: longhorn-postgres-stage2
    numberOfReplicas: 2
  pgstack:postgres:
    image:
      tag: "18.1"
    replicas: 2
    storageSize: 2Gi
    service:
      type: NodePort
      nodePort: 30543
"""
# A dotted name, and every other knob a per-stack test reads: an existing StorageClass, another base
# name, port and major, no application user, a LoadBalancer, clients by CIDR, pulled Always by tag.
EU_LAB = """\
config:
  pgstack:namespace: lab
  pgstack:protect: false
  pgstack:longhorn:
    install: false
  pgstack:storage:
    existingClass: standard
  pgstack:postgres:
    name: pg
    image:
      tag: "17.6"
      pullPolicy: Always
    replicas: 3
    username: null
    storageSize: 5Gi
    shmSize: 512Mi
    service:
      type: LoadBalancer
      port: 6432
    networkPolicy:
      allowFrom:
        - cidr: 10.20.0.0/16
        - podLabels: {app: api}
          namespaceLabels: {team: payments}
"""
# qa: a copy of dev, as the README's first step makes it; vault: prod with its backup target set as the README
# says (pulumi config set --secret --path backupTarget.url ...), in the form the CLI writes it.
NEW_STACKS = {
    "qa": (ROOT / "Pulumi.dev.yaml").read_text(),
    "stage2": STAGE2,
    "eu.lab": EU_LAB,
    "vault": secure_stack_file((ROOT / "Pulumi.prod.yaml").read_text(), dump_s3=False),
}

# A committed stack file as a user edits it (the example: Longhorn turned on in staging, in its own
# namespace); nothing that snapshots the live files may fail on it (the URN guard uses its own copies).
EDITED = {
    "staging": """\
config:
  pgstack:namespace: postgres-staging
  pgstack:longhorn:
    install: true
    namespace: longhorn-staging
  pgstack:storage:
    className: longhorn-postgres-staging
  pgstack:postgres:
    replicas: 2
"""
}


# How a test module reaches the live stack files (tests/conftest.py, tools/stack_files.py), or runs per stack (a
# `stack` parameter): a module that names none of these cannot see a new or edited stack file (the URN guard and
# the fixed_config tests use their own copies). The pod-script tests (tests/components/scripts/) never read them.
# Names, not the module: importing ROOT from tools.stack_files reads no stack file.
LIVE_STACK_FILES = re.compile(
    r"\b(stack_config|stack_settings|stack_file|STACKS|settings_of|stack_run|recorded_run|stack: str)\b|\bstacks\(\)|Pulumi\.\*"
)


# How a test module goes through every stack file at once (not one per test id): its unit tests all run in the
# copy, since a new or edited file can break them whether an id names it or not.
EVERY_STACK_FILE = re.compile(r"\bstacks\(\)|Pulumi\.\*|\bSTACKS\b")


def readers_of_stack_files(repo: Path) -> list[str]:
    """The test modules that read the live stack files, as paths relative to the copy."""
    modules = sorted((repo / "tests").rglob("test_*.py"))
    return [str(m.relative_to(repo)) for m in modules if "scripts" not in m.parts and LIVE_STACK_FILES.search(m.read_text())]


def _stack_of(test_id: str) -> str | None:
    """The stack a per-stack test id runs for: test_x[dev] and test_x[dev-1.30.0] run for dev."""
    match = re.search(r"\[(.*)\]$", test_id)
    tokens = match.group(1).split("-") if match else []
    return next((t for t in tokens if t in ("dev", *NEW_STACKS)), None)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get(INNER) == "1", reason="already inside a copy")
def test_every_per_stack_test_passes_for_new_stack_files(tmp_path: Path) -> None:
    repo = copy_repository(tmp_path)
    for name, text in (NEW_STACKS | EDITED).items():
        (repo / f"Pulumi.{name}.yaml").write_text(text)

    # Every test of the new and edited stacks (all tiers but slow) in the modules that read the stack files, and
    # every unit test of the modules that go through all stack files at once (EVERY_STACK_FILE: a hard-coded list
    # of stacks, a snapshot of the live files break there whether an id names the stack or not), in one process
    # (the rest of the suite keeps this machine's cores busy). The other modules' unit tests that name no stack
    # are the main run's, and cost this run 40 s more CPU (bin/test's 120 s budget). -k matches module file
    # names and the tier marks too (tests/conftest.py gives each test one); the committed stacks' per-stack tests
    # run outside the copy, so ONLY_STACKS leaves them out. pytest lists every test it collected (before any
    # deselection), so the expected per-stack set needs no second collection.
    report, collected = tmp_path / "report.xml", tmp_path / "collected.txt"
    readers = readers_of_stack_files(repo)
    assert {"tests/bin/test_up.py", "tests/tools/test_changes.py", "tests/tools/test_stack_files.py"} <= set(readers), readers
    every = [Path(m).name for m in readers if EVERY_STACK_FILE.search((repo / m).read_text())]
    assert {"test_stack_files.py", "test_shared_cluster.py", "test_config.py"} <= set(every), every
    selected = " or ".join([*NEW_STACKS, *EDITED, f"(unit and ({' or '.join(every)}))"])
    run = run_in(
        repo, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", *readers,
        "-m", "not slow", "-k", selected, f"--junitxml={report}",
        env={COLLECTED: str(collected), ONLY_STACKS: ",".join(NEW_STACKS | EDITED)},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    ids = collected.read_text().splitlines()
    # The URN guard runs for captured cases (fixtures), not per stack file: a new stack has no history.
    per_stack_dev = {i for i in ids if _stack_of(i) == "dev" and not i.startswith("tests/components/test_urns.py::")}
    assert len(per_stack_dev) >= 20, "the per-stack tests were not found"

    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        problems = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[f"{path}::{case.get('name')}"] = problems[0] if problems else "passed"
    # The unit tests of the modules that go through every stack file ran too (no id names a stack there), and passed.
    for module in ("tests/tools/test_shared_cluster.py", "tests/stacks/test_config.py"):
        ran_here = {i: o for i, o in outcomes.items() if i.startswith(f"{module}::") and _stack_of(i) is None}
        assert ran_here and set(ran_here.values()) == {"passed"}, (module, ran_here)
    for name in NEW_STACKS:
        # Every per-stack test that runs for dev runs for the new stack, and passes.
        expected = {re.sub(r"(?<=[\[-])dev(?=[\]-])", name, i) for i in per_stack_dev}
        ran = {i: outcome for i, outcome in outcomes.items() if _stack_of(i) == name}
        assert set(ran) == expected
        assert {i: o for i, o in ran.items() if o != "passed"} == {}
