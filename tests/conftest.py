"""Shared fixtures: run the real program (or one component) under Pulumi's mocks; and the test tiers.

Every test is in exactly one tier, a pytest marker (run one with -m, e.g. `bin/test --fast` is -m unit):

    unit      the mock tier: pure Python in the test's own process (the default)
    cli       runs the repository's commands in a fresh process, as a user types them: tests/bin/, and tests
              marked cli elsewhere (the render command)
    postgres  real PostgreSQL: everything under tests/components/scripts/, and tests marked postgres elsewhere
    scanner   external checkers: checkov, kubernetes-validate, shellcheck, zizmor, actionlint
    slow      runs pytest again in a copy of the repository

A test gets its tier from its explicit mark (@pytest.mark.<tier>, or a module's pytestmark), else from its
directory (TIER_DIRS), else unit. Two tier marks on one test stop the run at collection.

The full run starts the long tiers first (slow, postgres, scanner, cli, then unit), so that under xdist the
slow test and the servers do not end up as the tail of the run.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from stacks.config import CONFIG_KEYS, ConfigError, Settings, parse_settings
from stacks.config.load import load_secrets, load_settings
from tests.repo_copy import COLLECTED, ONLY_STACKS
from tools.mock_run import Registered, Run, replay, run_program, run_pulumi
from tools.stack_files import ROOT, StackFileError, load_yaml, project_defaults, stack_config, stacks

# A young generation of 50,000 objects instead of 700, from the start (collection too): a mock run allocates
# millions of short-lived objects, and at the default every run went through hundreds of collections, most of
# them promoting objects that die with the run anyway. The unit tier, interleaved runs (2026-12-06): 30.7-36.5 s
# of CPU at the default against 23.5-27.8 s; a worker's peak memory 335 MB -> 415 MB.
gc.set_threshold(50_000, 20, 100)

# Every Pulumi.<stack>.yaml, dotted names included. Per-stack tests take `stack` or `stack_run` and derive
# every expectation from that stack's own config (settings_of), never from its name.
STACKS = stacks()

# ------------------------------------------------------------------ tiers

TIERS = {
    "slow": "runs pytest again in a copy of the repository (tens of seconds)",
    "postgres": "runs real PostgreSQL servers or tools (tests/components/scripts/, and tests marked postgres)",
    "scanner": "runs an external checker: checkov, kubernetes-validate, shellcheck, zizmor, actionlint",
    "cli": "runs the repository's commands in a fresh process, as a user types them",
    "unit": "the mock tier: pure Python in the test's own process (bin/test --fast)",
}
# Directories whose tests are in a tier without a mark.
TIER_DIRS = {"tests/components/scripts/": "postgres", "tests/bin/": "cli"}


def pytest_configure(config: pytest.Config) -> None:
    for name, what in TIERS.items():
        config.addinivalue_line("markers", f"{name}: tier: {what}")


def tier_of(item: pytest.Item) -> str:
    """The tier of a test without an explicit tier mark: its directory's (TIER_DIRS), else unit."""
    path = item.nodeid.split("::", 1)[0]
    return next((tier for directory, tier in TIER_DIRS.items() if path.startswith(directory)), "unit")


