"""An interval for the ratio of two sides' quantiles (p50, p90, p99) or means of per-call samples, by a
two-stage bootstrap with the round as the resampling unit.

Per-call samples are not independent within a round: one worker process has its own memory layout,
its own neighbours on the machine and its own luck with the scheduler, so a round's calls share a tail
that the next round may not have. Resampling calls alone would treat 300 calls of three rounds as 300
independent draws and give an interval far too narrow (and false alarms). So each resample first draws
the rounds with replacement (the between-round part), then the calls within each drawn round with
replacement (the within-round part), pools them and takes the statistic (the cluster bootstrap of
Davison and Hinkley, 1997, section 3.8, "strategy 2"; it is slightly conservative). The interval of the
ratio is the percentile interval of other / base over the resamples, each side resampled apart.

With one round per side only the within-round part is left, and the interval rests on the calls being
independent within that round: the rule that reads it (benchbench/metrics/latency.py) says so.

Pure: numbers in, numbers out; seeded by the caller.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class RatioInterval:
    """other / base of a statistic of pooled per-call samples, with its bootstrap interval."""

    ratio: float
    low: float
    high: float
    level: float
    rounds: tuple[int, int]  # rounds (clusters) with samples, per side
    calls: tuple[int, int]  # calls pooled, per side


def statistic(samples: np.ndarray, q: float | None) -> float:
    """The q-quantile (linear interpolation, numpy's default) of `samples`, or their mean for q=None."""
    return float(np.mean(samples)) if q is None else float(np.quantile(samples, q))


class Resamples:
    """`n` two-stage resamples of one side: rounds with replacement, then calls within each drawn round.

    Held as counts, not copies: each resample draws its rounds, then for each drawn round as many calls as
    it has, uniformly from it; `weights[b, j]` is how often call j appears in resample b.
    A statistic of every resample is then a weighted one over the side's sorted calls, so the percentiles
    and the mean of one side share one set of resamples."""

    def __init__(self, rounds: Sequence[np.ndarray], n: int, rng: np.random.Generator) -> None:
        sizes = np.array([len(r) for r in rounds])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        total = int(sizes.sum())
        picks = rng.integers(0, len(rounds), size=(n, len(rounds)))  # the rounds each resample draws
        width = int(sizes.max())
        size_of = sizes[picks][:, :, None]
        calls = offsets[picks][:, :, None] + np.floor(rng.random((n, len(rounds), width)) * size_of).astype(np.int64)
        kept = np.arange(width)[None, None, :] < size_of  # a round shorter than the longest draws fewer calls
        flat = (np.arange(n)[:, None, None] * total + calls)[kept]
        weights = np.bincount(flat, minlength=n * total).reshape(n, total)
        values = np.concatenate(rounds)
        order = np.argsort(values, kind="stable")
        self.values, weights = values[order], weights[:, order]
        cum = np.cumsum(weights, axis=1)
        self.n, self.total = n, cum[:, -1]
        self.means = weights @ self.values / self.total
        # every row's running count, offset so that the flattened array is sorted: one searchsorted for all rows
        self._stride = int(self.total.max()) + 1
        self._flat = (cum + np.arange(n)[:, None] * self._stride).ravel()

    def _at(self, rank: np.ndarray) -> np.ndarray:
        """Each resample's call of 0-based rank `rank` in its own sorted order."""
        rows = np.arange(self.n)
        i = np.searchsorted(self._flat, rank + rows * self._stride, side="right") - rows * self.values.size
        return self.values[i]

    def statistic(self, q: float | None) -> np.ndarray:
        """The q-quantile (None: the mean) of every resample."""
        if q is None:
            return self.means
        h = q * (self.total - 1)  # the linear-interpolation quantile's position in each resample
        lo = np.floor(h)
        a, b = self._at(lo), self._at(np.minimum(lo + 1, self.total - 1))
        return a + (h - lo) * (b - a)


@functools.lru_cache(maxsize=4)
def _resamples(rounds: tuple[tuple[float, ...], ...], n: int, seed: int) -> Resamples:
    return Resamples([np.asarray(r, dtype=float) for r in rounds], n, np.random.default_rng(seed))


def ratio_interval(base: Sequence[Sequence[float]], other: Sequence[Sequence[float]], q: float | None,
                   seed: int, level: float = DEFAULT_LEVEL, resamples: int = DEFAULT_RESAMPLES) -> RatioInterval:
    """other / base of the q-quantile (None: the mean) of each side's pooled samples, with the two-stage
    bootstrap's percentile interval at `level`. `base` and `other` are lists of rounds, each a list of
    per-call samples; empty rounds are left out.

    Raises ValueError when a side has no samples, a sample is not finite, or a side's statistic is not
    positive (a ratio needs it).
    """
    sides = []
    for name, side in (("base", base), ("other", other)):
        rounds = [np.asarray(r, dtype=float) for r in side if len(r)]
        if not rounds:
            raise ValueError(f"{name} has no samples")
        if not all(np.isfinite(r).all() for r in rounds):
            raise ValueError(f"{name} has samples that are not finite")
        sides.append(rounds)
    a, b = (statistic(np.concatenate(s), q) for s in sides)
    if not (a > 0 and b > 0):
        raise ValueError("a ratio of statistics needs both to be positive")
    ra, rb = (_resamples(tuple(tuple(r.tolist()) for r in s), resamples, seed + i).statistic(q)
              for i, s in enumerate(sides))
    ratios = rb / np.where(ra > 0, ra, math.nan)
    ratios = ratios[np.isfinite(ratios)]
    tail = (1 - level) / 2
    low, high = (float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail))) if len(ratios) else \
        (0.0, math.inf)
    return RatioInterval(b / a, min(low, b / a), max(high, b / a), level, (len(sides[0]), len(sides[1])),
                         (sum(len(r) for r in sides[0]), sum(len(r) for r in sides[1])))
