"""What a metric is: one object that says how a case is measured in it and how two measurements compare.

A `Metric` declares its name, the unit its values are in (the output layer formats by unit:
benchbench/output/units.py), whether lower is better, how a run measures it (worker options, which
cases, how many rounds) and its comparison rule: `rounds` (a statistical test over rounds of fresh
processes, like time) or `tolerance` (a nearly deterministic value that changes only beyond a tolerance,
like instruction counts and peak memory). Code elsewhere asks the metric; it never tests its name.

Two kinds of metric exist:
- a metric a run measures on its own (`runnable`): time, or instructions counted under Callgrind. A
  result says which one it holds by its timing method (`timing_method`).
- a metric every timed run records beside the time, read back from each round's record (`compare_results`
  is set): peak memory, compile time. These compare in rows of their own (`MetricRow`), next to the
  time rows, and the gate judges them by their own rule.

The registry of metrics is benchbench/metrics/__init__.py: it finds every module of this package that
declares `METRICS`, so a new metric is its own module (and its tests), nothing else. This module holds the
types only, so that each metric's module can import them without importing the others.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchbench.errors import UserError

RULES = ("rounds", "tolerance")
UNITS = ("seconds", "count", "bytes", "per_second", "joules")
# What a MetricRow says, in the metric's own direction: `worse` is a regression of that metric.
ROW_VERDICTS = ("worse", "better", "same", "noisy", "incomparable")


@dataclass(frozen=True)
class MetricRow:
    """One key, one metric recorded beside the time: the baseline's value against the other's."""

    metric: str
    key: Any  # report.CaseKey
    base: float | None
    other: float | None
    verdict: str  # one of ROW_VERDICTS
    why: str
    ratio: float | None = None  # other / base
    details: Mapping[str, Any] = field(default_factory=dict)  # the rule's own numbers (tolerance, interval, ...)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "case": self.key.label, "key": self.key.to_dict(), "base": self.base,
                "other": self.other, "ratio": self.ratio, "verdict": self.verdict, "why": self.why,
                **({"details": dict(self.details)} if self.details else {})}


_PERCENT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*$")


def parse_percent(text: Any, what: str, high: float = 10.0) -> float:
    """"5%" -> 0.05, above 0 and below `high` (a fraction); anything else is a one-line error."""
    m = _PERCENT.match(str(text)) if isinstance(text, str) else None
    if not m:
        raise UserError(f"{what} {text!r}: expected a percentage such as 5%")
    value = float(m[1]) / 100
    if not 0 < value < high:
        raise UserError(f"{what} {text!r}: must be above 0% and below {100 * high:g}%")
    return value


@contextlib.contextmanager
def _no_options(worker_env: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    yield {"worker_env": dict(worker_env)}


@dataclass(frozen=True)
class Metric:
    """One metric. Defaults describe a metric measured by timing alone (time)."""

    name: str
    title: str  # in words, for headings: "wall time", "peak memory"
    quantity: str  # what a ratio of its values is a ratio of: "time", "instruction count"
    unit: str  # one of UNITS
    rule: str  # one of RULES
    lower_is_better: bool = True
    # results of this metric carry this timing method (None: any timing method no other metric claims)
    timing_method: str | None = None
    runnable: bool = False  # `run --metric NAME` / `ab --metric NAME` measure it in a run of its own
    help: str = ""  # one line for --help and docs
    default_rounds: int | None = None  # rounds when not asked (None: the profile's)
    # A run of this metric: `require()` fails early (one line) when the machine cannot measure it;
    # `plan(cases)` keeps the cases it can measure; `workers(worker_env)` is a context that gives the
    # runner's options (its environment, a wrapper) and cleans up after the run.
    require: Callable[[], None] | None = None
    plan: Callable[[list[Any]], list[Any]] | None = None
    workers: Callable[[Mapping[str, str]], contextlib.AbstractContextManager[dict[str, Any]]] = _no_options
    start_note: str | None = None  # said before a run of it starts (a slow start, for instance)
    # How a regression of it is explained (`--profile-regressions`): "profile" (torch.profiler in a worker per
    # side, operators diffed) or "functions" (the per-function diff its own results carry)
    explain: str = "profile"
    # A metric recorded beside the time: (key, base result, other result, settings) -> a row, or None when
    # neither side recorded it. `settings`: the per-case settings it reads (gate rules) and their defaults.
    compare_results: Callable[[Any, Any, Any, Mapping[str, Any]], MetricRow | None] | None = None
    value: Callable[[Any], float | None] | None = None  # one result's value (history's series), None: not recorded
    missing: Callable[[Any], str | None] | None = None  # why a result has no value, in one line (None: not known)
    settings: Mapping[str, Any] = field(default_factory=dict)
    parse_setting: Callable[[str, Any, str], Any] | None = None  # (name, raw value, where) -> value, or UserError
    # Two results of this metric that cannot be compared: why, in words (None: comparable)
    incomparable: Callable[[Any, Any], str | None] | None = None
    rule_text: str = ""  # the comparison rule in one sentence, for summaries
    order: int = 100  # where it stands in lists (--metric choices, the metrics of a comparison): lower first

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"metric {self.name}: unknown unit {self.unit!r}")
        if self.rule not in RULES:
            raise ValueError(f"metric {self.name}: unknown rule {self.rule!r}")
        if self.explain not in ("profile", "functions"):
            raise ValueError(f"metric {self.name}: unknown explain {self.explain!r}")

    @property
    def recorded_beside_time(self) -> bool:
        return self.compare_results is not None

    def prepare_cases(self, cases: list[Any]) -> list[Any]:
        return self.plan(cases) if self.plan is not None else cases

    def check(self) -> None:
        """Fail early, before anything slow, when this machine cannot measure the metric."""
        if self.require is not None:
            self.require()
