"""Statistics derived from raw samples.

Samples are the authority: everything here is a pure function of them, so a report's stored
statistics are a cache that can be recomputed at any time.

A result is measured in rounds: each round is a fresh worker process that visits every case once.
Samples inside one round share that process's luck (its memory layout, the CPU it landed on, the
neighbour that was busy that minute), so they are not independent draws of what the next run would
see. On shared machines the spread *between* rounds is often ten times the spread inside one. The
unit of evidence is therefore the round: `summarize_rounds` reduces each round to its median and
builds the estimate and its interval from those values (a Student t interval on their logarithms,
with R - 1 degrees of freedom), so an interval is only narrow when the rounds agree. With a single
round (old reports, `--rounds 1`) it falls back to the distribution-free interval of the samples,
which describes that one process only.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

# Thresholds for the health flags attached to a result.
HIGH_SPREAD = 0.10  # IQR / median above this: the machine or the benchmark is noisy
FEW_SAMPLES = 5  # fewer samples than this: the confidence interval is wide or undefined
NEAR_RESOLUTION = 1000  # a timed block shorter than this many timer ticks is dominated by the clock
# Rounds disagree when their medians spread this many times more than their own intervals explain,
# and by more than ROUNDS_DISAGREE_MIN (relative): below that the disagreement is not worth a flag.
ROUNDS_DISAGREE_FACTOR = 3.0
ROUNDS_DISAGREE_MIN = 0.02


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
    rounds: int = 1  # rounds (worker processes) the samples came from
    # Between-round spread: the standard deviation of the log round medians (about the coefficient
    # of variation between processes); 0 with a single round.
    between_rel_sd: float = 0.0
    # Within-round spread: the median over rounds of each round's relative CI half width.
    within_rel_ci: float = 0.0

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
    mean = statistics.fmean(xs)
    # two passes with an exact sum: as accurate as statistics.stdev for timings, and linear in time
    # (statistics.stdev sums exact fractions: seconds for a million samples)
    stdev = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    rel_spread = (q3 - q1) / med if med > 0 else math.inf
    rel_ci = (ci_high - ci_low) / 2 / med if med > 0 else math.inf
    return Stats(
        n=n,
        median=med,
        q1=q1,
        q3=q3,
        iqr=q3 - q1,
        mean=mean,
        stdev=stdev,
        min=xs[0],
        max=xs[-1],
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=level,
        rel_spread=rel_spread,
        rel_ci=rel_ci,
    )


def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t with df degrees of freedom (scipy when available)."""
    from scipy.stats import t

    return float(t.ppf(p, df))


def log_t_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """(geometric mean, low, high, sd of logs) of positive values: a t interval on their logarithms."""
    logs = [math.log(v) for v in values]
    n = len(logs)
    m = statistics.fmean(logs)
    sd = statistics.stdev(logs) if n > 1 else 0.0
    if n < 2:
        return math.exp(m), math.exp(m), math.exp(m), 0.0
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return math.exp(m), math.exp(m - half), math.exp(m + half), sd


def summarize_rounds(rounds: list[list[float]], level: float = 0.95) -> Stats:
    """Statistics of samples measured in rounds (see the module docstring): the estimate is the
    geometric mean of the round medians, its interval a t interval across rounds. Spread figures
    (IQR, quartiles, min, max, mean, stdev) describe all samples pooled."""
    rounds = [r for r in rounds if r]
    if not rounds:
        raise ValueError("cannot summarize rounds without samples")
    pooled = summarize([x for r in rounds for x in r], level)
    if len(rounds) == 1:
        return pooled
    per_round = [summarize(r, level) for r in rounds]
    meds = [s.median for s in per_round]
    if min(meds) <= 0:  # a clock that reads zero: no logarithms, keep the pooled figures
        return replace(pooled, rounds=len(rounds))
    est, lo, hi, sd = log_t_interval(meds, level)
    within = statistics.median(s.rel_ci for s in per_round)
    return replace(pooled, median=est, ci_low=lo, ci_high=hi, rel_ci=(hi - lo) / 2 / est,
                   rel_spread=pooled.iqr / est, rounds=len(rounds), between_rel_sd=sd, within_rel_ci=within)


def rounds_disagree(stats: Stats) -> bool:
    """The rounds' medians spread far more than each round's own interval explains: something that
    differs between processes (placement, a noisy neighbour, the order of cases) moves this case."""
    if stats.rounds < 2:
        return False
    expected = stats.within_rel_ci / 1.96  # the standard error of a round's median, relative
    return stats.between_rel_sd > max(ROUNDS_DISAGREE_FACTOR * expected, ROUNDS_DISAGREE_MIN)


def health_flags(stats: Stats, block_seconds: float | None, timer_resolution: float | None) -> list[str]:
    """Warnings a reader should see next to a number: why it may not be trustworthy."""
    flags = []
    if stats.rel_spread > HIGH_SPREAD:
        flags.append("high-spread")
    if stats.n < FEW_SAMPLES:
        flags.append("few-samples")
    if block_seconds is not None and timer_resolution and block_seconds < NEAR_RESOLUTION * timer_resolution:
        flags.append("near-timer-resolution")
    if rounds_disagree(stats):
        flags.append("rounds-disagree")
    return flags
