"""Library code for the gate calibration suite (`benchmarks/calibration_suite.py`).

Each call of a calibration case runs its op `REPEATS` times. Setting BENCHBENCH_CALIBRATION_SLOWDOWN
to a percentage in a worker's environment adds that share of repetitions (5 -> 21 of 20, 10 -> 22 of
20): a slowdown of exactly that much work, injected outside the suite file, so the benchmark's
definition hash is the same on both sides and only the measurement can tell them apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable

REPEATS = 20


def repetitions() -> int:
    pct = float(os.environ.get("BENCHBENCH_CALIBRATION_SLOWDOWN", "0") or 0)
    return REPEATS + round(REPEATS * pct / 100)


def repeated(op: Callable[[], object]) -> Callable[[], None]:
    """`op` run `repetitions()` times per call (read once, when the case is built in its worker)."""
    n = repetitions()

    def call() -> None:
        for _ in range(n):
            op()

    return call
