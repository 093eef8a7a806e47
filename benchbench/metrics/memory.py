"""Peak memory as a metric: read from every timed run's round records, compared by a tolerance rule.

Every round of a timed case records the peak memory of its steady state (benchbench/run/execute.py resets
the backend's peak before warm-up and reads it after the samples): the CUDA and XPU allocators'
`max_memory_allocated` (or `reserved`, for cases that ask for it), MPS's driver-allocated memory, and
on the CPU the process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs).
Which counter was read is the result's `memory_kind`. The CPU's counter holds the whole process (the
interpreter, torch, the case's setup: hundreds of MiB that vary between processes), so there the
backend also records the resident set at the reset (`memory_baseline_bytes`) and the metric compares
the growth over the case, peak less that: the host's high-water RSS delta.

A peak is nearly deterministic: the same code allocates the same tensors. A change is `worse` when the
other side's median peak over rounds lies beyond the tolerance above the baseline's, the tolerance
being the larger of a relative part (default 5%) and an absolute floor (default 16 MiB: page and
allocator-block granularity, and on the CPU the interpreter's own heap), and every round of the other
side lies above every round of the baseline. A change beyond the tolerance whose rounds overlap is
`noisy`: the peak is not steady enough to call. There is no significance test, and none is pretended.
How much the peak varies between runs is measured, not assumed: benchmarks/memory_aa.py, docs/metrics.md.

Both per-case settings can be set in the gate's rules file: `memory_tolerance = "5%"` and
`memory_floor = "16MiB"`.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from typing import Any

from benchbench.errors import UserError
from benchbench.metrics.base import Metric, MetricRow, parse_percent

NAME = "memory"
DEFAULT_TOLERANCE = 0.05
DEFAULT_FLOOR = 16 * 2**20  # bytes
SETTINGS = {"memory_tolerance": DEFAULT_TOLERANCE, "memory_floor": DEFAULT_FLOOR}
BASELINE = "memory_baseline_bytes"  # a result's metric: the process's memory when the peak was reset (CPU)

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(B|KiB|MiB|GiB)?\s*$")
_SCALE = {None: 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def parse_floor(text: Any, what: str = "memory_floor") -> int:
    """"16MiB", "512 KiB", "1GiB" or a number of bytes -> bytes."""
    if isinstance(text, bool):
        raise UserError(f"{what} {text!r}: expected a size such as 16MiB")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _SIZE.match(str(text))
        if not m:
            raise UserError(f"{what} {text!r}: expected a size such as 16MiB")
        value = float(m[1]) * _SCALE[m[2]]
    if not 0 <= value < 2**50:
        raise UserError(f"{what} {text!r}: must be between 0 and 1 PiB")
    return int(value)


def parse_setting(name: str, value: Any, where: str) -> float:
    """A rules-file setting of this metric: memory_tolerance ("5%") or memory_floor ("16MiB")."""
    if name == "memory_tolerance":
        return parse_percent(value, f"{where}: {name}", high=10.0)
    return parse_floor(value, f"{where}: {name}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _baseline(record: dict[str, Any]) -> float | None:
    v = (record.get("metrics") or {}).get(BASELINE)
    return float(v) if _number(v) else None


def round_peaks(result: Any) -> list[float]:
    """Each round's peak in bytes (the result's single peak when it has no round records)."""
    if result is None or not getattr(result, "ok", False):
        return []
    peaks = [float(r["peak_memory_bytes"]) for r in result.rounds if _number(r.get("peak_memory_bytes"))]
    if not peaks and _number(result.peak_memory_bytes):
        peaks = [float(result.peak_memory_bytes)]
    return peaks


def grown(result: Any) -> list[float] | None:
    """Each round's growth over the case (peak less the process's memory at the reset), where every round
    recorded that baseline (the CPU's resident set); None where the peak is the allocator's own."""
    if result is None or not getattr(result, "ok", False):
        return None
    records = [r for r in result.rounds if _number(r.get("peak_memory_bytes"))]
    if not records:
        base = (result.metrics or {}).get(BASELINE)
        if _number(result.peak_memory_bytes) and _number(base):
            return [max(0.0, float(result.peak_memory_bytes) - float(base))]
        return None
    baselines = [_baseline(r) for r in records]
    if any(b is None for b in baselines):
        return None
    return [max(0.0, float(r["peak_memory_bytes"]) - b) for r, b in zip(records, baselines, strict=True)]


def values(result: Any) -> tuple[list[float], str]:
    """(each round's value, what it is): the growth over the case where the peak counts the whole process,
    else the peak."""
    growth = grown(result)
    return (growth, "growth") if growth is not None else (round_peaks(result), "peak")


def value(result: Any) -> float | None:
    """A result's peak memory (its growth over the case on the CPU): the median over its rounds."""
    got, _ = values(result)
    return statistics.median(got) if got else None


def _kind(result: Any) -> Any:
    return result.memory_kind


def compare_results(key: Any, base: Any, other: Any, settings: Mapping[str, Any] | None = None) -> MetricRow | None:
    """The tolerance rule on two results' peaks; None when neither side recorded one."""
    settings = settings or {}
    tolerance = float(settings.get("memory_tolerance") or DEFAULT_TOLERANCE)
    floor = float(settings.get("memory_floor", DEFAULT_FLOOR))
    (a, what_a), (b, what_b) = values(base), values(other)
    if not a and not b:
        return None
    if not a or not b:
        return MetricRow(NAME, key, statistics.median(a) if a else None, statistics.median(b) if b else None,
                         "incomparable", "peak memory recorded on one side only")
    ma, mb = statistics.median(a), statistics.median(b)
    if _kind(base) != _kind(other):
        return MetricRow(NAME, key, ma, mb, "incomparable",
                         f"different memory counters: {_kind(base)} vs {_kind(other)}")
    if what_a != what_b:
        return MetricRow(NAME, key, ma, mb, "incomparable", f"the {what_a} over the case against the {what_b} "
                         "(one side recorded the process's memory at the reset, the other did not)")
    limit = max(tolerance * ma, floor)
    ratio = mb / ma if ma > 0 else None
    details = {"limit_bytes": limit, "tolerance": tolerance, "floor_bytes": floor, "rounds": [len(a), len(b)],
               "value": what_a}
    diff = mb - ma
    if abs(diff) <= limit:
        return MetricRow(NAME, key, ma, mb, "same", f"within {_size(limit)} of the baseline", ratio, details)
    apart = min(b) > max(a) if diff > 0 else max(b) < min(a)
    if not apart:
        return MetricRow(NAME, key, ma, mb, "noisy", f"{_signed(diff)} beyond the {_size(limit)} tolerance, but the "
                         "rounds of the two sides overlap", ratio, details)
    verdict = "worse" if diff > 0 else "better"
    return MetricRow(NAME, key, ma, mb, verdict, f"{_signed(diff)} peak memory, beyond the {_size(limit)} tolerance",
                     ratio, details)


def _size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _signed(n: float) -> str:
    return ("+" if n >= 0 else "-") + _size(abs(n))


PEAK_MEMORY = Metric(
    name=NAME, title="peak memory", quantity="peak memory", unit="bytes", rule="tolerance",
    help="the allocator's (or on the CPU the process's resident) peak during the case, from every timed run",
    compare_results=compare_results, value=value, settings=SETTINGS, parse_setting=parse_setting,
    rule_text=(f"Peak memory regresses when the median over rounds grew beyond +{100 * DEFAULT_TOLERANCE:g}% or "
               f"+{DEFAULT_FLOOR // 2**20} MiB (the larger; `memory_tolerance`, `memory_floor` in the rules) and "
               "every round lies above the baseline's."),
    order=20,
)

METRICS = (PEAK_MEMORY,)
