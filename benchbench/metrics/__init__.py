"""The registry of metrics (benchbench/metrics/base.py says what a metric is).

Time and instruction counts are measured by runs of their own (`run --metric NAME`); peak memory,
compile time and energy are recorded by every timed run and compared beside the time. Adding a metric is its own
module (its `Metric` and comparison rule) plus one entry in `ALL` below.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchbench.errors import UserError
from benchbench.metrics.base import Metric
from benchbench.metrics.compile_time import COMPILE_TIME
from benchbench.metrics.energy import ENERGY
from benchbench.metrics.instructions import DEFAULT_TOLERANCE, allocators_apart
from benchbench.metrics.instructions import METHOD as INSTRUCTIONS_METHOD
from benchbench.metrics.latency import LATENCY_METRICS
from benchbench.metrics.memory import PEAK_MEMORY


def _require_valgrind() -> None:
    from benchbench.measure import callgrind

    callgrind.require()


def _plan_counted(cases: list[Any]) -> list[Any]:
    from benchbench.measure import callgrind

    return callgrind.plan(cases)


@contextlib.contextmanager
def _callgrind_workers(worker_env: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """Workers under Callgrind, their dumps in a folder of this run's own, removed afterwards."""
    from benchbench.measure import callgrind

    dump_dir = Path(tempfile.mkdtemp(prefix="benchbench-callgrind-"))
    try:
        opts = callgrind.runner_options(dump_dir)
        yield {**opts, "worker_env": {**worker_env, **opts["worker_env"]}}
    finally:
        shutil.rmtree(dump_dir, ignore_errors=True)


def _allocators_differ(base: Any, other: Any) -> str | None:
    if allocators_apart(base) != allocators_apart(other):
        return ("instruction counts with the allocators' internals in one and left out in the other "
                "(measure both with the same benchbench, on a libc with symbols)")
    return None


TIME = Metric(
    name="time", title="wall time", quantity="time", unit="seconds", rule="rounds", runnable=True,
    help="wall time per call, in rounds of fresh worker processes (default)",
)

INSTRUCTIONS = Metric(
    name="instructions", title="instruction counts (Callgrind)", quantity="instruction count", unit="count", rule="tolerance", runnable=True,
    timing_method=INSTRUCTIONS_METHOD, default_rounds=1, explain="functions",
    help="CPU instructions per call counted under Valgrind's Callgrind (CPU cases only, one round)",
    require=_require_valgrind, plan=_plan_counted, workers=_callgrind_workers, incomparable=_allocators_differ,
    start_note=("counting instructions under Valgrind: the worker takes minutes to start (importing torch under "
                "Callgrind), then each case runs many times slower than usual"),
    rule_text=(f"Instruction counts (Callgrind) regress beyond +{100 * DEFAULT_TOLERANCE:g}% "
               "(`instructions_tolerance`), without a significance test: they are exact up to interpreter jitter."),
)

ALL: dict[str, Metric] = {m.name: m for m in (TIME, INSTRUCTIONS, PEAK_MEMORY, COMPILE_TIME, ENERGY,
                                                 *LATENCY_METRICS)}
RUNNABLE = tuple(name for name, m in ALL.items() if m.runnable)
BESIDE_TIME = tuple(m for m in ALL.values() if m.recorded_beside_time)


def get(name: str) -> Metric:
    """The metric of this name; an unknown name is a one-line error."""
    m = ALL.get(name)
    if m is None:
        raise UserError(f"unknown metric {name!r} (known: {', '.join(ALL)})")
    return m


def runnable(name: str) -> Metric:
    """A metric that a run measures on its own (`run --metric`)."""
    m = ALL.get(name)
    if m is None or not m.runnable:
        raise UserError(f"unknown metric {name!r} (known: {', '.join(RUNNABLE)})")
    return m


def of_method(timing_method: str | None) -> Metric:
    """The runnable metric a result holds, by its timing method (time unless another metric claims it)."""
    return next((m for m in ALL.values() if m.runnable and m.timing_method and m.timing_method == timing_method),
                TIME)


def of_results(*results: Any) -> Metric:
    """The metric a comparison row is about: a non-time metric when either side holds it."""
    for r in results:
        m = of_method(getattr(r, "timing_method", None))
        if m is not TIME:
            return m
    return TIME


def setting_names() -> dict[str, Metric]:
    """Every per-case setting (gate rules) of a metric recorded beside the time -> its metric."""
    return {k: m for m in BESIDE_TIME for k in m.settings}


def parse_setting(name: str, value: Any, where: str) -> Any:
    m = setting_names()[name]
    return m.parse_setting(name, value, where) if m.parse_setting is not None else value


def settings_defaults() -> dict[str, Any]:
    """Every per-case setting that a metric recorded beside the time reads, at its default."""
    return {k: v for m in BESIDE_TIME for k, v in m.settings.items()}
