"""Calibrate benchbench's change-point detector on synthetic series and print Markdown tables.

    PYTHONPATH=. python benchmarks/changepoint_calibration.py [--series 1000] [--seed 0]
    PYTHONPATH=. python benchmarks/changepoint_calibration.py --null        # false alarms by length
    PYTHONPATH=. python benchmarks/changepoint_calibration.py --approximation  # scan p-value vs simulation

Each series has 100 points around a level of 1.0 with a coefficient of variation (CV) of 2, 3 or 5%,
in three kinds of noise: normal, lognormal, and normal with 2% outliers (a point 20-50% slower, as a
timing disturbed by another process). Per cell, some series are flat and as many get a 5% step up at
a position drawn uniformly from 10 to 90, so each level has at least 10 points. For every cell:

- false change-point rate: flat series in which any change point is reported (target: <= 1%);
- detection rate: step series with a change point within 5 points of the step (target: >= 90%),
  overall, for steps near an end (10-24 or 76-90 points from the start) and in the middle (25-75);
- extra: step series with a change point farther than 5 points from the step.

The same series also go to an ORACLE: the best single-change detector for Gaussian noise, the
likelihood-ratio scan (largest pooled two-sample t statistic over all splits with at least
`min_size` points a side) on the Gaussian noise under each series (the series itself for normal
noise, its logarithm for lognormal noise, the series before its outliers were added), with its
threshold set by simulation so that exactly 1% of flat Gaussian series of this length alarm. Its
detection rate is what any detector can hope for at a 1% false-alarm rate; "any alarm" counts the
step series it alarms on wherever it puts the step (found, or found more than 5 points off).

tests/test_changepoint.py imports this module and pins the same numbers on fewer series.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchbench.analysis.changepoint import CLIP, MAX_PVALUE, MIN_SIZE, detect, scan_pvalue  # noqa: E402

LENGTH = 100
STEP = 0.05
TOLERANCE = 5
POSITIONS = (10, 90)
NEAR_END = 25  # a step fewer than this many points from either end is "near an end"
OUTLIER_RATE = 0.02
CVS = (0.02, 0.03, 0.05)
NOISES = ("normal", "lognormal", "outliers")
ORACLE_ALARMS = 0.01


def synthetic_pair(rng: np.random.Generator, cv: float, noise: str, step_at: int | None,
                   length: int = LENGTH, step: float = STEP) -> tuple[np.ndarray, np.ndarray]:
    """One series (level 1.0, times 1 + step from `step_at` on, noise of this CV and kind) and the
    Gaussian series under it that the oracle reads."""
    if noise == "lognormal":
        sigma = np.sqrt(np.log1p(cv**2))
        x = rng.lognormal(-sigma**2 / 2, sigma, length)  # mean 1, CV exactly `cv`
    elif noise in ("normal", "outliers"):
        x = 1 + cv * rng.standard_normal(length)
    else:
        raise ValueError(f"unknown noise {noise!r}")
    if step_at is not None:
        x[step_at:] *= 1 + step
    clean = np.log(x) if noise == "lognormal" else x.copy()
    if noise == "outliers":
        hit = rng.random(length) < OUTLIER_RATE
        x[hit] *= rng.uniform(1.2, 1.5, hit.sum())
    return x, clean


def synthetic(rng: np.random.Generator, cv: float, noise: str, step_at: int | None,
              length: int = LENGTH, step: float = STEP) -> np.ndarray:
    """One series: level 1.0 (1 + step from `step_at` on) times noise of this CV and kind."""
    return synthetic_pair(rng, cv, noise, step_at, length, step)[0]


def tscan(x: np.ndarray, min_size: int = MIN_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Max |pooled t| over splits with at least `min_size` points a side, and its split, for each row of x."""
    x = np.atleast_2d(x)
    n = x.shape[1]
    x = x - x.mean(axis=1, keepdims=True)
    ss = np.sum(x * x, axis=1, keepdims=True)
    k = np.arange(min_size, n - min_size + 1)
    left = np.cumsum(x, axis=1)[:, k - 1]
    between = left * left * n / (k * (n - k))
    t = np.sqrt((n - 2) * between / np.maximum(ss - between, 1e-300))
    best = np.argmax(t, axis=1)
    return t[np.arange(len(x)), best], k[best]


