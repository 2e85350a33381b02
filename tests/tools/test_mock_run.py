"""tools/mock_run.py beyond what every program test relies on: the heap the entry point freezes is unfrozen
after each run, a run's log messages are kept and can be logged again, and the monitor's shortcut for
resources whose state is their inputs registers what the SDK's own mock monitor would."""

from __future__ import annotations

import gc
import logging
import runpy
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from tests.conftest import fixed_config, program_run
from tools.mock_run import RecordingMocks, RecordingMonitor, Run, replay, run_pulumi
from tools.stack_files import ROOT, as_pulumi_config


def test_the_entry_point_freezes_the_heap_and_the_runner_unfreezes_it() -> None:
    frozen_during: list[int] = []

    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        frozen_during.append(gc.get_freeze_count())

    run_pulumi(program, fixed_config("dev"), stack="dev")
    # __main__.py froze what the imports built (a preview's evaluation skips walking it); a test process that
    # runs the program hundreds of times must get it back to collect.
    assert frozen_during and frozen_during[0] > 0
    assert gc.get_freeze_count() == 0


def test_a_runs_warnings_are_kept_and_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    config = fixed_config("dev") | {"pgstack:postgres": {**fixed_config("dev")["pgstack:postgres"], "replicas": 3}}
    config["pgstack:postgres"]["replication"] = {"enabled": False}
    with caplog.at_level(logging.WARNING):
        run = program_run(config, "dev")
    said = [m for m in caplog.messages if "replication.enabled false" in m]
    assert said and [m for _, m in run.logs if "replication.enabled false" in m] == said
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = program_run(config, "dev")  # made once per worker: the copy's messages are replayed
        replay(run)
    assert again.logs == run.logs
    assert [m for m in caplog.messages if "replication.enabled false" in m] == said * 2


class _SdkWay(RecordingMocks):
    """The same mocks, with new_resource overridden: the monitor then takes the SDK's own path for every resource."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return super().new_resource(args)


class _StateRecorder(RecordingMonitor):
    """Keeps the state each registration's response hands the program (its outputs), decoded."""

    states: dict[str, Any]

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        self.states[response.urn] = rpc.deserialize_properties(response.object, keep_unknowns=True)
        return response


def _record(mocks_class: type[RecordingMocks]) -> tuple[list[tuple[str, str, Any, list[str]]], dict[str, Any], dict[str, Any]]:
    run = Run(seed="same")
    m = mocks_class(run)
    monitor = _StateRecorder(m, run)
    monitor.states = {}
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(m, project="pgstack", stack="prod", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(as_pulumi_config(fixed_config("prod")), secret_keys=[])
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
    finally:
        gc.unfreeze()
    root = pulumi.runtime.settings.get_root_resource()
    outputs = {k: _sync_await(pulumi.Output.from_input(v).future()) for k, v in (getattr(root, "outputs", None) or {}).items()}
    registered = sorted((r.urn, r.type, r.inputs, sorted(r.dependencies)) for r in run.resources)
    return registered, monitor.states, outputs


def test_handing_back_the_inputs_as_the_state_registers_and_resolves_what_the_sdks_way_does() -> None:
    """RecordingMonitor returns a resource's own request encoding as its state (RecordingMocks' state is its
    inputs) instead of decoding and encoding it again: the registrations and the stack's outputs are the same."""
    assert RecordingMonitor(_SdkWay(Run()), Run()).state_is_inputs is False
    shortcut, sdk = _record(RecordingMocks), _record(_SdkWay)
    assert len(shortcut[1]) > 30  # every registration's state was seen
    assert shortcut == sdk
