"""How long the program takes to evaluate under Pulumi's mocks, against an empty program.

Each measurement is a fresh Python process, as `pulumi up` starts one: it imports the
same modules (pulumi, pulumi_kubernetes and the API groups we use, pulumi_random, our
components and stacks),
then either runs nothing (the empty program) or runs __main__.py for a stack. Runs are
interleaved so machine noise hits every variant alike; the medians are compared.

    .venv/bin/python benchmarks/bench_evaluation.py [--rounds 5]

Target: the prod stack costs at most 1.5x the empty program.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5
# pulumi_kubernetes loads its API groups lazily on first use; the empty program touches
# the same ones, so both variants pay the same import bill and the ratio shows evaluation.
K8S_GROUPS = ("apps.v1", "core.v1", "helm.v3", "meta.v1", "networking.v1", "policy.v1", "storage.v1")


def child(mode: str, replicas: int | None) -> None:
    sys.path.insert(0, str(ROOT))
    import importlib

    import components.postgres_statefulset  # noqa: F401  (same imports for every variant)
    import stacks.database  # noqa: F401
    from stacks.render import run_program, run_pulumi, stack_config

    for group in K8S_GROUPS:
        importlib.import_module(f"pulumi_kubernetes.{group}")
    if mode == "empty":
        run_pulumi(lambda: None)
        return
    config = stack_config(mode)
    if replicas is not None:
        config["pgstack:postgres"] = {**config["pgstack:postgres"], "replicas": replicas}
    run = run_program(config, stack=mode)
    assert run.resources, "the program registered nothing"


def measure(mode: str, replicas: int | None = None) -> float:
    cmd = [sys.executable, __file__, "--child", mode]
    if replicas is not None:
        cmd += ["--replicas", str(replicas)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child")
    parser.add_argument("--replicas", type=int)
    ns = parser.parse_args()
    if ns.child:
        child(ns.child, ns.replicas)
        return 0

    variants: dict[str, tuple[str, int | None]] = {
        "empty": ("empty", None),
        "dev": ("dev", None),
        "prod": ("prod", None),
        "prod, 1 replica": ("prod", 1),
        "prod, 3 replicas": ("prod", 3),
        "prod, 9 replicas": ("prod", 9),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    measure("empty")  # warm the file cache before timing
    for _ in range(ns.rounds):
        for name, (mode, replicas) in variants.items():
            times[name].append(measure(mode, replicas))
    median = {name: statistics.median(ts) for name, ts in times.items()}

    print(f"median of {ns.rounds} fresh processes each")
    for name, value in median.items():
        print(f"  {name:<18} {value:7.3f}s  {value / median['empty']:5.2f}x empty")
    one, three, nine = (median[f"prod, {n} replica" + ("s" if n > 1 else "")] for n in (1, 3, 9))
    print(f"growth: 3 vs 1 replicas {three / one:.2f}x, 9 vs 1 replicas {nine / one:.2f}x")
    ratio = median["prod"] / median["empty"]
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"prod / empty = {ratio:.2f}x ({verdict} the {TARGET}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
