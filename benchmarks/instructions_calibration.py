"""Does the instruction-count gate catch a 2% regression in library code, and only that?

A user suite calls `calib_lib.work()`, a function in a separate module on PYTHONPATH (outside the
suite file, so the benchmark's definition hash does not change). With CALIB_EXTRA_WORK=1 that function
does one more small tensor op out of 50: about 2% more work per call. Each repetition is one case of
the suite (`rep=0..R-1`); both sides are measured with `benchbench run --metric instructions`:

    A/A: side A against side A again (fresh worker processes)  -> how many false regressions
    A/B: side A against side B (CALIB_EXTRA_WORK=1)             -> how many regressions caught

and judged by `benchbench gate` with its default policy (instructions tolerance 0.5%).

`--fresh-processes` measures every repetition in worker processes of its own (three runs per
repetition instead of three in all: slower, and stricter, since no two repetitions share a process).

    PYTHONPATH=. python benchmarks/instructions_calibration.py --repetitions 10 --json out.json

`--write-suite DIR` only writes the suite and library (to add the calibration cases to a run of your
own: `run --metric instructions --suite-path DIR/calib_suite.py`, with DIR on PYTHONPATH), and
`--reports A1 A2 B` judges three such reports instead of measuring.

`measure_side` is the one place that runs a side; an `ab` command measuring both sides in one call
replaces it and `pair_outcomes` without touching the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbench.gate import Policy, gate  # noqa: E402
from benchbench.report import Report, load  # noqa: E402

OPS = 50  # small tensor ops per call on side A; side B does one more: +2%
EXTRA_ENV = "CALIB_EXTRA_WORK"

LIBRARY = f'''
"""Library code outside the suite file: side B ({EXTRA_ENV}=1) does one op more out of {OPS}."""
import os

import torch

OPS = {OPS} + (1 if os.environ.get("{EXTRA_ENV}") == "1" else 0)


def work(x):
    for _ in range(OPS):
        x = x + 1.0
    return x
'''

SUITE = '''
"""Calibration suite: one case per repetition, each calling library code."""
import torch

import calib_lib
from benchbench import Case, benchmark

SUITE = "calibration"


@benchmark(params={{"rep": list(range({reps}))}}, dtypes=["float32"])
def library_call(ctx, rep):
    x = torch.ones(16, dtype=ctx.dtype)
    return Case(lambda: calib_lib.work(x), check_output=False)
'''


def write_files(workdir: Path, reps: int) -> Path:
    (workdir / "calib_lib.py").write_text(textwrap.dedent(LIBRARY))
    suite = workdir / "calib_suite.py"
    suite.write_text(textwrap.dedent(SUITE.format(reps=reps)))
    return suite


def measure_side(suite: Path, out: Path, extra: bool, filt: str | None = None) -> Report:
    """One `benchbench run --metric instructions` of the calibration suite on one side."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(suite.parent)])}
    env.pop(EXTRA_ENV, None)
    if extra:
        env[EXTRA_ENV] = "1"
    cmd = [sys.executable, "-m", "benchbench", "run", "--metric", "instructions", "--suite-path", str(suite),
           "--backend", "cpu", "-o", str(out), "--quiet"]
    if filt:
        cmd += ["--filter", filt]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return load(out)


def pair_outcomes(base: Report, current: Report) -> list[dict]:
    """The gate's finding per case (repetition): verdict, outcome, change in instructions per call."""
    result = gate(base, current, Policy())
    rows = []
    for f in result.findings:
        if f.row.key.suite != "calibration":  # reports may hold other cases too (--reports)
            continue
        rows.append({"rep": dict(f.row.key.params)["rep"], "verdict": f.row.verdict, "outcome": f.outcome,
                     "change": f.row.change.ratio - 1 if f.row.change else None,
                     "base": f.row.base.stats.median if f.row.base and f.row.base.stats else None,
                     "other": f.row.other.stats.median if f.row.other and f.row.other.stats else None})
    return sorted(rows, key=lambda r: r["rep"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repetitions", type=int, default=10)
    p.add_argument("--fresh-processes", action="store_true", help="three worker processes per repetition")
    p.add_argument("--workdir", type=Path, help="keep the suite, library and reports here")
    p.add_argument("--json", type=Path, help="write the table as JSON here")
    p.add_argument("--write-suite", type=Path, metavar="DIR",
                   help="only write the suite and library into DIR (to measure them in a run of your own)")
    p.add_argument("--reports", nargs=3, type=Path, metavar=("A1", "A2", "B"),
                   help="judge three existing reports (side A twice, side B once) instead of measuring")
    args = p.parse_args()
    if args.write_suite:
        args.write_suite.mkdir(parents=True, exist_ok=True)
        print(write_files(args.write_suite, args.repetitions))
        return 0
    t0 = time.monotonic()
    aa: list[dict] = []
    ab: list[dict] = []
    if args.reports:
        a1, a2, b = (load(p) for p in args.reports)
        aa, ab = pair_outcomes(a1, a2), pair_outcomes(a1, b)
    else:
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="instructions-calibration-"))
        workdir.mkdir(parents=True, exist_ok=True)
        suite = write_files(workdir, args.repetitions)
        batches = [f"rep={r}\\b" for r in range(args.repetitions)] if args.fresh_processes else [None]
        for i, filt in enumerate(batches):
            a1 = measure_side(suite, workdir / f"A1_{i}.json", extra=False, filt=filt)
            a2 = measure_side(suite, workdir / f"A2_{i}.json", extra=False, filt=filt)
            b = measure_side(suite, workdir / f"B_{i}.json", extra=True, filt=filt)
            aa += pair_outcomes(a1, a2)
            ab += pair_outcomes(a1, b)
            print(f"[{i + 1}/{len(batches)} {time.monotonic() - t0:.0f}s] measured", file=sys.stderr)

    print("| rep | A instr/call | A/A change | A/A gate | B instr/call | A/B change | A/B gate |")
    print("|---:|---:|---:|---|---:|---:|---|")
    def num(v: float | None, pct: bool = False) -> str:
        return "-" if v is None else f"{100 * v:+.3f}%" if pct else f"{v:,.0f}"

    for x, y in zip(aa, ab, strict=True):
        print(f"| {x['rep']} | {num(x['base'])} | {num(x['change'], True)} | {x['outcome']} ({x['verdict']}) "
              f"| {num(y['other'])} | {num(y['change'], True)} | {y['outcome']} ({y['verdict']}) |")
    false_regressions = sum(r["outcome"] == "regression" for r in aa)
    caught = sum(r["outcome"] == "regression" for r in ab)
    how = ("existing reports" if args.reports else "fresh processes per repetition" if args.fresh_processes
           else "three worker processes in all")
    print(f"\nA/B: {caught}/{len(ab)} regressions caught; A/A: {false_regressions}/{len(aa)} false regressions; "
          f"{how}; {time.monotonic() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"aa": aa, "ab": ab, "caught": caught, "false_regressions": false_regressions,
                                         "fresh_processes": args.fresh_processes}, indent=1))
    return 0 if caught == len(ab) and false_regressions == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
