"""How often does the p99 rule (benchbench/metrics/latency.py) call a regression when nothing changed, and does it see a
planted tail? Real `benchbench ab` runs of inference decode cases on this machine; regenerates the table in
docs/inference.md.

    A/A: both sides alike                                        -> every `worse` is a false regression
    A/B: LATCAL_TAIL=2 on the current side (--current-env) -> every 20th decode step takes 3x as long

Cases: a calibration suite written here (`latcal/decode`) that runs the inference suite's own decode case
(the tiny decoder, eager, float32, batch 1 and 8, context and window 128) several times over (`rep`), so one
`ab` gives several decisions. The planted delay lives in library code beside the suite (`latcal_lib.py`,
which wraps the inference suite's `DecodeLoop`), read from the environment: the benchmark's definition (its
hash) is the same on both sides, as with a change in library code.

Each `ab --rounds R --profile quick` measures both sides in rounds of fresh processes (ABBA order) and
decides each metric per case by its rule: its gate document (`ab --json`) holds the latency p50, p90, p99
and tokens/s decisions. The A/A reports of different `ab` runs are A/A pairs too (the same code, measured
minutes apart): each is also gated against every A/A report of the other runs (`A/A across runs`), as
`gate` decides on stored reports. Those pairs share reports, so they are not independent decisions.

    PYTHONPATH=. nice -n 19 python benchmarks/p99_aa.py --runs 8 --ab-runs 1 --minutes 30 --write

`--write` replaces the table between the markers in docs/inference.md; `--json PATH` keeps every decision.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TAIL_ENV = "LATCAL_TAIL"
PLANTED = "planted.json"  # in a kept A/B folder: the tail it planted
EVERY = 50  # the planted tail: 2% of calls
DOC = ROOT / "docs" / "inference.md"
BEGIN, END = "<!-- p99 a/a: begin (benchmarks/p99_aa.py) -->", "<!-- p99 a/a: end -->"
METRICS = ("latency_p50", "latency_p90", "latency_p99", "tokens_per_s")
# the time rows of the same pairs, by the time rule, for reference (its verdicts in the metrics' words)
TIME_VERDICTS = {"slower": "worse", "faster": "better", "same": "same", "noisy": "noisy"}

LIBRARY = '''
"""Library code beside the calibration suite: with {env}=K every {every}th decode step, once done, waits K
times as long as it took (so it takes K + 1 times as long, however fast or loaded the machine)."""
import os
import time

FACTOR = float(os.environ.get("{env}") or 0)


def install(loop_class):
    if FACTOR <= 0:
        return
    step = loop_class.__call__

    def delayed(self):
        self._latcal_calls = getattr(self, "_latcal_calls", 0) + 1
        t0 = time.perf_counter()
        out = step(self)
        if self._latcal_calls % {every} == 0:
            until = time.perf_counter() + FACTOR * (time.perf_counter() - t0)
            while time.perf_counter() < until:
                pass
        return out

    loop_class.__call__ = delayed
'''

SUITE = '''
"""p99 calibration: the inference suite's decode case (tiny decoder, eager), {reps} times per batch, {calls}
calls per round (so that every round can support a p99 on its own, however slow the machine)."""
import latcal_lib
from benchbench import benchmark
from suites import inference

SUITE = "latcal"
latcal_lib.install(inference.DecodeLoop)
inference.SAMPLING["quick"] = (2, {calls}, {calls}, 0.0)
derive = inference.derive


@benchmark(params={{"size": ["tiny"], "batch": {batches}, "rep": list(range({reps}))}},
           dtypes=["float32"], modes=["eager"])
def decode(ctx, size, batch, rep):
    return inference.decode_case(ctx, size, batch, 128, 128, "auto")
'''


def write_suite(workdir: Path, reps: int, batches: list[int], calls: int, every: int = EVERY) -> Path:
    (workdir / "latcal_lib.py").write_text(textwrap.dedent(LIBRARY.format(env=TAIL_ENV, every=every)))
    path = workdir / "latcal_suite.py"
    path.write_text(textwrap.dedent(SUITE.format(reps=reps, batches=batches, calls=calls)))
    return path


def run_ab(suite: Path, out: Path, rounds: int, current_env: dict[str, str]) -> dict:
    """One `benchbench ab --json`: its gate document."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(suite.parent)])}
    env.pop(TAIL_ENV, None)
    cmd = [sys.executable, "-m", "benchbench", "ab", "--suite-path", str(suite), "--suite", "latcal",
           "--backend", "cpu", "--profile", "quick", "--rounds", str(rounds), "-o", str(out), "--json", "--quiet",
           "--force"]
    for key, value in current_env.items():
        cmd += ["--current-env", f"{key}={value}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"ab failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def _decision(case: str, metric: str, base, other, verdict: str, outcome: str, why: str, details: dict) -> dict:
    return {"case": case, "metric": metric, "base": base, "other": other, "verdict": verdict, "outcome": outcome,
            "why": why, "calls": details.get("calls"), "low": details.get("low"), "high": details.get("high")}


def decisions(doc: dict) -> list[dict]:
    """The latency and tokens/s decisions of one ab."""
    parts = doc["gate"] if "gate" in doc else doc["time"]["gate"]
    return [_decision(c["case"], c["metric"], c["base"], c["other"], c["verdict"], c["outcome"], c["why"],
                      c.get("details") or {})
            for c in parts.get("metric_cases", []) if c["metric"] in METRICS]


def gate_decisions(base, other, paired: bool) -> list[dict]:
    """The latency and tokens/s decisions of one gate, and its time decisions (metric "time") for reference."""
    from benchbench.analysis.gate import gate

    result = gate(base, other, paired=paired)
    out = [_decision(f.row.key.label, f.row.metric, f.row.base, f.row.other, f.row.verdict, f.outcome, f.row.why,
                     dict(f.row.details or {})) for f in result.metric_findings if f.row.metric in METRICS]
    for f in result.findings:
        change = f.row.change
        if f.row.base is None or f.row.other is None or change is None:
            continue
        out.append({"case": f.row.key.label, "metric": "time", "base": None, "other": None,
                    "verdict": TIME_VERDICTS.get(f.row.verdict, "incomparable"), "outcome": f.outcome, "why": f.why,
                    "calls": None, "low": change.ci_low, "high": change.ci_high})
    return out


def within_ab_decisions(folder: Path) -> list[dict]:
    """One kept ab's decisions again, from its two reports (its rounds paired, as ab decides)."""
    from benchbench.model.report import load

    return gate_decisions(load(folder / "baseline.json"), load(folder / "current.json"), paired=True)


def cross_run_decisions(folders: list[Path], ab_folders: list[Path] = ()) -> list[dict]:
    """Every A/A report against every A/A report of the other runs, unpaired, as `gate --baseline` decides. The
    baseline of an A/B run has no planted tail: it is one more A/A report."""
    from benchbench.model.report import load

    groups = [[load(f / f"{side}.json") for side in ("baseline", "current")] for f in folders]
    groups += [[load(f / "baseline.json")] for f in ab_folders]
    reports = [(g, rep) for g, reps in enumerate(groups) for rep in reps]
    out = []
    for i in range(len(reports)):
        for j in range(i + 1, len(reports)):
            if reports[i][0] == reports[j][0]:
                continue  # the two sides of one ab: counted with ab's own decisions
            out += gate_decisions(reports[i][1], reports[j][1], paired=False)
    return out


THRESHOLD = {"latency_p50": 0.10, "latency_p90": 0.10, "latency_p99": 0.20, "tokens_per_s": 0.10}


def summary(rows: list[dict]) -> dict:
    """Counts of verdicts, and how wide the intervals were against the threshold: the median half-width of
    the (widened) interval in logs, as a percentage, and the smallest change the same interval around it
    would have called `worse` (the threshold times how far the interval reaches below the ratio)."""
    ratios = [r["other"] / r["base"] for r in rows if r["base"] and r["other"]]
    calls = [min(r["calls"]) for r in rows if r.get("calls")]
    spans = [(r["other"] / r["base"], r["low"], r["high"]) for r in rows
             if r["base"] and r["other"] and r.get("low") and r.get("high") and r["metric"] in THRESHOLD]
    half = [math.log(hi / lo) / 2 for _, lo, hi in spans]
    # worse needs low > 1 + threshold; tokens/s (higher is better) needs high < 1 / (1 + threshold)
    detect = [(1 + THRESHOLD[r["metric"]]) * (ratio / lo if r["metric"] != "tokens_per_s" else hi / ratio)
              for r, (ratio, lo, hi) in zip([r for r in rows if r["base"] and r["other"] and r.get("low")
                                             and r.get("high") and r["metric"] in THRESHOLD], spans, strict=True)]
    return {"decisions": len(rows), **{v: sum(r["verdict"] == v for r in rows)
                                       for v in ("worse", "better", "same", "noisy", "incomparable")},
            "regressions": sum(r["outcome"] == "regression" for r in rows),
            "median_abs_change": statistics.median(abs(x - 1) for x in ratios) if ratios else None,
            "largest_change": max(ratios, key=lambda x: abs(x - 1)) if ratios else None,
            "half_width": math.exp(statistics.median(half)) - 1 if half else None,
            "detectable": statistics.median(detect) if detect else None,
            "calls": [min(calls), max(calls)] if calls else None}


def table(results: dict) -> str:
    lines = ["| experiment | metric | decisions | worse | better | noisy | same | too few calls / incomparable "
             "| median abs. change | largest change | interval half-width (median) | worse from (median) "
             "| calls per side |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, parts in results.items():
        for metric, s in parts.items():
            if not s["decisions"]:
                continue
            mid = f"{100 * s['median_abs_change']:.1f}%" if s["median_abs_change"] is not None else "-"
            big = f"{100 * (s['largest_change'] - 1):+.1f}%" if s["largest_change"] is not None else "-"
            half = f"x/÷ {1 + s['half_width']:.2f}" if s.get("half_width") is not None else "-"
            d = s.get("detectable")
            det = "-" if d is None else f"-{100 * (1 - 1 / d):.0f}%" if metric == "tokens_per_s" else \
                f"+{100 * (d - 1):.0f}%"
            calls = f"{s['calls'][0]}-{s['calls'][1]}" if s["calls"] else "-"
            lines.append(f"| {name} | {metric} | {s['decisions']} | {s['worse']} | {s['better']} | {s['noisy']} | "
                         f"{s['same']} | {s['incomparable']} | {mid} | {big} | {half} | {det} | {calls} |")
    return "\n".join(lines)


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover
        return "?"


def emit(text: str, results: list, rows: list, args: argparse.Namespace) -> int:
    """Print the table, and write it into the doc (--write) and every decision as JSON (--json)."""
    print(text)
    if args.write:
        write_doc(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results, "decisions": rows},
                                              indent=1))
    return 0


