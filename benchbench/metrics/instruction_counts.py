"""The instruction-count metric: how a run counts instructions (the worker under Valgrind's Callgrind) and
how two counts compare (benchbench/metrics/instructions.py holds the rule). Kept apart from the rule because
the measuring side (benchbench/measure/callgrind.py) imports the rule's names, and this module imports
callgrind (inside the functions that start a run)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchbench.metrics.base import Metric
from benchbench.metrics.instructions import DEFAULT_TOLERANCE, METHOD, allocators_apart


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


INSTRUCTIONS = Metric(
    name="instructions", title="instruction counts (Callgrind)", quantity="instruction count", unit="count", rule="tolerance", runnable=True,
    timing_method=METHOD, default_rounds=1, explain="functions", order=10,
    help="CPU instructions per call counted under Valgrind's Callgrind (CPU cases only, one round)",
    require=_require_valgrind, plan=_plan_counted, workers=_callgrind_workers, incomparable=_allocators_differ,
    start_note=("counting instructions under Valgrind: the worker takes minutes to start (importing torch under "
                "Callgrind), then each case runs many times slower than usual"),
    rule_text=(f"Instruction counts (Callgrind) regress beyond +{100 * DEFAULT_TOLERANCE:g}% "
               "(`instructions_tolerance`), without a significance test: they are exact up to interpreter jitter."),
)

METRICS = (INSTRUCTIONS,)
