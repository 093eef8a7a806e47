"""Numbers with their units, as people read them: times, SI rates, bytes, speed ratios."""

from __future__ import annotations

import math

from benchbench.metrics import of_method
from benchbench.model.report import Result


def fmt_scaled(value: float | None, unit: str) -> str:
    """Three significant digits in the largest of unit, m-, u-, n-unit that keeps the number >= 1
    ("1.5 ms", "12.3 mJ"); nano- below that, "-" for None."""
    if value is None:
        return "-"
    for prefix, scale in (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("n", 1e-9)):
        if abs(value) >= scale or prefix == "n":
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"  # pragma: no cover


def fmt_time(seconds: float | None) -> str:
    return fmt_scaled(seconds, "s")


def fmt_joules(joules: float | None) -> str:
    return fmt_scaled(joules, "J")


def fmt_duration(seconds: float) -> str:
    """A wall time a person reads: "48 s", "3 min 05 s"."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s"


def fmt_count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} instr"


def fmt_value(value: float | None, unit: str) -> str:
    """A metric's value in its unit (benchbench/metrics/base.py UNITS): the one place a unit is formatted."""
    return {"seconds": fmt_time, "count": fmt_count, "bytes": fmt_bytes, "per_second": fmt_rate,
            "joules": fmt_joules}[unit](value)


def fmt_rate(value: float | None) -> str:
    """Events per second, e.g. tokens/s: "742/s", "3,259/s", "12.5/s"."""
    return "-" if value is None else f"{value:,.0f}/s" if abs(value) >= 100 else f"{value:.3g}/s"


def fmt_per_call(value: float | None, timing_method: str | None = None) -> str:
    """A value per call in the unit of the metric the result holds: seconds, or instructions (Callgrind)."""
    return fmt_value(value, of_method(timing_method).unit)


def fmt_si(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def rate_text(result: Result) -> str:
    """The one rate that best describes the case: FLOP/s if declared, else bytes/s, else items/s."""
    d = result.derived()
    if "flops_per_s" in d:
        return fmt_si(d["flops_per_s"], "FLOP/s")
    if "bytes_per_s" in d:
        return fmt_si(d["bytes_per_s"], "B/s")
    if "items_per_s" in d:
        return fmt_si(d["items_per_s"], f"{result.work.get('items_unit', 'items')}/s")
    return "-"


def fmt_speed(ratio: float) -> str:
    """A time ratio as words: 0.37 -> '2.70x faster'."""
    if ratio <= 0 or not math.isfinite(ratio):
        return "-"
    return f"{1 / ratio:.2f}x faster" if ratio < 1 else f"{ratio:.2f}x slower" if ratio > 1 else "same speed"
