"""bin/policy: the policy pack on a stack's mock render, without the Pulumi CLI or a cluster.

Its entry point (policy/offline.py main), in-process; the script itself runs as the README writes it, in a
shell with no pulumi on PATH, in test_readme_commands.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from policy import offline
from tools.stack_files import ROOT


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


# python3 -m venv DIR makes a DIR/bin/python that fails the import check (nothing installed yet) and runs
# anything else, and a pip that records its arguments.
FAKE_PYTHON3 = """#!/bin/sh
[ "$1 $2" = "-m venv" ] || exit 3
mkdir -p "$3/bin"
printf '#!/bin/sh\\n[ "$1" = -c ] && exit 1\\necho "$*" >"$(dirname "$0")/python.log"\\n' >"$3/bin/python"
printf '#!/bin/sh\\necho "$*" >>"$(dirname "$0")/pip.log"\\n' >"$3/bin/pip"
chmod +x "$3/bin/python" "$3/bin/pip"
"""


def test_the_script_makes_venv_with_the_pack_requirements_on_a_fresh_clone(tmp_path: Path) -> None:
    """No .venv yet: bin/policy makes it, installs the program's and the pack's requirements, then runs the pack."""
    root = tmp_path / "repo dir"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(ROOT / "bin" / "policy", root / "bin" / "policy")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "python3").write_text(FAKE_PYTHON3)
    (tools / "python3").chmod(0o755)
    env = {"PATH": f"{tools}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([str(root / "bin" / "policy"), "prod"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    venv = root / ".venv" / "bin"
    # One line: the paths hold a space, so they are compared whole.
    assert (venv / "pip.log").read_text() == (
        f"install --quiet --disable-pip-version-check -r {root}/requirements.txt -r {root}/policy/requirements.txt\n"
    )
    assert (venv / "python.log").read_text().split() == ["-m", "policy.offline", "prod"]


def test_prod_is_judged_with_a_stand_in_for_the_secret_its_file_cannot_hold(capsys: pytest.CaptureFixture[str]) -> None:
    # prod archives WAL with pgstack:dumpS3, which only a deploying machine's config holds: the offline run says it
    # stands in for it, and judges what prod deploys (production-wal-archiving is met).
    assert offline.main(["prod"]) == 0
    out, err = capsys.readouterr()
    assert "bin/policy: a stand-in for pgstack:dumpS3 (secret, not in the stack file; a deploy sets it)" in err
    assert "production-wal-archiving" not in out
    # A stack that needs no S3 account gets no stand-in.
    assert offline.main(["staging"]) == 0
    assert "stand-in" not in capsys.readouterr().err