def oracle_threshold(length: int = LENGTH, min_size: int = MIN_SIZE, alarms: float = ORACLE_ALARMS,
                     series: int = 200_000, seed: int = 0) -> float:
    """The max |t| that exactly `alarms` of flat Gaussian series of this length exceed (simulated)."""
    rng = np.random.default_rng([seed, length, min_size])
    peaks = np.concatenate([tscan(rng.standard_normal((10_000, length)), min_size)[0]
                            for _ in range(max(1, series // 10_000))])
    return float(np.quantile(peaks, 1 - alarms))


@dataclass
class Cell:
    cv: float
    noise: str
    series: int
    false_rate: float  # flat series with any change point
    detect_rate: float  # step series with a change point within TOLERANCE of the step
    extra_rate: float  # step series with a change point farther than TOLERANCE
    detect_near: float = float("nan")  # detect_rate for steps near an end / in the middle
    detect_middle: float = float("nan")
    oracle_false: float = float("nan")  # the oracle on the same series' Gaussian noise
    oracle_detect: float = float("nan")
    oracle_near: float = float("nan")
    oracle_middle: float = float("nan")
    oracle_alarm: float = float("nan")  # step series in which the oracle alarms at all, wherever it puts the step
    positions: list[int] = field(default_factory=list, repr=False)


def evaluate(cv: float, noise: str, series: int, seed: int = 0, oracle: float | None = None, **detector) -> Cell:
    """One cell: `series` flat and `series` step series through `detect(**detector)` (and the oracle
    scan with threshold `oracle`, if given)."""
    rng = np.random.default_rng([seed, round(cv * 1000), NOISES.index(noise)])
    min_size = detector.get("min_size", MIN_SIZE)
    false = extra = oracle_false = 0
    found, oracle_found, positions = [], [], []
    oracle_alarm = 0
    for _ in range(series):
        flat, flat_clean = synthetic_pair(rng, cv, noise, None)
        false += bool(detect(flat, **detector))
        at = int(rng.integers(POSITIONS[0], POSITIONS[1] + 1))
        x, clean = synthetic_pair(rng, cv, noise, at)
        idx = [c.index for c in detect(x, **detector)]
        found.append(any(abs(i - at) <= TOLERANCE for i in idx))
        extra += any(abs(i - at) > TOLERANCE for i in idx)
        positions.append(at)
        if oracle is not None:
            (peak_flat,), _ = tscan(flat_clean, min_size)
            oracle_false += peak_flat > oracle
            (peak,), (split,) = tscan(clean, min_size)
            oracle_found.append(peak > oracle and abs(int(split) - at) <= TOLERANCE)
            oracle_alarm += peak > oracle
    pos = np.array(positions)
    near = (pos < NEAR_END) | (pos > LENGTH - NEAR_END)

    def rate(hits, where=None):
        hits = np.array(hits, dtype=bool)
        return float(np.mean(hits if where is None else hits[where])) if len(hits) else float("nan")

    cell = Cell(cv, noise, series, false / series, rate(found), extra / series, rate(found, near),
                rate(found, ~near), positions=positions)
    if oracle is not None:
        cell.oracle_false, cell.oracle_detect = oracle_false / series, rate(oracle_found)
        cell.oracle_near, cell.oracle_middle = rate(oracle_found, near), rate(oracle_found, ~near)
        cell.oracle_alarm = oracle_alarm / series
    return cell


def table(cells: list[Cell]) -> str:
    rows = ["| CV | noise | series (each kind) | false change point | step found (±5) | near an end | middle "
            "| extra change point | oracle: false | oracle: found (±5) | near an end | middle | oracle: any alarm |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in cells:
        rows.append(f"| {c.cv:.0%} | {c.noise} | {c.series} | {c.false_rate:.1%} | {c.detect_rate:.1%} "
                    f"| {c.detect_near:.1%} | {c.detect_middle:.1%} | {c.extra_rate:.1%} | {c.oracle_false:.1%} "
                    f"| {c.oracle_detect:.1%} | {c.oracle_near:.1%} | {c.oracle_middle:.1%} | {c.oracle_alarm:.1%} |")
    return "\n".join(rows)


def null_rates(lengths: tuple[int, ...], series: int, seed: int = 0, cv: float = 0.05,
               **detector) -> list[tuple[int, str, int, float]]:
    """False change-point rate of `detect` on flat series of each length and noise."""
    out = []
    for length in lengths:
        for noise in NOISES:
            rng = np.random.default_rng([seed, length, NOISES.index(noise)])
            hits = sum(bool(detect(synthetic(rng, cv, noise, None, length), **detector)) for _ in range(series))
            out.append((length, noise, series, hits / series))
    return out


def approximation(lengths: tuple[int, ...], series: int, min_size: int = MIN_SIZE,
                  seed: int = 0) -> list[tuple[int, float, float, float]]:
    """`scan_pvalue` against the simulated tail of the max |t| of flat Gaussian series:
    (length, simulated tail probability, its threshold, scan_pvalue there)."""
    out = []
    for length in lengths:
        rng = np.random.default_rng([seed, length])
        peaks = np.concatenate([tscan(rng.standard_normal((10_000, length)), min_size)[0]
                                for _ in range(max(1, series // 10_000))])
        for tail in (0.05, 0.01, 0.001):
            q = float(np.quantile(peaks, 1 - tail))
            out.append((length, tail, q, scan_pvalue(q, length, min_size)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--series", type=int, default=1000, help="series per cell and kind (flat and step)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-pvalue", type=float, default=MAX_PVALUE)
    p.add_argument("--min-size", type=int, default=MIN_SIZE)
    p.add_argument("--clip", type=float, default=CLIP)
    p.add_argument("--cv", type=float, action="append", help="CV to test, e.g. 0.05 (repeatable)")
    p.add_argument("--noise", action="append", choices=NOISES)
    p.add_argument("--null", action="store_true", help="false change points on flat series of several lengths")
    p.add_argument("--approximation", action="store_true", help="the scan p-value against simulation")
    p.add_argument("--lengths", default="8,12,16,25,50,100,200,500")
    args = p.parse_args(argv)
    start = time.perf_counter()
    detector = {"max_pvalue": args.max_pvalue, "min_size": args.min_size, "clip": args.clip, "resamples": 20}
    lengths = tuple(int(v) for v in args.lengths.split(","))
    if args.approximation:
        print(f"scan p-value (Siegmund's approximation) against {args.series} simulated flat Gaussian series per "
              f"length, min_size={args.min_size}\n")
        print("| points | simulated tail | threshold max abs t | scan_pvalue there |\n| ---: | ---: | ---: | ---: |")
        for length, tail, q, approx in approximation(lengths, args.series, args.min_size, args.seed):
            print(f"| {length} | {tail:g} | {q:.3f} | {approx:.4f} ({approx / tail:.2f}x) |")
    elif args.null:
        print(f"flat series, CV 5%, max_pvalue={args.max_pvalue:g}, min_size={args.min_size}, seed {args.seed}\n")
        print("| points | noise | series | false change point |\n| ---: | --- | ---: | ---: |")
        for length, noise, series, rate in null_rates(lengths, args.series, args.seed, **detector):
            print(f"| {length} | {noise} | {series} | {rate:.2%} |")
    else:
        threshold = oracle_threshold(LENGTH, args.min_size)
        cells = [evaluate(cv, noise, args.series, args.seed, oracle=threshold, **detector)
                 for cv in args.cv or CVS for noise in args.noise or NOISES]
        print(f"t scan on log values (outliers beyond {args.clip:g} robust SDs left out), binary segmentation + "
              f"merge, max_pvalue={args.max_pvalue:g}, min_size={args.min_size}; {LENGTH} points, {STEP:.0%} step at "
              f"{POSITIONS[0]}..{POSITIONS[1]} (near an end: < {NEAR_END} points from it), seed {args.seed}; "
              f"oracle: max |t| > {threshold:.3f} (1% of flat Gaussian series)\n")
        print(table(cells))
    print(f"\n({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
