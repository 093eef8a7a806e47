"""Does the instruction-count gate catch a 2% regression in library code, and only that?

A user suite calls `calib_lib.work()`, a function in a separate module on PYTHONPATH (outside the
suite file, so the benchmark's definition hash does not change). With CALIB_EXTRA_WORK=1 that function
does one more small tensor op out of 50: about 2% more work per call. Each repetition is one case of
the suite (`rep=0..R-1`), and both experiments are one `benchbench ab --metric instructions` each
(one Valgrind worker per side; an exact count needs no rounds):

    A/A: both sides alike                                      -> how many false regressions
    A/B: CALIB_EXTRA_WORK=1 on the current side (--current-env) -> how many regressions caught

judged by ab's own gate with its default policy (instructions tolerance 0.5%), read from `ab --json`.

`--with-builtin` adds the built-in overhead cases (`dispatch_overhead`, `layout`,
`autograd/graph_overhead`) to the A/A run: its two sides are then also two separate runs of those
cases, and the script prints how far apart they are (the reproducibility table).
`--fresh-processes` runs one ab per repetition (filtered to `rep=i`): no two repetitions share a
worker process (slower: two Valgrind start-ups per repetition and experiment).

    PYTHONPATH=. python benchmarks/instructions_calibration.py --repetitions 10 --with-builtin --json out.json

`--write-suite DIR` only writes the suite and library (to add the calibration cases to a run of your
own: `ab --metric instructions --suite-path DIR/calib_suite.py`, with DIR on PYTHONPATH).
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

from benchbench.model.report import Report, Result, load  # noqa: E402

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


BUILTIN = ["--suite", "tensor_ops", "--suite", "autograd"]
BUILTIN_FILTER = r"dispatch_overhead|/layout\[|graph_overhead"


def run_ab(suite: Path, out: Path, current_env: dict[str, str], builtin: bool = False,
           filt: str | None = None) -> tuple[dict, Report, Report]:
    """One `benchbench ab --metric instructions --json`: its gate document and both sides' reports."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(suite.parent)])}
    env.pop(EXTRA_ENV, None)
    cmd = [sys.executable, "-m", "benchbench", "ab", "--metric", "instructions", "--suite-path", str(suite),
           "--backend", "cpu", "-o", str(out), "--json", "--quiet"]
    if builtin:
        cmd += ["--suite", "calibration", *BUILTIN, "--filter", f"library_call|{BUILTIN_FILTER}"]
    elif filt:
        cmd += ["--filter", filt]
    for key, value in current_env.items():
        cmd += ["--current-env", f"{key}={value}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1, 3):  # pass, regression, inconclusive
        raise SystemExit(f"ab failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout), load(out / "baseline.json"), load(out / "current.json")


def _medians(report: Report) -> dict[str, Result]:
    return {r.key.label: r for r in report.results}


def outcomes(doc: dict, baseline: Report, current: Report) -> list[dict]:
    """ab's finding per calibration case (repetition): verdict, outcome, change in instructions per call."""
    base, cur = _medians(baseline), _medians(current)
    rows = []
    for case in doc["gate"]["cases"]:
        if case["key"]["suite"] != "calibration":
            continue
        b, c = base.get(case["case"]), cur.get(case["case"])
        bm = b.stats.median if b is not None and b.stats else None
        cm = c.stats.median if c is not None and c.stats else None
        rows.append({"rep": case["key"]["params"]["rep"], "verdict": case["verdict"], "outcome": case["outcome"],
                     "change": cm / bm - 1 if bm and cm else None, "base": bm, "other": cm})
    return sorted(rows, key=lambda r: r["rep"])


def reproducibility(baseline: Report, current: Report) -> list[dict]:
    """The built-in cases of an A/A ab: two separate runs (one Valgrind worker each), median and repeats."""
    base, cur = _medians(baseline), _medians(current)
    rows = []
    for label, b in sorted(base.items()):
        c = cur.get(label)
        if b.key.suite == "calibration" or c is None or not b.ok or not c.ok:
            continue
        rows.append({"case": label, "run1": b.stats.median, "run1_repeats": b.samples, "run2": c.stats.median,
                     "run2_repeats": c.samples, "change": c.stats.median / b.stats.median - 1})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repetitions", type=int, default=10)
    p.add_argument("--fresh-processes", action="store_true", help="one ab (two Valgrind workers) per repetition")
    p.add_argument("--with-builtin", action="store_true",
                   help="add the built-in overhead cases to the A/A run and print their run-to-run agreement")
    p.add_argument("--workdir", type=Path, help="keep the suite, library and reports here")
    p.add_argument("--json", type=Path, help="write the table as JSON here")
    p.add_argument("--write-suite", type=Path, metavar="DIR",
                   help="only write the suite and library into DIR (to measure them in a run of your own)")
    args = p.parse_args()
    if args.write_suite:
        args.write_suite.mkdir(parents=True, exist_ok=True)
        print(write_files(args.write_suite, args.repetitions))
        return 0
    t0 = time.monotonic()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="instructions-calibration-"))
    workdir.mkdir(parents=True, exist_ok=True)
    suite = write_files(workdir, args.repetitions)
    aa: list[dict] = []
    ab: list[dict] = []
    repro: list[dict] = []
    batches = [f"rep={r}\\b" for r in range(args.repetitions)] if args.fresh_processes else [None]
    for i, filt in enumerate(batches):
        doc, a1, a2 = run_ab(suite, workdir / f"aa_{i}", {}, builtin=args.with_builtin and i == 0, filt=filt)
        aa += outcomes(doc, a1, a2)
        repro += reproducibility(a1, a2)
        print(f"[{i + 1}/{len(batches)} {time.monotonic() - t0:.0f}s] A/A measured", file=sys.stderr)
        doc, b1, b2 = run_ab(suite, workdir / f"ab_{i}", {EXTRA_ENV: "1"}, filt=filt)
        ab += outcomes(doc, b1, b2)
        print(f"[{i + 1}/{len(batches)} {time.monotonic() - t0:.0f}s] A/B measured", file=sys.stderr)

    def num(v: float | None, pct: bool = False) -> str:
        return "-" if v is None else f"{100 * v:+.3f}%" if pct else f"{v:,.0f}"

    print("| rep | A/A: baseline instr/call | A/A change | A/A gate | A/B: current instr/call | A/B change | A/B gate |")
    print("|---:|---:|---:|---|---:|---:|---|")
    by_rep = {r["rep"]: r for r in ab}
    for x in aa:
        y = by_rep.get(x["rep"], {})
        print(f"| {x['rep']} | {num(x['base'])} | {num(x['change'], True)} | {x['outcome']} ({x['verdict']}) "
              f"| {num(y.get('other'))} | {num(y.get('change'), True)} | {y.get('outcome')} ({y.get('verdict')}) |")
    false_regressions = sum(r["outcome"] == "regression" for r in aa)
    caught = sum(r["outcome"] == "regression" for r in ab)
    how = "one ab per repetition" if args.fresh_processes else "one ab per experiment"
    print(f"\nA/B: {caught}/{len(ab)} regressions caught; A/A: {false_regressions}/{len(aa)} false regressions; "
          f"{how}; {time.monotonic() - t0:.0f} s")
    if repro:
        print("\n| case | run 1: instructions per call (repeats) | run 2 | run 2 / run 1 |")
        print("|---|---:|---:|---:|")
        for r in repro:
            reps1, reps2 = (", ".join(f"{v:,.0f}" for v in r[k]) for k in ("run1_repeats", "run2_repeats"))
            print(f"| `{r['case']}` | {num(r['run1'])} ({reps1}) | {num(r['run2'])} ({reps2}) | "
                  f"{num(r['change'], True)} |")
        print(f"\nlargest difference between the two runs: {100 * max(abs(r['change']) for r in repro):.3f}%")
    if args.json:
        args.json.write_text(json.dumps({"aa": aa, "ab": ab, "caught": caught, "false_regressions": false_regressions,
                                         "fresh_processes": args.fresh_processes, "reproducibility": repro},
                                        indent=1))
    return 0 if caught == len(ab) and false_regressions == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
