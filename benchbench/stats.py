"""Statistics derived from raw samples.

Samples are the authority: everything here is a pure function of them, so a report's stored
statistics are a cache that can be recomputed at any time.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from functools import lru_cache

# Thresholds for the health flags attached to a result.
HIGH_SPREAD = 0.10  # IQR / median above this: the machine or the benchmark is noisy
FEW_SAMPLES = 5  # fewer samples than this: the confidence interval is wide or undefined
NEAR_RESOLUTION = 1000  # a timed block shorter than this many timer ticks is dominated by the clock


@dataclass(frozen=True)
class Stats:
    n: int
    median: float
    q1: float
    q3: float
    iqr: float
    mean: float
    stdev: float
    min: float
    max: float
    ci_low: float
    ci_high: float
    ci_level: float
    rel_spread: float  # IQR / median
    rel_ci: float  # half width of the median's confidence interval / median

    def to_dict(self) -> dict:
        return asdict(self)


def quantile(sorted_xs: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of already sorted data."""
    if not sorted_xs:
        raise ValueError("quantile of no data")
    pos = (len(sorted_xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


@lru_cache(maxsize=4096)
def median_ci_ranks(n: int, level: float = 0.95) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the order statistics bracketing the median with >= `level` coverage.

    Distribution-free: the number of samples below the true median is Binomial(n, 1/2), so
    [x_(lo), x_(hi)] covers it with probability sum_{k=lo+1}^{hi} C(n, k) / 2^n. No normality is
    assumed, which matters for timing data (skewed, with outliers).
    """
    if n < 1:
        raise ValueError("no samples")
    if n < 6:  # too few for a 95% interval: the best we can do is the full range
        return 0, n - 1
    alpha = 1.0 - level
    # Cumulative binomial(n, 1/2) from the low tail; find the largest k with P(X <= k) <= alpha / 2.
    if n > 1000:  # normal approximation, exact enough and avoids huge integers
        half = 1.959963984540054 * math.sqrt(n) / 2 if level == 0.95 else _z(level) * math.sqrt(n) / 2
        k = max(0, math.floor(n / 2 - half))
    else:
        total = 2**n
        cum = 0
        k = -1
        for j in range(n + 1):
            cum += math.comb(n, j)
            if cum / total > alpha / 2:
                break
            k = j
        k = max(k, 0)
    lo, hi = k, n - 1 - k
    return lo, hi


def _z(level: float) -> float:
    return statistics.NormalDist().inv_cdf(0.5 + level / 2)


def summarize(samples: list[float], level: float = 0.95) -> Stats:
    if not samples:
        raise ValueError("cannot summarize an empty list of samples")
    xs = sorted(float(x) for x in samples)
    n = len(xs)
    med = quantile(xs, 0.5)
    q1, q3 = quantile(xs, 0.25), quantile(xs, 0.75)
    lo, hi = median_ci_ranks(n, level)
    ci_low, ci_high = xs[lo], xs[hi]
    stdev = statistics.stdev(xs) if n > 1 else 0.0
    rel_spread = (q3 - q1) / med if med > 0 else math.inf
    rel_ci = (ci_high - ci_low) / 2 / med if med > 0 else math.inf
    return Stats(
        n=n,
        median=med,
        q1=q1,
        q3=q3,
        iqr=q3 - q1,
        mean=statistics.fmean(xs),
        stdev=stdev,
        min=xs[0],
        max=xs[-1],
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=level,
        rel_spread=rel_spread,
        rel_ci=rel_ci,
    )


def health_flags(stats: Stats, block_seconds: float | None, timer_resolution: float | None) -> list[str]:
    """Warnings a reader should see next to a number: why it may not be trustworthy."""
    flags = []
    if stats.rel_spread > HIGH_SPREAD:
        flags.append("high-spread")
    if stats.n < FEW_SAMPLES:
        flags.append("few-samples")
    if block_seconds is not None and timer_resolution and block_seconds < NEAR_RESOLUTION * timer_resolution:
        flags.append("near-timer-resolution")
    return flags
