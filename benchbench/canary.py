"""A canary: a fixed, tiny CPU workload timed at the start and end of every run.

Statistics inside one run cannot see the machine itself changing speed between runs (a noisy
neighbour on a shared VM, throttling, a power state): on such machines two back-to-back runs of the
same code can differ by 2x with tight spreads on both sides. The canary is the same work every time,
so comparing it across reports (and start vs end within one) tells "the machine was slower" apart
from "the code got slower".
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from benchbench.backends import Timer
from benchbench.measure import Budget, measure

BUDGET = Budget(warmup_calls=3, warmup_min_s=0.02, warmup_max_s=0.2, block_min_s=0.002, min_samples=15,
                max_samples=60, max_time_s=0.15, target_rel_ci=0.01, timeout_s=30)
DRIFT = 0.10  # a canary ratio beyond ±10% is reported


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


def speed_ratio(a: dict[str, float] | None, b: dict[str, float] | None) -> float | None:
    """Geometric mean over the canary's workloads of time(b) / time(a); None when not comparable."""
    if not a or not b:
        return None
    ratios = [b[k] / a[k] for k in a if isinstance(a.get(k), (int, float)) and isinstance(b.get(k), (int, float))
              and a[k] > 0 and b[k] > 0]
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None


def run_canary(report_env: dict[str, Any], when: str) -> dict[str, float] | None:
    """The canary timings a report's environment holds for `start` or `end` of its run, or None."""
    value = (report_env.get("canary") or {}).get(when)
    return value if isinstance(value, dict) else None
