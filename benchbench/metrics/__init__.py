"""The registry of metrics (benchbench/metrics/base.py says what a metric is).

Time and instruction counts are measured by runs of their own (`run --metric NAME`); peak memory,
compile time, energy and latency percentiles are recorded by every timed run and compared beside the time.
Adding a metric is its own module, nothing else: every module of this package that declares `METRICS` (a
tuple of `Metric`) is found here and listed in the metrics' `order`. (The keys a metric stores in a result's
`metrics` are report schema: benchbench/model/report.py lists them, with their owner, in `METRIC_KEYS`.)
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from benchbench.errors import UserError
from benchbench.metrics.base import Metric


def _discover() -> dict[str, Metric]:
    """Every metric that a module of this package declares in its `METRICS`, in their `order`."""
    found: list[Metric] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name != "base":
            found.extend(getattr(importlib.import_module(f"{__name__}.{info.name}"), "METRICS", ()))
    names = [m.name for m in found]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two metrics of one name among {names}")
    return {m.name: m for m in sorted(found, key=lambda m: m.order)}


ALL: dict[str, Metric] = _discover()
TIME, INSTRUCTIONS = ALL["time"], ALL["instructions"]
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
