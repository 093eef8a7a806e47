"""Wall time per call: the metric every run measures unless told otherwise."""

from __future__ import annotations

from benchbench.metrics.base import Metric

TIME = Metric(
    name="time", title="wall time", quantity="time", unit="seconds", rule="rounds", runnable=True,
    help="wall time per call, in rounds of fresh worker processes (default)", order=0,
)

METRICS = (TIME,)
