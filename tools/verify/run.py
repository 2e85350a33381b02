"""The run: the steps in order, each printed with its duration, and the command line (bin/verify)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from stacks.config import ConfigError
from stacks.config.cnpg import CNPG
from tools.stack_files import StackFileError, stack_config
from tools.verify.cluster import STEPS, Cluster, Target, settings_from_config, target_of
from tools.verify.live import KubernetesCluster
from tools.verify.steps import (
    StepError,
    Timing,
    describe_error,
    new_row_id,
    preflight,
    read_row_everywhere,
    report_backups,
    restart_primary,
    scale_to_zero_and_back,
    write_row,
)
from tools.verify.wal import report_wal_archive

# ---------------------------------------------------------------- the run


def verify(cluster: Cluster, target: Target, timing: Timing, out: TextIO, stack: str = "", row_id: str | None = None) -> int:
    """Run the preflight and the five steps; print each with its duration. 0 when all pass, else 1."""
    row = row_id or new_row_id(timing.now())
    started = timing.clock()
    out.write(f"verify {stack or 'stack'}: namespace {target.namespace}, primary {target.primary}, row {row}\n")
    actions: list[Callable[[list[str]], None]] = [
        lambda notes: write_row(cluster, target, row, notes),
        lambda notes: restart_primary(cluster, target, timing, notes),
        lambda notes: scale_to_zero_and_back(cluster, target, timing, notes),
        lambda notes: read_row_everywhere(cluster, target, row, timing, notes),
        lambda notes: _backups(cluster, target, timing, notes),
    ]
    steps = list(zip(STEPS, actions, strict=True))
    if (problem := _run(out, "preflight: the stack's pods are all Ready", lambda n: preflight(cluster, target, n), timing)) is not None:
        out.write(f"verify: FAILED at preflight: {problem}\n")
        return 1
    for index, (title, action) in enumerate(steps, start=1):
        label = f"[{index}/{len(steps)}] {title}"
        problem = _run(out, label, action, timing)
        if problem is not None:
            for later, (skipped, _) in enumerate(steps[index:], start=index + 1):
                out.write(f"[{later}/{len(steps)}] {skipped} ... skipped\n")
            out.write(f"verify: FAILED at step {index}/{len(steps)} ({title}): {problem}\n")
            return 1
    out.write(f"verify: all {len(steps)} steps passed ({timing.clock() - started:.1f} s)\n")
    return 0


def _backups(cluster: Cluster, target: Target, timing: Timing, notes: list[str]) -> None:
    report_backups(cluster, target, timing, notes)
    report_wal_archive(cluster, target, notes)


def _run(out: TextIO, label: str, action: Callable[[list[str]], None], timing: Timing) -> str | None:
    out.write(f"{label} ... ")
    out.flush()
    notes: list[str] = []
    start = timing.clock()
    problem: str | None = None
    try:
        action(notes)
    except StepError as exc:
        problem = str(exc)
    except Exception as exc:
        problem = describe_error(exc)
    except KeyboardInterrupt:
        out.write(f"interrupted ({timing.clock() - start:.1f} s)\n")
        _print_notes(out, notes)
        raise
    elapsed = timing.clock() - start
    out.write(f"ok ({elapsed:.1f} s)\n" if problem is None else f"FAILED ({elapsed:.1f} s)\n")
    _print_notes(out, notes)
    if problem is not None:
        out.write(f"      {problem}\n")
    out.flush()
    return problem


def _print_notes(out: TextIO, notes: list[str]) -> None:
    for note in notes:
        out.write(f"      {note}\n")


# ---------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None, connect: Callable[[str, str, str | None], Cluster] = KubernetesCluster.connect) -> int:
    parser = argparse.ArgumentParser(
        prog="bin/verify",
        description="Persistence experiment on a deployed stack (write, delete the primary, scale to zero and back, "
        "read on every pod) and the newest backups. Exit 0 when every step passes, 1 otherwise.",
    )
    parser.add_argument("stack", help="stack name: Pulumi.<stack>.yaml")
    parser.add_argument("--context", help="kubeconfig context (default: the stack's kubernetes:context, else the current context)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for pods at each wait (default 600)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")
    try:
        values = stack_config(args.stack)
        settings = settings_from_config(values)
    except (FileNotFoundError, StackFileError, ConfigError) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 1
    if settings.postgres.engine == CNPG:
        # The experiment deletes the primary pod and scales StatefulSets: the operator's pods are not ours to move.
        print(
            f"verify: Pulumi.{args.stack}.yaml runs pgstack:postgres.engine cloudnative-pg: this experiment moves the "
            f"StatefulSet engine's pods; the operator reports its Cluster with `kubectl -n {settings.namespace} get cluster "
            f"{settings.postgres.name}` (docs/operations.md#cloudnative-pg)",
            file=sys.stderr,
        )
        return 1
    target = target_of(settings)
    stack_context = values.get("kubernetes:context")
    context = args.context or (stack_context if isinstance(stack_context, str) else None)
    try:
        cluster = connect(target.namespace, settings.longhorn.namespace, context)
    except Exception as exc:  # no kubeconfig, unknown context
        print(f"verify: cannot reach the cluster: {describe_error(exc)}", file=sys.stderr)
        return 1
    try:
        return verify(cluster, target, Timing(timeout=args.timeout), sys.stdout, stack=args.stack)
    except KeyboardInterrupt:
        print("verify: interrupted", file=sys.stderr)
        return 130
