"""Change points in a noisy performance series: a calibrated t-statistic scan with binary segmentation.

The question for one segment of a series is "did the level change, and where?". For a single shift
of the mean in Gaussian noise of unknown variance, the likelihood-ratio test answers both: it is the
largest two-sample (pooled Student) t statistic over all split positions, and its argmax is the
estimate of where the new level starts (the standardized CUSUM scan, e.g. Worsley 1979; James,
James and Siegmund 1987). This module runs that scan, calibrated, on a form of the series that
suits timings:

1. **Log values, outliers left out.** Timings are positive with multiplicative noise and steps, so
   the scan reads log values (raw values if any is not positive). A few slow outliers are common (a
   run disturbed by another process): a value farther than `clip` robust standard deviations from
   the moving median of the `WINDOW` values around it is left out of the scan (`outliers`). The
   moving median follows a step (a level of 3 values or more survives it) and the scale comes from
   the median absolute difference of consecutive values, which a step does not move. Leaving an
   outlier out of the means, rather than clipping it or replacing it by the local median, keeps it
   from pulling its side; a value left out that could still be Gaussian noise (within twice the
   bound) counts in the noise as a value at the bound (`extra_ss`), because the Gaussian values the
   filter drops by chance would otherwise shrink the variance and inflate every t (measured: without
   it, about twice the false alarms in series of 12 to 25 values).
2. **Scan.** For a segment of n values and every split k with at least `min_size` values on each
   side: `t_k² = (n - 2) D_k / (T - D_k)`, with `D_k = k (n - k) / n · (mean left - mean right)²`
   the between-sides sum of squares and `T` the total sum of squares; that is Student's pooled t.
   The split is the k with the largest |t_k|.
3. **Calibrated significance.** The largest of many correlated t statistics is not Student-t
   distributed; the p-value of the scan (the chance that a segment with no change has a max |t| this
   large somewhere) comes from Siegmund's approximation for the maximum of a standardized CUSUM with
   its discrete-time correction (`scan_pvalue`). It depends on the segment's length and `min_size`
   only, so the false-alarm rate per segment holds for any length, not only the one calibrated.
   Checked by simulation (`benchmarks/changepoint_calibration.py --approximation`, table in
   docs/calibration.md): for 8 to 500 values it is within -21% and +11% of the simulated tail
   at p = 0.05, 0.01 and 0.001 (12 to 50 values get the lower ones: optimistic). The default `MAX_PVALUE`
   (0.005, below the 1% target to absorb that and the outliers that pass the filter) keeps the measured
   rate of false change points in flat series at or under 1% for every length and noise measured
   (`--null`).
4. **Several change points**: binary segmentation (split the series at its best significant split,
   then each side, while the split is significant), then a merge pass as in Hunter: every change
   point is re-tested on the segment between its neighbours and the weakest that no longer passes is
   removed, until all pass.

This is no longer E-Divisive means (as MongoDB's signal-processing-algorithms, Hunter and Apache
Otava use): its energy statistic places a mean shift less precisely than the t scan, and a fixed
p-value on the best split's Student t-test has no known false-alarm rate per series (the search
over splits makes it optimistic by an amount that depends on the length). The scan keeps their good
parts: deterministic, fast (O(n) per segment), robust to outliers, several change points, a merge.

Optional weights (e.g. `weights_from_intervals`) make precise points count more: weighted means and
sums of squares, with the scan's positions in information time (cumulative weight). The calibration
covers the unweighted scan, which is what `benchbench history` uses.

Each change point carries the size of the step as a ratio of medians (after / before, over the
neighbouring segments, in the original values), its percentile bootstrap interval (seeded, so the
answer is reproducible), and the scan p-value of that split between its neighbours. Everything here
is a pure function of its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

# Calibrated defaults (see the module docstring and the calibration table in docs/calibration.md).
MAX_PVALUE = 0.005  # scan p-value (false-alarm probability of one segment with no change)
MIN_SIZE = 4
LEVEL = 0.95
BOOTSTRAP = 2000
CLIP = 3.5  # robust standard deviations from the moving median beyond which a value is an outlier
WINDOW = 5  # values in that moving median


@dataclass(frozen=True)
class ChangePoint:
    """A step in a series: `index` is the first point of the new level."""

    index: int
    ratio: float  # median after / median before (> 1: the values went up)
    ratio_low: float  # bootstrap interval of the ratio at `level`
    ratio_high: float
    pvalue: float  # scan p-value of this split on the segment between the neighbouring change points
    before: int  # points in the segment before / after
    after: int
    median_before: float
    median_after: float

    def to_dict(self) -> dict:
        return asdict(self)


def scan_values(values: Sequence[float]) -> np.ndarray:
    """The scale the scan reads: log values (raw values if any is not positive)."""
    x = np.asarray(values, dtype=float)
    return np.log(x) if len(x) and np.all(x > 0) else x.copy()


def robust_scale(values: Sequence[float]) -> float:
    """The noise's standard deviation from 1.4826 x median |difference of consecutive values| / sqrt(2):
    steps and outliers barely move it."""
    y = np.asarray(values, dtype=float)
    return 1.4826 * float(np.median(np.abs(np.diff(y)))) / np.sqrt(2) if len(y) > 1 else 0.0


def outliers(values: Sequence[float], clip: float | None = CLIP, window: int = WINDOW) -> np.ndarray:
    """Which values the scan leaves out: farther than `clip` robust standard deviations from the
    median of the `window` values centred on them (fewer at the ends).

    The robust standard deviation is `robust_scale`, which a step does not move; the moving median
    follows a step (a level of at least window // 2 + 1 values survives it), so the values next to a
    step are not taken for outliers. Call it on `scan_values`.
    """
    return _deviations(values, window) > clip if clip else np.zeros(len(values), dtype=bool)


def _deviations(values: Sequence[float], window: int = WINDOW) -> np.ndarray:
    """|value - moving median| in robust standard deviations (0 where the scale is 0)."""
    y = np.asarray(values, dtype=float)
    scale = robust_scale(y)
    if len(y) < 3 or scale <= 0:
        return np.zeros(len(y))
    n, half = len(y), max(1, int(window) // 2)
    centre = np.empty(n)
    if n > 2 * half:
        centre[half:n - half] = np.median(np.lib.stride_tricks.sliding_window_view(y, 2 * half + 1), axis=1)
    for i in [*range(min(half, n)), *range(max(half, n - half), n)]:  # the ends: a shorter window
        centre[i] = np.median(y[max(0, i - half):i + half + 1])
    return np.abs(y - centre) / scale


def scan_statistic(values: Sequence[float], min_size: int = MIN_SIZE,
                   weights: Sequence[float] | None = None, extra_ss: float = 0.0) -> np.ndarray:
    """|t_k| for every split k of `values` (NaN where a side would have fewer than `min_size` points).

    t[k] is the pooled two-sample Student t statistic of values[:k] against values[k:] (weighted
    means and sums of squares with `weights`); `extra_ss` is added to the within-sides sum of
    squares (what the values left out as outliers contribute to the noise). O(n) through prefix sums.
    """
    z = np.asarray(values, dtype=float)
    n = len(z)
    t = np.full(n + 1, np.nan)
    min_size = max(1, int(min_size))
    if n < max(3, 2 * min_size):
        return t
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    z = z - np.average(z, weights=w)  # centred: the prefix sums below do not cancel large levels
    cw, cz = np.cumsum(w), np.cumsum(w * z)
    total_w = cw[-1]
    ss = float(np.sum(w * z * z)) + max(0.0, float(extra_ss))
    k = np.arange(min_size, n - min_size + 1)
    wl, sl = cw[k - 1], cz[k - 1]
    wr = total_w - wl
    between = sl * sl * total_w / (wl * wr)  # = wl wr / W (mean_l - mean_r)², as the overall mean is 0
    within = np.maximum(ss - between, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t2 = np.where(within > 1e-12 * ss, (n - 2) * between / within, np.where(between > 0, np.inf, 0.0))
    t[k] = np.sqrt(t2)
    return t


def _nu(x: np.ndarray) -> np.ndarray:
    """Siegmund's discrete-time overshoot correction ν(x) (Siegmund and Yakir 2007, approximation)."""
    from scipy.special import ndtr

    half = x / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (2 / x) * (ndtr(half) - 0.5) / (half * ndtr(half) + np.exp(-half * half / 2) / np.sqrt(2 * np.pi))
    return np.where(x > 1e-9, v, 1.0)


def scan_pvalue(t: float, n: int, min_size: int = MIN_SIZE, weights: Sequence[float] | None = None) -> float:
    """P(max over splits of |t_k| >= t) for n values with no change (Gaussian noise): the scan's p-value.

    Siegmund's approximation for the two-sided standardized CUSUM with its discrete correction,
    applied to the normal quantile with the same tail probability as a single |t_k| (n - 2 degrees
    of freedom): P ≈ P(|t_first| >= t) + 2 z φ(z) Σ_k C_k ν(sqrt(2 z² C_k)),
    C_k = Δu_k / (2 u_k (1 - u_k)), u_k the fraction of the (weight of the) points left of split k.
    """
    from scipy.special import ndtri, stdtr

    min_size = max(1, int(min_size))
    if n < max(3, 2 * min_size) or not t > 0:
        return 1.0
    if not np.isfinite(t):
        return 0.0
    tail = float(stdtr(n - 2, -t))  # one-sided tail of one split
    if tail <= 0:
        return 0.0
    z = float(-ndtri(tail))
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    u = np.cumsum(w) / np.sum(w)
    k = np.arange(min_size + 1, n - min_size + 1)  # splits after the first: the crossings between them
    uk = u[k - 1]
    c = (w[k - 1] / np.sum(w)) / (2 * uk * (1 - uk))
    crossings = 2 * z * np.exp(-z * z / 2) / np.sqrt(2 * np.pi) * float(np.sum(c * _nu(np.sqrt(2 * z * z * c))))
    return float(min(1.0, 2 * tail + crossings))


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


def _best_split(z: np.ndarray, w: np.ndarray | None, extra: np.ndarray, a: int, b: int,
                min_size: int) -> tuple[int, float]:
    """The best split of z[a:b] and its scan p-value."""
    ws = None if w is None else w[a:b]
    t = scan_statistic(z[a:b], min_size, ws, float(extra[a:b].sum()))
    if not np.any(np.isfinite(t)):
        return a, 1.0
    k = int(np.nanargmax(t))
    return a + k, scan_pvalue(float(t[k]), b - a, min_size, ws)


def _split_pvalue(z: np.ndarray, w: np.ndarray | None, extra: np.ndarray, a: int, tau: int, b: int,
                  min_size: int) -> float:
    """Scan p-value of the split at tau on z[a:b] (its |t| against the max over all splits of that segment)."""
    ws = None if w is None else w[a:b]
    t = scan_statistic(z[a:b], min_size, ws, float(extra[a:b].sum()))[tau - a]
    return 1.0 if np.isnan(t) else scan_pvalue(float(t), b - a, min_size, ws)


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
           min_size: int = MIN_SIZE, clip: float | None = CLIP, level: float = LEVEL, resamples: int = BOOTSTRAP,
           seed: int = 0) -> list[ChangePoint]:
    """Change points of `values` (in order of time), earliest first.

    `weights` (one per value, e.g. from `weights_from_intervals`) weight the scan; `max_pvalue` is
    the significance threshold on the scan p-value (per segment tested); `min_size` the fewest points
    a segment may have; `clip` the outlier bound in robust standard deviations (None: keep every value);
    `level` and `resamples` set the step's bootstrap interval, seeded by `seed`.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("values must be a flat sequence of finite numbers")
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and (w.shape != x.shape or not np.all(np.isfinite(w)) or np.any(w <= 0)):
        raise ValueError("weights must be positive and finite, one per value")
    min_size = max(2, int(min_size))
    n = len(x)
    y = scan_values(x)
    deviation = _deviations(y)
    out_mask = deviation > clip if clip else np.zeros(n, dtype=bool)
    keep = np.flatnonzero(~out_mask)  # the scan runs on the kept values; indices map back
    z = y[keep]
    w = None if w is None else w[keep]
    # A value left out that could be Gaussian noise (within 2 x clip) still counts in the noise, as a
    # value at the bound: the Gaussian values that the filter drops by chance would otherwise shrink
    # the variance and inflate every t. Farther out it is an outlier for sure and counts for nothing.
    doubtful = np.flatnonzero(out_mask & (deviation <= 2 * clip)) if clip else np.zeros(0, dtype=int)
    slot = np.maximum(np.searchsorted(keep, doubtful) - 1, 0)  # the kept value before each
    extra = np.bincount(slot, minlength=len(keep)).astype(float) * (clip or 0.0) ** 2 * robust_scale(y) ** 2
    m = len(z)

    # binary segmentation: each segment at its best split, while the split is significant
    found: list[int] = []
    todo = [(0, m)]
    while todo:
        a, b = todo.pop()
        if b - a < 2 * min_size:
            continue
        tau, p = _best_split(z, w, extra, a, b, min_size)
        if p <= max_pvalue:
            found.append(tau)
            todo += [(a, tau), (tau, b)]

    # merge: re-test each change point between its neighbours; drop the weakest failure, repeat
    found.sort()
    while found:
        bounds = [0, *found, m]
        pvalues = [_split_pvalue(z, w, extra, bounds[i], bounds[i + 1], bounds[i + 2], min_size) for i in range(len(found))]
        worst = int(np.argmax(pvalues))
        if pvalues[worst] <= max_pvalue:
            break
        del found[worst]

    bounds = [0, *found, m]
    at = [0, *(int(keep[k]) for k in found), n]  # the same boundaries in `values`
    out = []
    for i, k in enumerate(found):
        tau = at[i + 1]
        before, after = x[at[i]:tau], x[tau:at[i + 2]]
        rng = np.random.default_rng([seed, tau])
        low, high = _ratio_interval(before, after, level, resamples, rng)
        mb, ma = float(np.median(before)), float(np.median(after))
        out.append(ChangePoint(
            index=tau, ratio=ma / mb if mb else float("nan"), ratio_low=low, ratio_high=high,
            pvalue=_split_pvalue(z, w, extra, bounds[i], k, bounds[i + 2], min_size), before=len(before),
            after=len(after), median_before=mb, median_after=ma,
        ))
    return out
