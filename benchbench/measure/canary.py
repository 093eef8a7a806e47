"""The canary: a fixed, tiny CPU workload timed before every round and at the start and end of every run.

Statistics inside one run cannot see the machine itself changing speed between runs (a noisy
neighbour on a shared VM, throttling, a power state): on such machines two back-to-back runs of the
same code can differ by 2x with tight spreads on both sides. The canary is the same work every time,
so comparing it across reports (and start vs end within one) tells "the machine was slower" apart
from "the code got slower". This module measures it; `benchbench.analysis.canary` reads it.
"""

from __future__ import annotations

import statistics

from benchbench.measure.backends import Timer
from benchbench.measure.engine import Budget, measure

BUDGET = Budget(warmup_calls=3, warmup_min_s=0.02, warmup_max_s=0.2, block_min_s=0.002, min_samples=15,
                max_samples=60, max_time_s=0.15, target_rel_ci=0.01, timeout_s=30)


def _python_loop() -> int:
    total = 0
    for i in range(200):
        total += i * i
    return total


def measure_canary() -> dict[str, float]:
    """Median seconds per call of a pure-Python loop and of a one-element torch add, on the CPU."""
    import torch

    one = torch.ones(1)
    timer = Timer()
    return {
        "python_loop_s": statistics.median(measure(_python_loop, timer, BUDGET).samples),
        "torch_dispatch_s": statistics.median(measure(lambda: one + one, timer, BUDGET).samples),
    }
