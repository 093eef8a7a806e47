"""Change points in a noisy performance series: E-Divisive means with a Student t-test.

The method is the one MongoDB's signal-processing-algorithms, Hunter and Apache Otava use on CI
performance data, written here in numpy so benchbench has no extra dependency:

1. **Energy statistic** (Székely and Rizzo; Matteson and James, "E-Divisive"). For a segment split at
   tau into X (left, m points) and Y (right, n points)::

       E(tau) = 2 mean|x - y| - mean|x - x'| - mean|y - y'|        (pairs of distinct points)
       Q(tau) = m n / (m + n) * E(tau)

   E is zero when X and Y have the same distribution and grows with any difference between them;
   it uses distances, not squares, so one outlier cannot dominate it. The best split of a segment
   is the tau that maximises Q, with at least `min_size` points on each side.
2. **Recursive splitting**: split the whole series at its best tau, then each half at its own, and
   so on, as long as each split passes the test below.
3. **Significance by a Student t-test** between the two sides, with a strict p-value
   (`max_pvalue`). This is Hunter's replacement for E-Divisive's permutation test: deterministic and
   fast, and on performance data (noise around a level) as powerful. The pooled (equal-variance)
   form keeps its power when a step is near either end of the series, where Welch's would have few
   degrees of freedom. Values are first winsorised at 3 robust standard deviations (from the median
   absolute deviation) around their side's median: a few slow outliers, common in timings, neither
   hide a step nor fake one. Because tau is the best of many splits, the p-value of that one split
   is optimistic; the strict threshold pays for the search. It was calibrated on synthetic series
   so that at most 1% of series with no step get a false change point
   (benchmarks/changepoint_calibration.py; the table is in the README).
4. **Pruning** (Hunter's merge): every change point is re-tested between its neighbours, and the
   weakest one that no longer passes is removed, until all pass. A split that was significant
   against a long, mixed segment must also be significant against its actual neighbours.

Optional weights (e.g. 1 / half-width² of each point's confidence interval, see
`weights_from_intervals`) make the t-test trust precise points more: weighted means and variances
with Kish's effective sample sizes. The calibration covers the unweighted test, which is
what `benchbench history` uses; weights are for series whose points differ a lot in precision.

Each change point carries the size of the step as a ratio of medians (after / before, over the
neighbouring segments), its percentile bootstrap interval (seeded, so the answer is reproducible),
and its p-value. Everything here is a pure function of its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

# Calibrated defaults (see the module docstring and the README's calibration table).
MAX_PVALUE = 3e-5
MIN_SIZE = 4
LEVEL = 0.95
BOOTSTRAP = 2000
CLIP = 3.0  # robust standard deviations


@dataclass(frozen=True)
class ChangePoint:
    """A step in a series: `index` is the first point of the new level."""

    index: int
    ratio: float  # median after / median before (> 1: the values went up)
    ratio_low: float  # bootstrap interval of the ratio at `level`
    ratio_high: float
    pvalue: float  # t-test between the neighbouring segments
    before: int  # points in the segment before / after
    after: int
    median_before: float
    median_after: float

    def to_dict(self) -> dict:
        return asdict(self)


def energy_statistic(values: Sequence[float], min_size: int = MIN_SIZE) -> np.ndarray:
    """Q(tau) for every split tau of `values` (NaN where a side would have fewer than `min_size` points).

    Q[tau] compares values[:tau] with values[tau:]. O(n²) memory and time through 2-D prefix sums of
    the distance matrix, which is fine for the few hundred runs of a benchmark's history.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    q = np.full(n + 1, np.nan)
    min_size = max(2, int(min_size))
    if n < 2 * min_size:
        return q
    dist = np.abs(x[:, None] - x[None, :])
    prefix = np.zeros((n + 1, n + 1))
    prefix[1:, 1:] = dist.cumsum(0).cumsum(1)

    def block(r0, r1, c0, c1):
        return prefix[r1, c1] - prefix[r0, c1] - prefix[r1, c0] + prefix[r0, c0]

    tau = np.arange(min_size, n - min_size + 1)
    m, k = tau.astype(float), (n - tau).astype(float)
    between = block(0, tau, tau, n) / (m * k)
    left = block(0, tau, 0, tau) / (m * (m - 1))  # the full block counts each pair twice, diagonal is 0
    right = block(tau, n, tau, n) / (k * (k - 1))
    q[tau] = m * k / (m + k) * (2 * between - left - right)
    return q


def ttest_pvalue(left: np.ndarray, right: np.ndarray, w_left: np.ndarray | None = None,
                 w_right: np.ndarray | None = None, clip: float | None = CLIP) -> float:
    """Two-sided p-value of Student's (pooled) t-test for equal levels of `left` and `right`.

    With `clip`, each value is first winsorised at `clip` robust standard deviations from its own
    side's median (the scale: 1.4826 x the median absolute deviation of both sides' residuals), so a
    few slow outliers neither hide a step nor fake one, while clean data keep every degree of freedom.
    With weights: weighted means and a pooled weighted variance over Kish's effective sample sizes.
    """
    from scipy.special import stdtr  # Student's t distribution function, without scipy.stats' overhead

    if clip:
        left, right = _winsorised(np.asarray(left, float), np.asarray(right, float), clip)
    if w_left is None or w_right is None:
        (m1, v1, n1), (m2, v2, n2) = _moments(left), _moments(right)
    else:
        (m1, v1, n1), (m2, v2, n2) = _weighted(left, w_left), _weighted(right, w_right)
    df = n1 + n2 - 2
    if df <= 0:
        return 1.0
    pooled = ((n1 - 1) * v1 + (n2 - 1) * v2) / df
    se2 = pooled * (1 / n1 + 1 / n2)
    if se2 <= 0:
        return 0.0 if m1 != m2 else 1.0
    return float(2 * stdtr(df, -abs(m2 - m1) / np.sqrt(se2)))


