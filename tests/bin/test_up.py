"""bin/up and bin/pulumi-env, run for real against a fake `pulumi` that records its calls.

Each test copies the scripts and the stack files into a temporary checkout with a stand-in
.venv (its pip records instead of installing), and runs them from a clean environment, as a fresh
shell would: only PATH (the fake pulumi first) and HOME.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tools.stack_files import ROOT

# The stacks of the test checkout: a dotted name among them, sorted as bin/up lists them (C locale).
CHECKOUT_STACKS = ("dev", "eu.prod", "prod", "staging")
FAKE_PULUMI = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ.get("FAKE_PULUMI_LOG", "") or sys.argv[0] + ".log", "a") as log:
    env = {k: v for k, v in os.environ.items() if k.startswith("PULUMI_")}
    log.write(json.dumps({"argv": sys.argv[1:], "env": env}) + "\\n")
"""


@dataclass
class Checkout:
    root: Path
    bin_dir: Path  # holds the fake pulumi
    log: Path

    def run(self, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        base = {"PATH": f"{self.bin_dir}:/usr/bin:/bin", "HOME": str(self.root.parent), "FAKE_PULUMI_LOG": str(self.log)}
        return subprocess.run(list(command), cwd=self.root, env=base | (env or {}), capture_output=True, text=True, timeout=60)

    def calls(self) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    root = tmp_path / "repo dir"  # a space: every path must be quoted
    (root / "bin").mkdir(parents=True)
    for script in ("up", "pulumi-env"):
        shutil.copy2(ROOT / "bin" / script, root / "bin" / script)
    for path in (ROOT / "requirements.txt", ROOT / "Pulumi.yaml"):
        shutil.copy2(path, root / path.name)
    # The checkout's own stack files, not the user's: bin/up only needs them to exist, and the tests' stack
    # list must not change when a user adds, renames or removes one (README "Add an environment").
    for stack in CHECKOUT_STACKS:
        (root / f"Pulumi.{stack}.yaml").write_text(f"# {stack}: a stack file of the test checkout\nconfig: {{}}\n")
    (root / "policy").mkdir()
    for name in ("requirements.txt", "config.json"):
        shutil.copy2(ROOT / "policy" / name, root / "policy" / name)
    for venv in (root / ".venv" / "bin", root / "policy" / "venv" / "bin"):
        venv.mkdir(parents=True)
        _executable(venv / "python", "#!/bin/sh\nexit 0\n")
        _executable(venv / "pip", '#!/bin/sh\necho "$*" >>"$(dirname "$0")/pip.log"\n')
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    _executable(fake_bin / "pulumi", FAKE_PULUMI)
    return Checkout(root=root, bin_dir=fake_bin, log=tmp_path / "pulumi.log")


def test_up_refuses_a_stack_without_its_file_before_anything_runs(checkout: Checkout) -> None:
    result = checkout.run("bin/up", "stagin")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "bin/up: no stack file Pulumi.stagin.yaml, so there is no stack 'stagin' to deploy.",
        f"  stacks here: {' '.join(CHECKOUT_STACKS)}",
        "  to create it: cp Pulumi.dev.yaml Pulumi.stagin.yaml, edit it (docs/operations.md#add-an-environment), then bin/up stagin",
    ]
    assert checkout.calls() == []
    assert not (checkout.root / ".venv" / "bin" / "pip.log").exists()
    assert not (checkout.root / ".pulumi-state").exists()


def test_up_refuses_a_name_pulumi_would_refuse(checkout: Checkout) -> None:
    result = checkout.run("bin/up", "../Pulumi")
    assert result.returncode == 2
    assert "'../Pulumi' is not a Pulumi stack name" in result.stderr
    assert checkout.calls() == []


def _pip_installs(venv: Path) -> str:
    """The requirements file the stand-in pip of a virtualenv was asked to install, quietly."""
    args = (venv / "bin" / "pip.log").read_text().split()
    assert args[:-1] == ["install", "--quiet", "--disable-pip-version-check", "-r"], args
    return args[-1]


