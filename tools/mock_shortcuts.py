"""Two things the SDK does for a real engine that the in-process mock runner (tools/mock_run.py) skips, because a
mock run is most of the unit tier's time: the stack walk at every registration, and the thread hand-off of every
monitor call. Neither changes what a run registers."""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pulumi.runtime.resource
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.sync_await import _ensure_event_loop


@contextlib.contextmanager
def no_stack_traces() -> Iterator[None]:
    """The SDK walks the Python stack at every registration, for the source positions the engine shows
    in its messages; the mock monitor drops them, and the walk is a tenth of a run's time. Skipped
    while a program runs here; nothing the tests read comes from it."""
    module = pulumi.runtime.resource
    original = getattr(module, "_get_stack_trace", None)
    if original is None:  # another SDK version: leave it as it is
        yield
        return
    setattr(module, "_get_stack_trace", source_pb2.StackTrace)  # noqa: B010 - a private name of the SDK's
    try:
        yield
    finally:
        setattr(module, "_get_stack_trace", original)  # noqa: B010


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs a submitted call at once, in the calling thread. The SDK sends every monitor call through
    loop.run_in_executor (pulumi/runtime/resource.py, do_register and friends) for a gRPC round trip;
    to the in-process mock monitor that is only a thread hand-off per call, a sixth of a run's time.
    Registration order was never fixed (the pool interleaves calls); what a run registers is the same."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the awaiting coroutine, as the pool does
            future.set_exception(error)
        return future


@contextlib.contextmanager
def inline_monitor_calls() -> Iterator[None]:
    """The event loop's default executor is _InlineExecutor while a program runs here."""
    loop = _ensure_event_loop()  # type: ignore[no-untyped-call]  # the loop _sync_await runs
    original = getattr(loop, "_default_executor", None)
    loop.set_default_executor(_InlineExecutor(max_workers=1))
    try:
        yield
    finally:
        loop._default_executor = original  # no public getter or reset
