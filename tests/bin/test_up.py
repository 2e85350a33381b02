"""bin/up and bin/pulumi-env, run for real against a fake `pulumi` that records its calls.

Each test copies the scripts and the stack files into a temporary checkout with a stand-in
.venv (its pip records instead of installing), and runs them from a clean environment, as a fresh
shell would: only PATH (the fake pulumi first) and HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from stacks.mock_run import ROOT

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
    shutil.copy2(ROOT / "policy" / "requirements.txt", root / "policy" / "requirements.txt")
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
        '  to create it: cp Pulumi.dev.yaml Pulumi.stagin.yaml, edit it (README "Add an environment"), then bin/up stagin',
    ]
    assert checkout.calls() == []
    assert not (checkout.root / ".venv" / "bin" / "pip.log").exists()
    assert not (checkout.root / ".pulumi-state").exists()


def test_up_refuses_a_name_pulumi_would_refuse(checkout: Checkout) -> None:
    result = checkout.run("bin/up", "../Pulumi")
    assert result.returncode == 2
    assert "'../Pulumi' is not a Pulumi stack name" in result.stderr
    assert checkout.calls() == []


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
        {"argv": ["up", "--stack", stack, "--policy-pack", "policy", "--yes"], "env": env},
    ]
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    secret = passphrase.read_text().strip()
    assert len(secret) >= 40
    assert secret not in result.stdout + result.stderr
    assert (checkout.root / ".venv" / "bin" / "pip.log").read_text().split() == [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        "requirements.txt",
    ]
    policy_pip = checkout.root / "policy" / "venv" / "bin" / "pip.log"
    assert policy_pip.read_text().split() == ["install", "--quiet", "--disable-pip-version-check", "-r", "policy/requirements.txt"]


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
