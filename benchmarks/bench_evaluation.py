"""How long `pulumi preview` spends in the program: the real program against seed 000 written flat.

Each measurement is a fresh Python process, as `pulumi up` and `pulumi preview` start one: it imports what
the program imports and runs it under Pulumi's mocks (pulumi.runtime.set_mocks; the engine's side answers
each registration with its inputs). The baseline is benchmarks/flat_seed_000.py: the tutorial's end state
(the Longhorn chart and the postgres StatefulSet) as a flat program that imports only pulumi_kubernetes.
Both sides run through the same harness (child() below); the stack config comes from the parent, as the
CLI reads the stack file outside the program. The variants are interleaved (each round runs every variant
once, and the round's first variant rotates), and each variant is compared with the flat program of the
same round: the ratio per round, then its median and spread. Both the wall-clock time and the CPU time
(user + system, all threads) of each process are recorded; CPU time is what the program itself costs,
wall time also holds the waits for a core on this shared machine, so it is the noisier of the two.

    .venv/bin/python benchmarks/bench_evaluation.py            # 12 rounds, about 2 minutes
    .venv/bin/python benchmarks/bench_evaluation.py --quick    # 4 rounds

Target: the prod stack costs at most 1.5x the flat seed-000 program (issue 17).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5
BASELINE = "flat seed 000"
# name -> (stack, replicas); stack None is the flat program.
VARIANTS: dict[str, tuple[str | None, int | None]] = {
    BASELINE: (None, None),
    "dev": ("dev", None),
    "prod": ("prod", None),
    "prod, 1 replica": ("prod", 1),
    "prod, 9 replicas": ("prod", 9),
}
CHILD_ENV = "BENCH_EVALUATION_CHILD"  # the child's stack config, as JSON


def child_spec(stack: str | None, replicas: int | None) -> dict[str, Any]:
    """What the CLI hands the program: the stack's config (as strings) and which keys are secret."""
    if stack is None:
        return {"stack": "dev", "config": {}, "secret_keys": []}
    sys.path.insert(0, str(ROOT))
    from tools.stack_files import as_pulumi_config, secret_config_keys, stack_config

    config = stack_config(stack)
    if replicas is not None:
        config["pgstack:postgres"] = {**config["pgstack:postgres"], "replicas": replicas}
    return {"stack": stack, "config": as_pulumi_config(config), "secret_keys": secret_config_keys(config)}


def child(spec: dict[str, Any]) -> None:
    """One evaluation, the same harness for every variant: mocks, config, then the program."""
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    registered: list[str] = []

    class Engine(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            registered.append(args.typ)
            state = dict(args.inputs)
            if args.typ == "random:index/randomPassword:RandomPassword":
                state["result"] = "x" * int(args.inputs.get("length", 32))
            return f"{args.name}-id", state

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
            return {}, None

    pulumi.runtime.set_mocks(Engine(), project="pgstack", stack=spec["stack"], preview=False)  # every apply runs, as in `up`
    pulumi.runtime.set_all_config(spec["config"], secret_keys=spec["secret_keys"])
    if spec["config"]:
        sys.path.insert(0, str(ROOT))

        def program() -> None:
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    else:
        import flat_seed_000

        program = flat_seed_000.program
    _sync_await(run_pulumi_func(program))
    if not registered:
        raise SystemExit("the program registered nothing")


CPU: dict[str, list[float]] = {name: [] for name in VARIANTS}
SPECS: dict[str, str] = {}


def measure(name: str) -> float:
    """Wall seconds of one fresh process running the variant; its CPU seconds go to CPU[name]."""
    cmd = [sys.executable, __file__, "--child"]
    env = {**os.environ, CHILD_ENV: SPECS[name]}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    # Here, not at the top: the child processes measured import as little as the program needs.
    from benchstats import Spread, interleave, machine_load, noise_verdict, ratios

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12, help="timed rounds, each runs every variant once (default 12)")
    parser.add_argument("--quick", action="store_true", help="4 rounds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child(json.loads(os.environ[CHILD_ENV]))
        return 0
    rounds = 4 if ns.quick else ns.rounds
    SPECS.update({name: json.dumps(child_spec(*variant)) for name, variant in VARIANTS.items()})

    started = time.monotonic()
    load_before = machine_load()
    wall = interleave({name: functools.partial(measure, name) for name in VARIANTS}, rounds=rounds, warmup=1)
    cpu = {name: values[1:] for name, values in CPU.items()}  # drop the warm-up round
    elapsed = time.monotonic() - started

    print(f"bench_evaluation: {rounds} rounds (after 1 warm-up), {len(VARIANTS)} variants in rotating order, {elapsed:.0f} s")
    print(f"machine: before {load_before}; after {machine_load()}")
    print(f"per fresh process (median, IQR, range), and the per-round ratio to the {BASELINE} program:")
    for name in VARIANTS:
        line = f"  {name:<17} wall {Spread.of(wall[name]).show('.3f', ' s')}  cpu {Spread.of(cpu[name]).show('.3f', ' s')}"
        print(line)
    for name in list(VARIANTS)[1:]:
        w = Spread.of(ratios(wall[name], wall[BASELINE]))
        c = Spread.of(ratios(cpu[name], cpu[BASELINE]))
        print(f"  {name:<17} / flat: wall {w.show('.2f', 'x')}  cpu {c.show('.2f', 'x')}")
    one, nine = cpu["prod, 1 replica"], cpu["prod, 9 replicas"]
    print(f"growth (cpu, per round): 9 vs 1 replicas {Spread.of(ratios(nine, one)).show('.2f', 'x')}")
    prod_wall = ratios(wall["prod"], wall[BASELINE])
    prod_cpu = ratios(cpu["prod"], cpu[BASELINE])
    print(f"prod / flat, wall: {Spread.of(prod_wall).show('.2f', 'x')}")
    print(f"prod / flat, cpu:  {Spread.of(prod_cpu).show('.2f', 'x')}")
    print(
        f"target prod / flat <= {TARGET}x: rounds over it: cpu {sum(r > TARGET for r in prod_cpu)} of {rounds}, "
        f"wall {sum(r > TARGET for r in prod_wall)} of {rounds}"
    )
    print(f"prod vs flat, cpu: {noise_verdict(prod_cpu)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