def _winsorised(left: np.ndarray, right: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray]:
    ml, mr = np.median(left), np.median(right)
    scale = 1.4826 * float(np.median(np.abs(np.r_[left - ml, right - mr])))
    if scale <= 0:
        return left, right
    bound = clip * scale
    return ml + np.clip(left - ml, -bound, bound), mr + np.clip(right - mr, -bound, bound)


def _moments(x: np.ndarray) -> tuple[float, float, float]:
    return float(np.mean(x)), float(np.var(x, ddof=1)) if len(x) > 1 else 0.0, float(len(x))


def _weighted(x: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Weighted mean, unbiased weighted variance (reliability weights) and Kish's effective sample size."""
    w = w / w.sum()
    mean = float(np.sum(w * x))
    n_eff = 1.0 / float(np.sum(w * w))
    var = float(np.sum(w * (x - mean) ** 2)) / (1.0 - float(np.sum(w * w)))
    return mean, var, n_eff


def weights_from_intervals(low: Sequence[float | None], high: Sequence[float | None]) -> np.ndarray:
    """Weights 1 / half-width² from each point's interval, normalised to mean 1.

    A missing, zero or non-finite width gets the median width (a point is not infinitely precise
    because its interval could not be computed), and widths are floored at a tenth of the median so
    that no single point outweighs the rest.
    """
    lo = np.array([np.nan if v is None else v for v in low], dtype=float)
    hi = np.array([np.nan if v is None else v for v in high], dtype=float)
    half = (hi - lo) / 2
    good = np.isfinite(half) & (half > 0)
    typical = float(np.median(half[good])) if good.any() else 1.0
    half = np.where(good, half, typical)
    half = np.maximum(half, typical / 10)
    w = 1.0 / half**2
    return w / w.mean()


def _pvalue(x: np.ndarray, w: np.ndarray | None, a: int, tau: int, b: int) -> float:
    return ttest_pvalue(x[a:tau], x[tau:b], None if w is None else w[a:tau], None if w is None else w[tau:b])


def _ratio_interval(before: np.ndarray, after: np.ndarray, level: float, resamples: int,
                    rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap interval of median(after) / median(before)."""
    b = np.median(before[rng.integers(0, len(before), (resamples, len(before)))], axis=1)
    a = np.median(after[rng.integers(0, len(after), (resamples, len(after)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = a / b
    ratios = ratios[np.isfinite(ratios)]
    if not len(ratios):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    return float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail))


def detect(values: Sequence[float], weights: Sequence[float] | None = None, *, max_pvalue: float = MAX_PVALUE,
           min_size: int = MIN_SIZE, level: float = LEVEL, resamples: int = BOOTSTRAP,
           seed: int = 0) -> list[ChangePoint]:
    """Change points of `values` (in order of time), earliest first.

    `weights` (one per value, e.g. from `weights_from_intervals`) weight the t-test; `max_pvalue` is
    the significance threshold; `min_size` the fewest points a segment may have; `level` and
    `resamples` set the step's bootstrap interval, seeded by `seed`.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("values must be a flat sequence of finite numbers")
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and (w.shape != x.shape or not np.all(np.isfinite(w)) or np.any(w <= 0)):
        raise ValueError("weights must be positive and finite, one per value")
    min_size = max(2, int(min_size))
    n = len(x)

    # 2. recursive splitting: each segment at its best energy split, while the split is significant
    found: list[int] = []
    todo = [(0, n)]
    while todo:
        a, b = todo.pop()
        if b - a < 2 * min_size:
            continue
        q = energy_statistic(x[a:b], min_size)
        if not np.any(np.isfinite(q)) or np.nanmax(q) <= 0:
            continue
        tau = a + int(np.nanargmax(q))
        if _pvalue(x, w, a, tau, b) <= max_pvalue:
            found.append(tau)
            todo += [(a, tau), (tau, b)]

    # 4. pruning: re-test each change point between its neighbours; drop the weakest failure, repeat
    found.sort()
    while found:
        bounds = [0, *found, n]
        pvalues = [_pvalue(x, w, bounds[i], bounds[i + 1], bounds[i + 2]) for i in range(len(found))]
        worst = int(np.argmax(pvalues))
        if pvalues[worst] <= max_pvalue:
            break
        del found[worst]

    bounds = [0, *found, n]
    out = []
    for i, tau in enumerate(found):
        before, after = x[bounds[i]:tau], x[tau:bounds[i + 2]]
        rng = np.random.default_rng([seed, tau])
        low, high = _ratio_interval(before, after, level, resamples, rng)
        mb, ma = float(np.median(before)), float(np.median(after))
        out.append(ChangePoint(
            index=tau, ratio=ma / mb if mb else float("nan"), ratio_low=low, ratio_high=high,
            pvalue=_pvalue(x, w, bounds[i], tau, bounds[i + 2]), before=len(before), after=len(after),
            median_before=mb, median_after=ma,
        ))
    return out
