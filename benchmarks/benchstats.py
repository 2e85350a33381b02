"""What every benchmark here shares: interleaved rounds, and statistics that show the spread.

A benchmark compares sides (A against B, or several variants against a baseline) measured
in the same run. ``interleave`` runs one measurement of each side per round and changes
the order from round to round (two sides: A B, B A, B A, A B, ...), so that a slow stretch
of the shared machine or a cache warmed by the previous measurement hits every side alike. The result keeps the
rounds paired: a ratio is computed per round (A_i / B_i), and its median and spread are
reported, never a one-word verdict from two medians.

``noise_verdict`` says whether the effect is larger than the noise in the plainest way:
how many of the per-round ratios fall on each side of 1.0, and the two-sided sign test's
p (the chance of a split at least that uneven if either side were as likely to win a
round); p <= 0.05 counts as larger than the noise. 6 rounds all on one side give 2/64;
5 of 6 is not enough.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


def machine_load() -> str:
    """The 1, 5 and 15 minute load averages and the CPU count (the cores are shared)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


@dataclass(frozen=True)
class Spread:
    """Median, quartiles and range of a sample."""

    n: int
    median: float
    q1: float
    q3: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no values")
        xs = sorted(values)
        if len(xs) == 1:
            q1 = q3 = xs[0]
        else:
            q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
        return cls(len(xs), statistics.median(xs), q1, q3, xs[0], xs[-1])

    def show(self, fmt: str = ".3f", unit: str = "") -> str:
        """e.g. '1.234 s (IQR 1.200-1.250, range 1.100-1.300, n=6)'."""

        def f(x: float) -> str:
            return f"{x:{fmt}}"

        return f"{f(self.median)}{unit} (IQR {f(self.q1)}-{f(self.q3)}, range {f(self.low)}-{f(self.high)}, n={self.n})"


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-round ratios a_i / b_i of two paired samples."""
    if len(a) != len(b):
        raise ValueError(f"unpaired samples: {len(a)} and {len(b)} values")
    return [x / y for x, y in zip(a, b, strict=True)]


def noise_verdict(round_ratios: Sequence[float], higher_is: str = "slower") -> str:
    """Whether the per-round ratios sit on one side of 1.0: the effect against the noise.

    higher_is names what a ratio above 1.0 means ("slower" for times, "faster" for rates).
    """
    above = sum(r > 1.0 for r in round_ratios)
    below = sum(r < 1.0 for r in round_ratios)
    n = len(round_ratios)
    # Two-sided sign test: the chance that n fair coins fall at least this unevenly.
    k = max(above, below)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n) if n else 1.0
    lower_is = {"slower": "faster", "faster": "slower"}.get(higher_is, f"not {higher_is}")
    where = f"{above} of {n} rounds above 1.0 ({higher_is}), {below} below ({lower_is})"
    if n and p <= 0.05:
        return f"{where}: larger than the noise (sign test p={p:.2g})"
    return f"{where}: NOT distinguishable from the noise (sign test p={p:.2g})"


def interleave(
    sides: Mapping[str, Callable[[], float]],
    rounds: int,
    warmup: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Measure every side once per round, rotating which goes first; return the kept samples.

    ``warmup`` extra rounds run first and are dropped (caches, lazy imports). The order is
    rotated every other round and reversed in the odd rounds (two sides: A B, B A, B A, A B),
    so that over each pair of rounds every side runs before every other side as often as
    after it.
    """
    names = list(sides)
    kept: dict[str, list[float]] = {name: [] for name in names}
    started = time.monotonic()
    for i in range(warmup + rounds):
        shift = (i // 2) % len(names)
        order = names[shift:] + names[:shift]
        if i % 2:
            order.reverse()
        got = {name: sides[name]() for name in order}
        label = "warm-up" if i < warmup else f"round {i - warmup + 1}/{rounds}"
        if i >= warmup:
            for name in names:
                kept[name].append(got[name])
        if progress:
            shown = "  ".join(f"{name} {got[name]:.3f}" for name in order)
            print(f"  {label} ({time.monotonic() - started:4.0f}s): {shown}", file=sys.stderr, flush=True)
    return kept
