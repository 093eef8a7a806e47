"""A step after a spiky level, into a steady one: does `benchbench.analysis.changepoint.detect` find it, and where?

    PYTHONPATH=. python benchmarks/changepoint_spiky_steady.py [--series 60]

Each seeded series: `before` points of lognormal noise (CV `noise_before`) with `spikes` of them
`spike` times slower, then `after` points `step` times the level with CV `noise_after`. Counted per
setting: a change point within 2 points of the step ("found"), one farther off ("elsewhere"), and for
the same series without the step, any change point ("alarms"). Printed as a Markdown table; the numbers
in docs/calibration.md come from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchbench.analysis.changepoint import detect  # noqa: E402

SETTINGS = [  # (label, keyword arguments of series)
    ("8% noise, 3 spikes of 1.6x, then 1% noise", {}),
    ("the same without the spikes", {"spikes": 0}),
    ("2% noise, 4 spikes of 1.6x, then 1% noise", {"noise_before": 0.02, "spikes": 4}),
    ("5% noise, 2 spikes of 1.6x, step 1.10x", {"noise_before": 0.05, "spikes": 2, "step": 1.10}),
]


def series(seed: int, before: int = 20, after: int = 20, step: float = 1.15, noise_before: float = 0.08,
           noise_after: float = 0.01, spikes: int = 3, spike: float = 1.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.exp(rng.normal(0, noise_before, before))
    a[rng.choice(before, spikes, replace=False)] *= spike
    return np.concatenate([a, step * np.exp(rng.normal(0, noise_after, after))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=60, help="seeded series per setting")
    n = ap.parse_args().series
    print("| setting (20 points, then 20 at 1.15x unless said) | found within 2 points | elsewhere | "
          "alarms without the step |")
    print("| --- | ---: | ---: | ---: |")
    for label, kw in SETTINGS:
        found = elsewhere = alarms = 0
        for seed in range(n):
            cps = detect(series(seed, **kw))
            found += any(abs(c.index - 20) <= 2 for c in cps)
            elsewhere += any(abs(c.index - 20) > 2 for c in cps)
            alarms += bool(detect(series(seed, **{**kw, "step": 1.0})))
        print(f"| {label} | {found} of {n} | {elsewhere} of {n} | {alarms} of {n} |", flush=True)


if __name__ == "__main__":
    main()
