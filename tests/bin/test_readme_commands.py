"""The everyday commands of the README and docs/ are exactly right: every script, module, file and stack they
name exists, and the offline ones (tests, render, policy) need no Pulumi CLI. The render and bin/policy run here
as the docs write them, in a shell with nothing but PATH and HOME (no pulumi); bin/up's run is in test_up.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
from pathlib import Path

from tools.stack_files import ROOT, stacks

# The sections whose commands a new user runs first: the set-up lines, "Day to day" (the README's five tasks and
# the operations doc's details), the policy pack's.
SECTIONS = (
    ("README.md", "# pgstack"),
    ("README.md", "## Day to day"),
    ("docs/operations.md", "## Day to day"),
    ("docs/ci-and-policy.md", "### Run the policy pack locally"),
)
BIN = re.compile(r"(?<![\w/.-])bin/[\w-]+")
# Flags whose value names a file or directory of the repository.
PATH_FLAGS = ("-r", "--policy-pack", "--policy-pack-config")


def section(title: str, path: str = "README.md") -> str:
    """A section's text, from its heading to the next heading of the same or a higher level."""
    text = (ROOT / path).read_text()
    level = title.split(" ", 1)[0]
    start = re.compile(rf"^{re.escape(title)}", re.MULTILINE).search(text)
    assert start, f"{path}: no heading {title!r}"
    end = re.compile(rf"^#{{1,{len(level)}}} ", re.MULTILINE).search(text, start.end())
    return text[start.start() : end.start() if end else len(text)]


def bash_blocks(text: str) -> list[list[str]]:
    """Each ```bash block as its command lines, comments stripped."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    return [[" ".join(shlex.split(line, comments=True)) for line in block.splitlines() if line.strip()] for block in blocks]


def commands() -> list[list[str]]:
    """Every simple command of those sections' blocks, split on && and ;."""
    out = []
    for path, title in SECTIONS:
        for block in bash_blocks(section(title, path)):
            for line in block:
                out += [shlex.split(part) for part in re.split(r"&&|;", line) if part.strip()]
    return out


def stack_arguments(argv: list[str]) -> list[str]:
    """The stacks a command names: bin/up|bin/policy <stack>, -m tools.render <stack>, --stack <stack>."""
    found = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--stack"]
    if argv[0] in ("bin/up", "bin/policy") and len(argv) > 1 and not argv[1].startswith("-"):
        found.append(argv[1])
    if argv[1:3] == ["-m", "tools.render"]:
        found.append(argv[3])
    return found


def test_the_set_up_is_exactly_two_commands() -> None:
    (block,) = bash_blocks(section("# pgstack").split("\n## ", 1)[0])
    assert block == ["bin/up", "bin/test"]


def test_the_offline_commands_are_tests_render_and_policy_as_bin_up_prints_them() -> None:
    """The first block of "Day to day" is the offline trio, in the README and in the operations doc; bin/up's
    missing-CLI message gives the same commands."""
    offline = bash_blocks(section("## Day to day"))[0]
    assert bash_blocks(section("## Day to day", "docs/operations.md"))[0] == offline
    assert offline == ["bin/test --fast", ".venv/bin/python -m tools.render prod --out rendered/prod", "bin/policy prod"]
    printed = re.findall(r'^    echo "    \w+: +(.*)"$', (ROOT / "bin" / "up").read_text(), re.MULTILINE)
    assert [line.replace("$stack", "prod") for line in printed] == [offline[1], offline[0], offline[2]]
    assert '"--fast"' in (ROOT / "bin" / "test").read_text()


def test_every_script_module_file_and_stack_the_commands_name_exists() -> None:
    found = commands()
    assert found, "no commands found in the sections"
    for argv in found:
        line = " ".join(argv)
        for script in BIN.findall(line):
            assert os.access(ROOT / script, os.X_OK), f"{line}: {script} is not an executable file"
        for i, arg in enumerate(argv[:-1]):
            if arg == "-m":
                assert importlib.util.find_spec(argv[i + 1]) is not None, f"{line}: no module {argv[i + 1]}"
            if arg in PATH_FLAGS:
                assert (ROOT / argv[i + 1]).exists(), f"{line}: no {argv[i + 1]} in the repository"
        for stack in stack_arguments(argv):
            assert stack in stacks(), f"{line}: no stack file Pulumi.{stack}.yaml"


def test_the_render_and_the_policy_commands_run_in_a_fresh_shell_without_the_cli(tmp_path: Path) -> None:
    render, policy = (next(argv for argv in commands() if test(argv)) for test in (_is_render, _is_policy))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = tmp_path / "out"
    rendered = subprocess.run(
        [*render[: render.index("--out") + 1], str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert rendered.returncode == 0, rendered.stderr
    assert any(path.name.endswith(".yaml") for path in out.rglob("*"))
    checked = subprocess.run(policy, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"bin/policy: {policy[1]} (production rules, config.json)" in checked.stderr  # prod is listed in policy/config.json


def _is_render(argv: list[str]) -> bool:
    return argv[1:3] == ["-m", "tools.render"]


def _is_policy(argv: list[str]) -> bool:
    return argv[0] == "bin/policy"
