"""Shared fixtures: run the real program (or one component) under Pulumi's mocks."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from stacks.config import Settings, parse_settings
from stacks.render import Registered, Run, StackFileError, run_program, run_pulumi, stack_config, stacks

# Every Pulumi.<stack>.yaml, dotted names included. Per-stack tests take `stack` or `stack_run` and derive
# every expectation from that stack's own config (settings_of), never from its name.
STACKS = stacks()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: runs pytest again in a copy of the repository (tens of seconds)")


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
    """The whole program, run once for this test with the stack file's config."""
    return run_program(stack_config(stack), stack=stack)


def run_with(overrides: dict[str, Any], stack: str = "dev") -> Run:
    """Run the program with a stack's config plus top-level key overrides."""
    return run_program(stack_config(stack) | overrides, stack=stack)


def run_component(build: Callable[[], object]) -> Run:
    return run_pulumi(build)


def by_name(run: Run, type_: str) -> dict[str, Registered]:
    return {r.name: r for r in run.of_type(type_)}


STS = "kubernetes:apps/v1:StatefulSet"
SVC = "kubernetes:core/v1:Service"
SECRET = "kubernetes:core/v1:Secret"
PASSWORD = "random:index/randomPassword:RandomPassword"
CLAIM = "kubernetes:core/v1:PersistentVolumeClaimPatch"


def settings_of(stack: str) -> Settings:
    """A stack's validated settings: per-stack expectations come from here, never from a table of stack names."""
    return parse_settings({k.split(":", 1)[1]: v for k, v in stack_config(stack).items()})
