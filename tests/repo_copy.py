"""A copy of the repository in a temporary directory, for tests that add stack files or run the CLI
and pytest the way a user would, without touching the working tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools.stack_files import ROOT

# Environments, caches and outputs: never part of the source.
NOT_SOURCE = (
    ".git",
    ".venv",
    ".venv-checkov",
    ".venv-moto",
    ".pg-majors",
    ".pulumi-state",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "__pycache__",
    "rendered",
    "results",
)
# Set in the copy's pytest run, so that tests which copy the repository do not run again inside it.
INNER = "PGSTACK_INNER_RUN"
# A file name: pytest (tests/conftest.py) writes there every test id it collected, before -k and -m deselect.
COLLECTED = "PGSTACK_COLLECTED"
# Comma-separated stack names: pytest (tests/conftest.py) deselects the per-stack tests of every other stack
# (the new-stack test's copy runs the whole unit tier, but the committed stacks' own tests run outside it).
ONLY_STACKS = "PGSTACK_ONLY_STACKS"


def source_files() -> list[str] | None:
    """The working tree's files git does not ignore (tracked or new, deleted ones left out), or None outside a
    git checkout: whatever environment or cache appears next (a virtualenv of 300 MB), the copy stays the source."""
    if not (ROOT / ".git").exists():
        return None
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [rel for rel in listed.split("\0") if rel and (ROOT / rel).is_file() and not set(Path(rel).parts) & set(NOT_SOURCE)]


def copy_repository(tmp: Path) -> Path:
    """tmp/repo: the working tree's source (uncommitted changes included), with ../shared beside it and
    the environments (.venv, .venv-checkov, .venv-moto) linked, as the tests and the bin/ scripts expect."""
    repo = tmp / "repo"
    listed = source_files()
    if listed is None:
        shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    else:
        for rel in listed:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    links = (
        ("shared", ROOT.parent / "shared"),
        ("repo/.venv-checkov", ROOT / ".venv-checkov"),
        ("repo/.venv-moto", ROOT / ".venv-moto"),
        ("repo/.venv", ROOT / ".venv"),
    )
    for name, target in links:
        if target.exists():
            (tmp / name).symlink_to(target)
    return repo


def run_in(repo: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python <args>` in the copy, with this interpreter (the project's .venv), and env added to ours."""
    # Not the xdist worker's identity: the copy's pytest is a run of its own (checkov_report keys its shared
    # report on it, and would otherwise read one left in the parent of every run's directory).
    ours = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
    full_env = ours | {INNER: "1", "PYTHONDONTWRITEBYTECODE": "1"} | (env or {})
    return subprocess.run([sys.executable, *args], cwd=repo, env=full_env, capture_output=True, text=True, timeout=timeout)