@pytest.mark.parametrize("stack", ["dev", "eu.prod"], ids=["the default stack", "a dotted stack"])
def test_up_deploys_a_stack_with_the_local_backend(checkout: Checkout, stack: str) -> None:
    result = checkout.run("bin/up", stack, "--yes")
    assert result.returncode == 0, result.stderr
    state = checkout.root / ".pulumi-state"
    passphrase = state / "passphrase"
    env = {"PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase)}
    assert checkout.calls() == [
        {"argv": ["stack", "select", "--create", stack], "env": env},
        # The policy pack with every update, as in CI: an armed uninstall is refused on every stack.
        # The pack's config too: the stacks policy/config.json lists get the production rules.
        {"argv": ["up", "--stack", stack, "--policy-pack", "policy", "--policy-pack-config", "policy/config.json", "--yes"], "env": env},
    ]
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    secret = passphrase.read_text().strip()
    assert len(secret) >= 40
    assert secret not in result.stdout + result.stderr
    assert _pip_installs(checkout.root / ".venv") == "requirements.txt"
    assert _pip_installs(checkout.root / "policy" / "venv") == "policy/requirements.txt"


def test_up_keeps_the_passphrase_and_a_backend_of_your_own(checkout: Checkout) -> None:
    assert checkout.run("bin/up").returncode == 0
    passphrase = checkout.root / ".pulumi-state" / "passphrase"
    first = passphrase.read_text()
    assert checkout.run("bin/up", "dev").returncode == 0
    assert passphrase.read_text() == first  # generated once: a new one would lock the state's secrets away
    mine = {"PULUMI_BACKEND_URL": "s3://bucket/state", "PULUMI_CONFIG_PASSPHRASE": "not printed"}
    checkout.log.unlink()
    result = checkout.run("bin/up", "prod", env=mine)
    assert result.returncode == 0, result.stderr
    assert [c["env"] for c in checkout.calls()] == [mine, mine]
    assert "not printed" not in result.stdout + result.stderr


def test_pulumi_env_gives_a_fresh_shell_the_backend_and_never_prints_the_passphrase(checkout: Checkout) -> None:
    printed = checkout.run("bin/pulumi-env")
    assert printed.returncode == 0, printed.stderr
    state = checkout.root / ".pulumi-state"
    passphrase = state / "passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    assert passphrase.read_text().strip() not in printed.stdout
    # The README's commands, in a shell that has nothing but the eval (run from elsewhere: the paths are absolute).
    shell = checkout.run("bash", "-c", 'cd / && eval "$("$0"/bin/pulumi-env)" && pulumi stack output --stack dev', str(checkout.root))
    assert shell.returncode == 0, shell.stderr
    env = {"PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase)}
    assert checkout.calls() == [{"argv": ["stack", "output", "--stack", "dev"], "env": env}]
    # Exported variables win, and a passphrase given in the environment is never echoed back.
    mine = checkout.run("bin/pulumi-env", env={"PULUMI_BACKEND_URL": "s3://bucket/state", "PULUMI_CONFIG_PASSPHRASE": "hunter2"})
    assert mine.stdout == "export PULUMI_BACKEND_URL=s3://bucket/state\n"


def test_pulumi_env_tightens_a_passphrase_file_left_readable(checkout: Checkout) -> None:
    state = checkout.root / ".pulumi-state"
    state.mkdir()
    (state / "passphrase").write_text("kept\n")
    os.chmod(state / "passphrase", 0o644)
    assert checkout.run("bin/pulumi-env").returncode == 0
    assert stat.S_IMODE((state / "passphrase").stat().st_mode) == 0o600
    assert (state / "passphrase").read_text() == "kept\n"


# Stands in for python3 when there is no .venv: `python3 -m venv DIR` makes DIR/bin/python and a pip that records.
FAKE_PYTHON3 = """#!/bin/sh
[ "$1 $2" = "-m venv" ] || exit 3
mkdir -p "$3/bin"
printf '#!/bin/sh\\nexit 0\\n' >"$3/bin/python"
printf '#!/bin/sh\\necho "$*" >>"$(dirname "$0")/pip.log"\\n' >"$3/bin/pip"
chmod +x "$3/bin/python" "$3/bin/pip"
"""


def _pinned_cli_version() -> str:
    (version,) = re.findall(r"^PULUMI_VERSION=(\S+)$", (ROOT / "bin" / "up").read_text(), re.MULTILINE)
    return str(version)


def test_up_without_the_cli_makes_venv_then_names_the_pinned_cli_and_the_offline_commands(checkout: Checkout) -> None:
    """A fresh clone without the CLI: .venv exists afterwards (the render and the policy need it), and the
    message gives the version CI runs, how to install it, and the offline commands for this stack, exactly."""
    shutil.rmtree(checkout.root / ".venv")
    no_cli = checkout.bin_dir.parent / "no-cli"
    no_cli.mkdir()
    _executable(no_cli / "python3", FAKE_PYTHON3)
    result = checkout.run("bin/up", "staging", env={"PATH": f"{no_cli}:/usr/bin:/bin"})
    assert result.returncode == 1
    version = _pinned_cli_version()
    assert result.stderr.splitlines() == [
        "bin/up: the Pulumi CLI is not installed, so nothing was deployed (.venv is ready for the offline tools).",
        f"  install the version CI pins: curl -fsSL https://get.pulumi.com | sh -s -- --version {version}",
        "  (or https://www.pulumi.com/docs/iac/download-install/), then run bin/up staging again",
        "  without the CLI or a cluster (README.md#day-to-day):",
        "    render: .venv/bin/python -m tools.render staging --out rendered/staging",
        "    tests:  bin/test --fast",
        "    policy: bin/policy staging",
    ]
    assert _pip_installs(checkout.root / ".venv") == "requirements.txt"
    assert checkout.calls() == []
    assert not (checkout.root / ".pulumi-state").exists()
    # Every command the message names exists in the repository: the render module, bin/test, bin/policy.
    assert (ROOT / "tools" / "render.py").is_file()
    assert all(os.access(ROOT / "bin" / tool, os.X_OK) for tool in ("test", "policy"))


def test_the_pinned_cli_is_the_one_ci_runs_and_the_sdk_pins() -> None:
    """bin/up's PULUMI_VERSION, every pulumi/actions step's pulumi-version, and the pulumi SDK in requirements.txt."""
    version = _pinned_cli_version()
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("pulumi/actions@"):
                    assert step["with"]["pulumi-version"] == version, f"{workflow.name}: pulumi-version"
    assert f"pulumi=={version}" in (ROOT / "requirements.txt").read_text().split()