def write_doc(text: str) -> None:
    from doc_markers import write_between

    write_between(DOC, BEGIN, END, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=8, help="A/A runs of ab (default 8)")
    ap.add_argument("--ab-runs", type=int, default=2, help="A/B runs of ab with the planted tail (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of process pairs per ab (default 3)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each decode case per ab (default 3)")
    ap.add_argument("--batches", default="1", help="decode batch sizes, comma separated (default 1)")
    ap.add_argument("--calls", type=int, default=100, help="timed calls per case and round (default 100)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="start no further A/A run after this many minutes (the A/B runs go first)")
    ap.add_argument("--delay", type=float, default=2.0,
                    help="the planted tail: every --every-th step waits this many times its own duration (default 2)")
    ap.add_argument("--every", type=int, default=EVERY,
                    help=f"the planted tail's period in decode steps (default {EVERY}: 1 in {EVERY} calls)")
    ap.add_argument("--json", metavar="PATH", help="write every decision here")
    ap.add_argument("--keep", metavar="DIR", help="keep the ab folders (reports) here")
    ap.add_argument("--reuse", metavar="DIR", nargs="+",
                    help="run nothing: decide again on the ab folders earlier calls kept (--keep) in these folders")
    ap.add_argument("--write", action="store_true", help="replace the table in docs/inference.md")
    args = ap.parse_args()
    if args.reuse:
        return reuse([Path(d) for d in args.reuse], args)
    started, load_start = time.time(), load_average()
    with tempfile.TemporaryDirectory(prefix="p99-aa-") as tmp:
        where = Path(args.keep) if args.keep else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        batches = [int(b) for b in args.batches.split(",")]
        suite = write_suite(Path(tmp), args.reps, batches, args.calls, args.every)
        plan = [{TAIL_ENV: f"{args.delay:g}"}] * args.ab_runs + [{}] * args.runs
        done = 0
        for i, env in enumerate(plan):
            if not env and args.minutes is not None and time.time() - started > 60 * args.minutes:
                print(f"stopping after {done} A/A runs: past {args.minutes:g} minutes", file=sys.stderr)
                break
            folder = where / f"{'aa' if not env else 'ab'}-{int(started)}-{i}"  # a later call may keep to the same DIR
            got = decisions(run_ab(suite, folder, args.rounds, env))
            if env:  # what was planted: the reports keep --current-env's values redacted
                (folder / PLANTED).write_text(json.dumps({"every": args.every, "delay": args.delay}))
            else:
                done += 1
            print(f"{'A/B' if env else 'A/A'} run {i + 1}/{len(plan)}: {len(got)} decisions, "
                  f"{sum(r['outcome'] == 'regression' for r in got)} regressions ({time.time() - started:.0f} s, "
                  f"load {load_average()})", file=sys.stderr)
        print(f"{time.time() - started:.0f} s at niceness {os.nice(0)}, load average {load_start} at the start, "
              f"{load_average()} at the end", file=sys.stderr)
        return reuse([where], args)


def planted(folder: Path, args: argparse.Namespace) -> str:
    """The name of an A/B run's row: the tail it planted (from its planted.json, else the command line's)."""
    path = folder / PLANTED
    got = json.loads(path.read_text()) if path.exists() else {"every": args.every, "delay": args.delay}
    return f"A/B ({100 / got['every']:g}% of calls {1 + got['delay']:g}x)"


def reuse(folders: list[Path], args: argparse.Namespace) -> int:
    """The table again from the reports earlier calls kept (`--keep`): no ab is run."""
    from benchbench.model.report import load

    def complete(folder: Path) -> bool:  # both sides written and whole (not a run still going or cut short)
        files = [folder / f"{side}.json" for side in ("baseline", "current")]
        return all(f.exists() for f in files) and all(not (r := load(f)).partial and r.results for f in files)

    aa = [f for where in folders for f in sorted(where.glob("aa-*")) if complete(f)]
    ab = [f for where in folders for f in sorted(where.glob("ab-*")) if complete(f)]
    if not aa and not ab:
        raise SystemExit(f"{', '.join(map(str, folders))}: no kept ab folders (aa-*, ab-*)")
    rows = {"A/A (within ab)": [d for f in aa for d in within_ab_decisions(f)],
            "A/A across runs": cross_run_decisions(aa, ab)}
    for f in ab:
        rows.setdefault(planted(f, args), []).extend(within_ab_decisions(f))
    results = {name: {m: summary([r for r in rs if r["metric"] == m]) for m in (*METRICS, "time")}
               for name, rs in rows.items()}
    stamps = sorted(load(f / f"{side}.json").created_at for f in [*aa, *ab] for side in ("baseline", "current"))

    def runs(group: list[Path], name: str) -> str:
        if not group:
            return f"no {name} run"
        reps = [load(f / "baseline.json") for f in group]
        rounds = sorted({len(r.rounds) for r in reps})
        cases = sorted({len(r.results) for r in reps})
        calls = sorted({x["n"] for r in reps for res in r.results for x in res.rounds})
        return (f"{len(group)} {name} run{'s' if len(group) > 1 else ''} of `ab --rounds "
                f"{'/'.join(map(str, rounds))} --profile quick` ({'/'.join(map(str, cases))} cases each, "
                f"{'/'.join(map(str, calls))} calls per case and round)")

    batches = sorted({res.key.params_dict.get("batch") for f in [*aa, *ab] for res in load(f / "baseline.json").results})
    text = (f"Measured {stamps[0][:16]} to {stamps[-1][:16]} UTC (reports' start times) on {os.cpu_count()} CPUs: "
            f"{runs(aa, 'A/A')}; {runs(ab, 'A/B')}; decode cases of the tiny decoder, eager, "
            f"batch {' and '.join(map(str, batches))}. A/B (k% of calls Nx): every (100/k)th decode step takes N times "
            f"as long (`{TAIL_ENV}`). A/A across runs: each A/A report (and each A/B run's baseline) against "
            "every report of the other runs. `time`: the time rule's verdicts on the same pairs (worse = slower), "
            "for reference. Interval half-width: the median, over the decisions, of how far the (widened) 95% "
            "interval reaches either side of its ratio, as a factor; worse from: the median smallest change that "
            "an interval as wide would have called `worse`.\n\n" + table(results))
    return emit(text, results, rows, args)


if __name__ == "__main__":
    sys.exit(main())
