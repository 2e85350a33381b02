"""tools/mock_run.py beyond what every program test relies on: the heap the entry point freezes is unfrozen
after each run, and a run's log messages are kept and can be logged again."""

from __future__ import annotations

import gc
import logging
import runpy

import pytest

from tests.conftest import fixed_config, program_run
from tools.mock_run import replay, run_pulumi
from tools.stack_files import ROOT


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
