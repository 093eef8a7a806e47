"""Latency percentiles from per-call samples, each with how many calls support it.

A tail percentile means something only when the samples are single calls (one timed call per sample:
a block of calls averages its tail away) and when there are enough of them: the p-th percentile of n
calls rests on the n * (1 - p) slowest calls, so p99 needs at least 100 calls for one call to stand
beyond it. Below that count the percentile is not given (None) and `note` says how many calls it
had and needs. Pure: numbers in, numbers out; the quantile is the linear-interpolation one that
benchbench uses everywhere (`benchbench.model.stats.quantile`, numpy's default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchbench.model.stats import quantile

# name -> (quantile, the fewest calls that support it: at least one call beyond the percentile)
PERCENTILES: dict[str, tuple[float, int]] = {"p50": (0.50, 2), "p90": (0.90, 10), "p99": (0.99, 100)}


@dataclass(frozen=True)
class Percentile:
    """One percentile of per-call times: its value (None when too few calls support it), the calls it
    was taken from, the fewest it needs, and how many calls lie at or beyond it (its tail)."""

    name: str
    value: float | None
    calls: int
    needs: int
    tail_calls: int

    @property
    def supported(self) -> bool:
        return self.value is not None

    @property
    def note(self) -> str:
        if self.value is None:
            return f"{self.name} needs >= {self.needs} calls, has {self.calls}"
        return f"{self.name} from {self.calls} calls ({self.tail_calls} at or beyond it)"

    def to_dict(self) -> dict[str, float | int | str | None]:
        return {"value": self.value, "calls": self.calls, "needs": self.needs, "tail_calls": self.tail_calls,
                "note": self.note}


def percentiles(samples: Sequence[float]) -> dict[str, Percentile]:
    """p50, p90, p99 and max of per-call times (seconds), each with the calls that support it.

    Raises ValueError on an empty or non-finite input: a latency from nothing is a bug upstream.
    """
    xs = sorted(float(x) for x in samples)
    if not xs:
        raise ValueError("percentiles of no samples")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError("percentiles of non-finite samples")
    n = len(xs)
    out: dict[str, Percentile] = {}
    for name, (q, needs) in PERCENTILES.items():
        if n < needs:
            out[name] = Percentile(name, None, n, needs, 0)
            continue
        value = quantile(xs, q)
        out[name] = Percentile(name, value, n, needs, sum(1 for x in xs if x >= value))
    out["max"] = Percentile("max", xs[-1], n, 1, sum(1 for x in xs if x >= xs[-1]))
    return out


def summary(samples: Sequence[float], prefix: str = "latency") -> dict[str, float | int | str | None]:
    """Flat metrics for a report: `{prefix}_p50_s` ... `{prefix}_max_s` (None when unsupported),
    `{prefix}_calls`, and `{prefix}_note` naming the percentiles that have too few calls."""
    ps = percentiles(samples)
    out: dict[str, float | int | str | None] = {f"{prefix}_{name}_s": p.value for name, p in ps.items()}
    out[f"{prefix}_calls"] = ps["max"].calls
    missing = [p.note for p in ps.values() if not p.supported]
    if missing:
        out[f"{prefix}_note"] = "; ".join(missing)
    return out


def has_summary(metrics: Mapping[str, Any]) -> bool:
    """Whether a result's metrics hold a percentile summary (`summary` above, any prefix): the mark of a case
    timed one call per sample."""
    return any(k.endswith("_calls") and f"{k[:-len('_calls')]}_max_s" in metrics for k in metrics)