def tiers_marked(item: pytest.Item) -> set[str]:
    return {m.name for m in item.iter_markers() if m.name in TIERS}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test its tier before -m deselects, check each has exactly one, and order long tiers first.

    Also, when COLLECTED names a file, write every collected test id there (before -k and -m deselect):
    the slow test reads it to know which tests exist in its copy of the repository."""
    if os.environ.get(COLLECTED):
        # Popped: a pytest that a test runs must not write over it.
        Path(os.environ.pop(COLLECTED)).write_text("".join(f"{item.nodeid}\n" for item in items))
    wrong = []
    for item in items:
        marked = tiers_marked(item)
        if not marked:
            item.add_marker(tier_of(item))
        elif len(marked) > 1:
            wrong.append(f"{item.nodeid}: {', '.join(sorted(marked))}")
    if wrong:
        raise pytest.UsageError("a test must be in exactly one tier (" + ", ".join(TIERS) + "):\n  " + "\n  ".join(wrong))
    _one_failure_per_bad_stack_file(config, items)
    if os.environ.get(ONLY_STACKS):
        only = os.environ[ONLY_STACKS].split(",")
        others = [i for i in items if getattr(getattr(i, "callspec", None), "params", {}).get("stack", only[0]) not in only]
        config.hook.pytest_deselected(items=others)
        gone = set(map(id, others))
        items[:] = [i for i in items if id(i) not in gone]
    order = list(TIERS)
    items.sort(key=lambda item: order.index(next(iter(tiers_marked(item)))))


def pytest_sessionfinish() -> None:
    """Freeze the heap once the tests are done (gc.freeze): pytest's exit collects garbage twice
    (_pytest/unraisableexception.py: pytest_unconfigure and its cleanup call gc.collect), and a worker's heap
    of imports and cached program runs made that a second of every worker's last moments, at the end of the run."""
    gc.freeze()


# ------------------------------------------------------------------ the program under mocks


