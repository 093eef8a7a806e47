"""Energy as a metric: joules per call, read from every timed run's round records, compared over rounds.

Every round of a timed case reads the machine's energy counters around its timed calls
(benchbench/measure/energy.py) and records `energy_j_per_call` and `power_w` in its round record, and in the
result what was read (`energy`: "rapl: package-0, dram-0", "nvml: NVIDIA H100 80GB HBM3") or why not
("unavailable: no RAPL counters: ..."). Each round is a fresh process, so the rounds are independent
measurements, as with compile time.

Joules per call are noisy the way time is (the package counter holds the whole socket), so they are
compared like compile time: Welch's t on the logarithms of the rounds' joules per call, at 95%. `worse`
when the whole interval lies above 1 + threshold (default 10%, `energy_threshold` in the gate's rules),
`better` when it lies below 1 / (1 + threshold), `same` when it lies within, else `noisy`. With one round
per side only `same` or `noisy` can come out.

Two results are `incomparable` when either side has no energy (the row says why, in one line: on a VM
without counters that is every case) or when the counters differ (NVML against RAPL, or a package with
and without its DRAM): their joules are not the same quantity.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from benchbench.metrics.base import Metric, MetricRow, parse_percent
from benchbench.metrics.compile_time import LEVEL, rounds_row

NAME = "energy"
DEFAULT_THRESHOLD = 0.10
SETTINGS = {"energy_threshold": DEFAULT_THRESHOLD}

# the keys a case's result carries (benchbench.model.report.METRIC_TYPES types them); the readers in
# benchbench/measure/energy.py record under them
SOURCE = "energy"  # what was read ("rapl: package-0, dram"), or "unavailable: why"
J_PER_CALL = "energy_j_per_call"
WATTS = "power_w"


def parse_setting(name: str, value: Any, where: str) -> float:
    """A rules-file setting of this metric: energy_threshold ("10%")."""
    return parse_percent(value, f"{where}: {name}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def source(result: Any) -> str | None:
    """What the result's energy was read from, "unavailable: why", or None where no energy was asked for
    (older reports, instruction counts)."""
    if result is None or not getattr(result, "ok", False):
        return None
    got = (result.metrics or {}).get(SOURCE)
    return got if isinstance(got, str) else None


def missing(result: Any) -> str | None:
    """Why a result that was asked for energy has none ("energy unavailable: ..."); None where it has some or
    none was asked for."""
    got = source(result)
    if got is None:
        return None
    if got.startswith("unavailable"):
        return f"energy {got}"
    return None if round_values(result) else "energy: no joules per call recorded"


def round_values(result: Any) -> list[float]:
    """Each round's joules per call (the result's own when it has no round records); empty where the energy
    is unavailable."""
    got = source(result)
    if got is None or got.startswith("unavailable"):
        return []
    values = [r["metrics"][J_PER_CALL] for r in result.rounds
              if _number((r.get("metrics") or {}).get(J_PER_CALL))]
    if not values and _number((result.metrics or {}).get(J_PER_CALL)):
        values = [result.metrics[J_PER_CALL]]
    return [float(v) for v in values if v > 0]


def value(result: Any) -> float | None:
    """A result's joules per call: the median over its rounds; None where it has none."""
    values = round_values(result)
    return statistics.median(values) if values else None


def compare_results(key: Any, base: Any, other: Any, settings: Mapping[str, Any] | None = None) -> MetricRow | None:
    """The energy rule on two results; None when neither side was asked for energy."""
    threshold = float((settings or {}).get("energy_threshold") or DEFAULT_THRESHOLD)
    sa, sb = source(base), source(other)
    if sa is None and sb is None:
        return None
    a, b = round_values(base), round_values(other)
    ma, mb = (statistics.median(a) if a else None), (statistics.median(b) if b else None)
    if not a or not b:
        why_a, why_b = missing(base) or "no energy recorded", missing(other) or "no energy recorded"
        if not a and not b:
            why = why_a if why_a == why_b else f"baseline: {why_a}; other: {why_b}"
        else:
            why = f"{'baseline' if not a else 'other'}: {why_a if not a else why_b}"
        return MetricRow(NAME, key, ma, mb, "incomparable", why)
    if sa != sb:
        return MetricRow(NAME, key, ma, mb, "incomparable", f"different energy counters: {sa} vs {sb}")
    return rounds_row(NAME, key, a, b, threshold, "joules per call",
                      {"threshold": threshold, "rounds": [len(a), len(b)], "source": sa})


ENERGY = Metric(
    name=NAME, title="energy per call", quantity="energy per call", unit="joules", rule="rounds",
    help="joules per call from the machine's energy counters (NVML, RAPL, amdsmi), from every timed run",
    compare_results=compare_results, value=value, missing=missing, settings=SETTINGS, parse_setting=parse_setting,
    rule_text=(f"Energy per call regresses when the {LEVEL:.0%} Welch interval over rounds of the joules per call "
               f"lies above +{100 * DEFAULT_THRESHOLD:g}% (`energy_threshold` in the rules); unavailable energy and "
               "different counters are incomparable, never decisive."),
    order=40,
)

METRICS = (ENERGY,)
