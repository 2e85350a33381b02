"""How long the program takes to evaluate under Pulumi's mocks, against an empty program.

Each measurement is a fresh Python process, as `pulumi up` starts one: it imports the
same modules (pulumi, pulumi_kubernetes and the API groups we use, pulumi_random, our
components and stacks), then either runs nothing (the empty program) or runs the program
for a stack. The variants are interleaved (each round runs every variant once, and the
round's first variant rotates), and each variant is compared with the empty program of
the same round: the ratio per round, then its median and spread. Both the wall-clock time
and the CPU time (user + system, all threads) of each process are recorded; CPU time is
what the program itself costs, wall time also holds the waits for a core on this shared
machine, so it is the noisier of the two.

    .venv/bin/python benchmarks/bench_evaluation.py            # 12 rounds, about 2 minutes
    .venv/bin/python benchmarks/bench_evaluation.py --quick    # 4 rounds

Target: the prod stack costs at most 1.5x the empty program.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

from benchstats import Spread, interleave, machine_load, noise_verdict, ratios

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5
# pulumi_kubernetes loads its API groups lazily on first use; the empty program touches
# the same ones, so both variants pay the same import bill and the ratio shows evaluation.
K8S_GROUPS = ("apps.v1", "core.v1", "helm.v3", "meta.v1", "networking.v1", "policy.v1", "storage.v1")
VARIANTS: dict[str, tuple[str, int | None]] = {
    "empty": ("empty", None),
    "dev": ("dev", None),
    "prod": ("prod", None),
    "prod, 1 replica": ("prod", 1),
    "prod, 3 replicas": ("prod", 3),
    "prod, 9 replicas": ("prod", 9),
}


def child(mode: str, replicas: int | None) -> None:
    sys.path.insert(0, str(ROOT))
    import components.postgres_statefulset  # noqa: F401  (same imports for every variant)
    import stacks.database  # noqa: F401
    from tools import mock_run as render
    from tools.stack_files import stack_config

    for group in K8S_GROUPS:
        importlib.import_module(f"pulumi_kubernetes.{group}")
    if mode == "empty":
        render.run_pulumi(lambda: None)
        return
    config = stack_config(mode)
    if replicas is not None:
        config["pgstack:postgres"] = {**config["pgstack:postgres"], "replicas": replicas}
    run = render.run_program(config, stack=mode)
    assert run.resources, "the program registered nothing"


CPU: dict[str, list[float]] = {name: [] for name in VARIANTS}


def measure(name: str) -> float:
    """Wall seconds of one fresh process running the variant; its CPU seconds go to CPU[name]."""
    mode, replicas = VARIANTS[name]
    cmd = [sys.executable, __file__, "--child", mode]
    if replicas is not None:
        cmd += ["--replicas", str(replicas)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()  # the stack's warnings; shown only on failure
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{err.decode(errors='replace')}")
    CPU[name].append(usage.ru_utime + usage.ru_stime)
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12, help="timed rounds, each runs every variant once (default 12)")
    parser.add_argument("--quick", action="store_true", help="4 rounds")
    parser.add_argument("--child")
    parser.add_argument("--replicas", type=int)
    ns = parser.parse_args()
    if ns.child:
        child(ns.child, ns.replicas)
        return 0
    rounds = 4 if ns.quick else ns.rounds

    started = time.monotonic()
    load_before = machine_load()
    wall = interleave({name: functools.partial(measure, name) for name in VARIANTS}, rounds=rounds, warmup=1)
    cpu = {name: values[1:] for name, values in CPU.items()}  # drop the warm-up round
    elapsed = time.monotonic() - started

    print(f"bench_evaluation: {rounds} rounds (after 1 warm-up), {len(VARIANTS)} variants in rotating order, {elapsed:.0f} s")
    print(f"machine: before {load_before}; after {machine_load()}")
    print("per fresh process (median, IQR, range), and the per-round ratio to the empty program:")
    for name in VARIANTS:
        line = f"  {name:<17} wall {Spread.of(wall[name]).show('.3f', ' s')}  cpu {Spread.of(cpu[name]).show('.3f', ' s')}"
        print(line)
    for name in VARIANTS:
        if name == "empty":
            continue
        w = Spread.of(ratios(wall[name], wall["empty"]))
        c = Spread.of(ratios(cpu[name], cpu["empty"]))
        print(f"  {name:<17} / empty: wall {w.show('.2f', 'x')}  cpu {c.show('.2f', 'x')}")
    one, three, nine = (cpu[f"prod, {n} replica" + ("s" if n > 1 else "")] for n in (1, 3, 9))
    print(
        f"growth (cpu, per round): 3 vs 1 replicas {Spread.of(ratios(three, one)).show('.2f', 'x')}; "
        f"9 vs 1 replicas {Spread.of(ratios(nine, one)).show('.2f', 'x')}"
    )
    prod_wall = ratios(wall["prod"], wall["empty"])
    prod_cpu = ratios(cpu["prod"], cpu["empty"])
    print(f"prod / empty, wall: {Spread.of(prod_wall).show('.2f', 'x')}")
    print(f"prod / empty, cpu:  {Spread.of(prod_cpu).show('.2f', 'x')}")
    print(
        f"target prod / empty <= {TARGET}x: rounds over it: cpu {sum(r > TARGET for r in prod_cpu)} of {rounds}, "
        f"wall {sum(r > TARGET for r in prod_wall)} of {rounds}"
    )
    print(f"prod vs empty, cpu: {noise_verdict(prod_cpu)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