def stack_file_problem(stack: str) -> str | None:
    """Why a stack file cannot be used, in one line, or None: the program's own config checks (load_settings and
    load_secrets) run under the mocks, no resource registered. Cached: every worker collects once."""
    if stack not in _PROBLEMS:
        try:
            run_pulumi(lambda: load_secrets(load_settings()), stack_config(stack), stack)
            _PROBLEMS[stack] = None
        except (StackFileError, ConfigError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            _PROBLEMS[stack] = f"Pulumi.{stack}.yaml: {' '.join(lines)}" if isinstance(exc, ConfigError) else " ".join(lines)
    return _PROBLEMS[stack]


_PROBLEMS: dict[str, str | None] = {}


class BadStackFile(pytest.Item):
    """Stands for every per-stack test of a stack file the program refuses: one failure, one line."""

    def __init__(self, *, problem: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problem = problem
        self.add_marker("unit")

    def runtest(self) -> None:
        raise StackFileError(self.problem)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return self.problem

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


def _one_failure_per_bad_stack_file(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A stack file the program refuses fails once, with its config error in one line, instead of a traceback in
    each of its per-stack tests (those are deselected). A run without per-stack tests for it says nothing."""
    bad = {s: p for s in STACKS if (p := stack_file_problem(s)) is not None}
    dropped = [i for i in items if getattr(getattr(i, "callspec", None), "params", {}).get("stack") in bad]
    if not dropped:
        return
    config.hook.pytest_deselected(items=dropped)
    gone = set(map(id, dropped))
    items[:] = [i for i in items if id(i) not in gone]
    for stack in sorted({i.callspec.params["stack"] for i in dropped}):  # type: ignore[attr-defined]
        items.append(BadStackFile.from_parent(dropped[0].session, name=f"Pulumi.{stack}.yaml[{stack}]", problem=bad[stack]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A stack file that cannot be read fails its tests with one line naming the file, not a traceback."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(StackFileError):
        report.longrepr = str(call.excinfo.value)
    return report


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stack_run(stack: str) -> Run:
    """The whole program with the stack file's config (recorded_run)."""
    return recorded_run(stack)


def recorded_run(stack: str) -> Run:
    """The whole program with the stack file's config (program_run)."""
    return program_run(stack_config(stack), stack)


def run_with(overrides: dict[str, Any], stack: str = "dev") -> Run:
    """Run the program with a fixed configuration (dev by default) plus top-level key overrides (program_run)."""
    return program_run(fixed_config(stack) | overrides, stack)


def program_run(config: dict[str, Any], stack: str, secret_keys: list[str] | None = None) -> Run:
    """run_program(config, stack), made once per configuration and worker (cached_run): a mock run is most of the
    unit tier's time, and many tests read the same one. Only for runs of the program as it is: a test that
    patches the program (test_changes' next pgstack version) calls run_program itself."""
    key = json.dumps([stack, config, sorted(secret_keys or [])], sort_keys=True, default=str)
    return cached_run(key, lambda: run_program(config, stack=stack, secret_keys=secret_keys))


def cached_run(key: str, make: Callable[[], Run]) -> Run:
    """make(), once per key and worker. Each caller gets its own copy, and the run's log messages again
    (tools.mock_run.replay), as if the program had just run. Kept pickled: a copy is a pickle.loads, a quarter of a
    deepcopy's time."""
    if key in _RUNS:
        replay(copied := _copy(_RUNS[key]))
        return copied
    _RUNS[key] = pickle.dumps(make(), protocol=pickle.HIGHEST_PROTOCOL)
    return _copy(_RUNS[key])


def _copy(pickled: bytes) -> Run:
    run: Run = pickle.loads(pickled)
    return run


_RUNS: dict[str, bytes] = {}


def run_component(build: Callable[[], object]) -> Run:
    return run_pulumi(build)


def by_name(run: Run, type_: str) -> dict[str, Registered]:
    return {r.name: r for r in run.of_type(type_)}


STS = "kubernetes:apps/v1:StatefulSet"
SVC = "kubernetes:core/v1:Service"
SECRET = "kubernetes:core/v1:Secret"
PASSWORD = "random:index/randomPassword:RandomPassword"
CLAIM = "kubernetes:core/v1:PersistentVolumeClaimPatch"


# The tests' own fixed configurations: the committed stack files as the URN fixtures were captured
# (tests/components/test_urns.py). A test that needs "a stack like dev" takes one of these, so that a user's
# edit of Pulumi.dev.yaml changes only the per-stack tests' input.
FIXED_CONFIGS = Path(__file__).resolve().parent / "fixtures" / "urns" / "configs"


def fixed_config(name: str) -> dict[str, Any]:
    """A fixed configuration as `pulumi up` would see it: Pulumi.yaml's values overlaid by its config: block."""
    return project_defaults() | dict(load_yaml(FIXED_CONFIGS / f"{name}.yaml")["config"])


def fixed_settings(name: str) -> Settings:
    """A fixed configuration's validated settings (settings_of for the tests' own dev, prod and staging)."""
    return parse_settings({k.split(":", 1)[1]: v for k, v in fixed_config(name).items() if k.split(":", 1)[1] in CONFIG_KEYS}, name)


def fixed_project(directory: Path) -> Path:
    """directory with the live Pulumi.yaml and the fixed configurations as its stack files (for the render)."""
    (directory / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    for path in FIXED_CONFIGS.glob("*.yaml"):
        (directory / f"Pulumi.{path.name}").write_text(path.read_text())
    return directory


def settings_of(stack: str) -> Settings:
    """A stack's validated settings: per-stack expectations come from here, never from a table of stack names."""
    values = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("pgstack:")}
    # The secret keys (pgstack:backupTarget, pgstack:dumpS3) are not settings: load_secrets reads them.
    return parse_settings({k: v for k, v in values.items() if k in CONFIG_KEYS}, stack)


# DNS needs both: UDP for queries, TCP for answers too large for UDP (truncated, TC bit) and for resolvers
# that use TCP. A policy with UDP only works until the first large answer.
DNS_PORTS = [{"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]


def dns_rule_of(egress: list[dict[str, Any]], where: str = "") -> dict[str, Any]:
    """The one egress rule for port 53; it must allow both UDP and TCP."""
    rules = [r for r in egress if any(p.get("port") == 53 for p in r.get("ports", []))]
    assert len(rules) == 1, f"{where}: expected one DNS egress rule, got {egress}"
    ports = sorted(rules[0]["ports"], key=lambda p: (p["port"], p["protocol"]))
    assert ports == DNS_PORTS, f"{where}: DNS egress must allow UDP and TCP 53, got {rules[0]['ports']}"
    return dict(rules[0])
