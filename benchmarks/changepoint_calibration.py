"""Calibrate benchbench's change-point detector on synthetic series and print a Markdown table.

    PYTHONPATH=. python benchmarks/changepoint_calibration.py [--series 1000] [--seed 0]

Each series has 100 points around a level of 1.0 with a coefficient of variation (CV) of 2, 3 or 5%,
in three kinds of noise: normal, lognormal, and normal with 2% outliers (a point 20-50% slower, as a
timing disturbed by another process). Half the series are flat; the other half get a 5% step up at
a position drawn uniformly from 10 to 90, so each level has at least 10 points. For every cell:

- false change-point rate: flat series in which any change point is reported (target: <= 1%);
- detection rate: step series with a change point within 5 points of the step (target: >= 90%);
- extra: step series with a change point farther than 5 points from the step.

tests/test_changepoint.py imports this module and pins the same numbers on fewer series.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchbench.changepoint import CLIP, MAX_PVALUE, MIN_SIZE, detect  # noqa: E402

LENGTH = 100
STEP = 0.05
TOLERANCE = 5
POSITIONS = (10, 90)
OUTLIER_RATE = 0.02
CVS = (0.02, 0.03, 0.05)
NOISES = ("normal", "lognormal", "outliers")


def synthetic(rng: np.random.Generator, cv: float, noise: str, step_at: int | None,
              length: int = LENGTH, step: float = STEP) -> np.ndarray:
    """One series: level 1.0 (1 + step from `step_at` on) times noise of this CV and kind."""
    if noise == "lognormal":
        sigma = np.sqrt(np.log1p(cv**2))
        x = rng.lognormal(-sigma**2 / 2, sigma, length)  # mean 1, CV exactly `cv`
    elif noise in ("normal", "outliers"):
        x = 1 + cv * rng.standard_normal(length)
        if noise == "outliers":
            hit = rng.random(length) < OUTLIER_RATE
            x[hit] *= rng.uniform(1.2, 1.5, hit.sum())
    else:
        raise ValueError(f"unknown noise {noise!r}")
    if step_at is not None:
        x[step_at:] *= 1 + step
    return x


@dataclass
class Cell:
    cv: float
    noise: str
    series: int
    false_rate: float  # flat series with any change point
    detect_rate: float  # step series with a change point within TOLERANCE of the step
    extra_rate: float  # step series with a change point farther than TOLERANCE


def evaluate(cv: float, noise: str, series: int, seed: int = 0, **detector) -> Cell:
    rng = np.random.default_rng([seed, round(cv * 1000), NOISES.index(noise)])
    false = found = extra = 0
    for _ in range(series):
        if detect(synthetic(rng, cv, noise, None), **detector):
            false += 1
        at = int(rng.integers(POSITIONS[0], POSITIONS[1] + 1))
        idx = [cp.index for cp in detect(synthetic(rng, cv, noise, at), **detector)]
        found += any(abs(i - at) <= TOLERANCE for i in idx)
        extra += any(abs(i - at) > TOLERANCE for i in idx)
    return Cell(cv, noise, series, false / series, found / series, extra / series)


def table(cells: list[Cell]) -> str:
    rows = ["| CV | noise | series (each kind) | false change point | step found (±5) | extra change point |",
            "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for c in cells:
        rows.append(f"| {c.cv:.0%} | {c.noise} | {c.series} | {c.false_rate:.1%} | {c.detect_rate:.1%} "
                    f"| {c.extra_rate:.1%} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--series", type=int, default=1000, help="series per cell and kind (flat and step)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-pvalue", type=float, default=MAX_PVALUE)
    p.add_argument("--min-size", type=int, default=MIN_SIZE)
    p.add_argument("--cv", type=float, action="append", help="CV to test, e.g. 0.05 (repeatable)")
    p.add_argument("--noise", action="append", choices=NOISES)
    args = p.parse_args(argv)
    start = time.perf_counter()
    cells = [evaluate(cv, noise, args.series, args.seed, max_pvalue=args.max_pvalue, min_size=args.min_size,
                      resamples=200)
             for cv in args.cv or CVS for noise in args.noise or NOISES]
    print(f"E-Divisive means + Student t-test (pooled, winsorised at {CLIP:g} robust SDs), max_pvalue={args.max_pvalue:g}, min_size={args.min_size}; "
          f"{LENGTH} points, {STEP:.0%} step at {POSITIONS[0]}..{POSITIONS[1]}, seed {args.seed}\n")
    print(table(cells))
    print(f"\n({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
