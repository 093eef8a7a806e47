"""How much does a case's peak memory vary between runs, and does the memory rule call that a regression?

Peak memory is compared by a tolerance rule (benchbench/metrics/memory.py: the larger of +5% and +16 MiB, and
every round of one side beyond every round of the other), not a significance test. This script measures
what that rule meets on a real machine, with `benchbench ab` (both sides alike, so any `worse` is a false
regression), and that a real +20% allocation is caught:

    A/A: both sides alike                                  -> how many false memory regressions
    A/B: MEMCAL_EXTRA=1 on the current side (--current-env) -> the calibration cases allocate 20% more

Cases: a suite written here (`memcal/alloc`: temporaries of 1 to 256 MiB per call, several repetitions)
and a few built-in tensor_ops cases (elementwise, softmax, layer_norm, a small matmul). Each `ab` runs
`--rounds R` rounds of process pairs; its gate document (`ab --json`) holds one memory decision per case.

    PYTHONPATH=. python benchmarks/memory_aa.py --runs 4 --ab-runs 3 --rounds 3 --json out.json

The A/B runs are decided twice: by `ab` itself (paired rounds), and by `gate` on the two reports each `ab`
stored (unpaired, as `gate --baseline` decides), so a +20% change is counted in both. The rule's 16 MiB floor
hides +20% of a temporary under 80 MiB by design, so the A/B rows are split by size: the cases where 20% is
beyond the floor (128 and 256 MiB: these are the tries that count) and those under it (1 to 32 MiB: what
the floor hides).

The A/A reports of different `ab` runs are A/A pairs too (the same code, measured apart): every A/A report
is also gated against every A/A report of the other runs (`A/A across runs`), as `gate` decides on
stored reports. `--keep DIR` keeps the reports; `--earlier DIR...` adds an earlier call's folders, and
`--runs 0 --ab-runs 0 --earlier DIR/*` makes the tables again from stored reports alone.

prints a Markdown table for docs/metrics.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXTRA_ENV = "MEMCAL_EXTRA"
SIZES_MIB = (1, 8, 32, 128, 256)
MiB = 2**20

# The injected change lives outside the suite file, so the benchmark's definition (its hash) is the same
# on both sides, as with a change in library code.
LIBRARY = '''
"""Library code outside the suite file: with {extra}=1 it asks for 20% more."""
import os

SCALE = 1.2 if os.environ.get("{extra}") == "1" else 1.0
'''

SUITE = '''
"""Memory calibration: each call allocates and fills a temporary of size_mib MiB (20% more with {extra}=1)."""
import torch

import memcal_lib
from benchbench import Case, benchmark

SUITE = "memcal"


@benchmark(params={{"size_mib": {sizes}, "rep": list(range({reps}))}}, dtypes=["float32"])
def alloc(ctx, size_mib, rep):
    n = int(size_mib * memcal_lib.SCALE * 2**20 / 4)

    def call():
        x = torch.empty(n, dtype=torch.float32)
        x.fill_(1.0)
        return float(x[-1])

    return Case(call, check_output=False)
'''

BUILTIN_FILTER = r"tensor_ops/(add|mul|gelu_chain|softmax|layer_norm|linear)\[|tensor_ops/matmul\[n=256\]"


def write_suite(workdir: Path, reps: int) -> Path:
    (workdir / "memcal_lib.py").write_text(textwrap.dedent(LIBRARY.format(extra=EXTRA_ENV)))
    path = workdir / "memcal_suite.py"
    path.write_text(textwrap.dedent(SUITE.format(extra=EXTRA_ENV, sizes=list(SIZES_MIB), reps=reps)))
    return path


def run_ab(suite: Path, out: Path, rounds: int, current_env: dict[str, str], builtin: bool = True) -> dict:
    """One `benchbench ab --json`: its gate document."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(suite.parent)])}
    env.pop(EXTRA_ENV, None)
    cmd = [sys.executable, "-m", "benchbench", "ab", "--suite-path", str(suite), "--suite", "memcal",
           *(["--suite", "tensor_ops"] if builtin else []),
           "--filter", rf"memcal/|{BUILTIN_FILTER}" if builtin else "memcal/", "--backend", "cpu",
           "--profile", "quick", "--rounds", str(rounds), "-o", str(out), "--json", "--quiet", "--force"]
    for key, value in current_env.items():
        cmd += ["--current-env", f"{key}={value}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"ab failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def decisions(doc: dict) -> list[dict]:
    """The memory decisions of one ab: case, both medians, verdict, outcome."""
    out = []
    for c in doc["gate"].get("metric_cases", []):
        if c["metric"] != "memory":
            continue
        out.append({"case": c["case"], "suite": c["key"]["suite"], "base": c["base"], "other": c["other"],
                    "verdict": c["verdict"], "outcome": c["outcome"], "why": c["why"],
                    "value": (c.get("details") or {}).get("value")})
    return out


def cross_run_decisions(folders: list[Path]) -> list[dict]:
    """Every A/A report against every other A/A report (all measure the same code): the gate's memory decision
    per case on stored reports, unpaired, as `gate --baseline` makes it."""
    from benchbench.analysis.gate import gate
    from benchbench.model.report import load

    reports = [load(f / f"{side}.json") for f in folders for side in ("baseline", "current")]
    out = []
    for i in range(len(reports)):
        for j in range(i + 1, len(reports)):
            if i // 2 != j // 2:  # the two sides of one ab: counted with ab's own decisions
                out += _memory_rows(gate(reports[i], reports[j], paired=False).metric_findings)
    return out


def _memory_rows(findings: list) -> list[dict]:
    return [{"case": g.row.key.label, "suite": g.row.key.suite, "base": g.row.base, "other": g.row.other,
             "verdict": g.row.verdict, "outcome": g.outcome, "why": g.row.why,
             "value": (g.row.details or {}).get("value")} for g in findings if g.row.metric == "memory"]


def within_ab_decisions(folders: list[Path]) -> list[dict]:
    """Each ab's own decisions, made again from its two stored reports as ab makes them (paired rounds)."""
    from benchbench.analysis.gate import gate
    from benchbench.model.report import load

    return [r for f in folders
            for r in _memory_rows(gate(load(f / "baseline.json"), load(f / "current.json"), paired=True).metric_findings)]


def gate_ab_decisions(folders: list[Path]) -> list[dict]:
    """The A/B runs' stored reports as `gate` decides on them (unpaired): each baseline against its own current
    report and against the current report of every other A/B run (the same +20% change, measured apart)."""
    from benchbench.analysis.gate import gate
    from benchbench.model.report import load

    out = []
    for f in folders:
        for g in folders:
            out += _memory_rows(gate(load(f / "baseline.json"), load(g / "current.json"), paired=False).metric_findings)
    return out


def size_mib(row: dict) -> int | None:
    m = re.search(r"size_mib=(\d+)", row["case"])
    return int(m[1]) if m else None


def groups(name: str, rs: list[dict]) -> dict[str, dict]:
    """The rows of one experiment by group: A/A by suite; A/B by whether 20% is beyond the 16 MiB floor."""
    if name.startswith("A/B"):
        return {"memcal, 128-256 MiB (+20% beyond the floor)":
                summary([r for r in rs if (size_mib(r) or 0) >= 128]),
                "memcal, 1-32 MiB (+20% under the floor)": summary([r for r in rs if (size_mib(r) or 0) < 128])}
    return {"calibration (memcal)": summary([r for r in rs if r["suite"] == "memcal"]),
            "built-in (tensor_ops)": summary([r for r in rs if r["suite"] != "memcal"])}


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def summary(rows: list[dict]) -> dict:
    """Counts over the decisions; `incomparable` rows (reports of suites written with another --reps: another
    benchmark definition) are counted apart and are not decisions."""
    apart = sum(r["verdict"] == "incomparable" for r in rows)
    rows = [r for r in rows if r["verdict"] != "incomparable"]
    diffs = [abs(r["other"] - r["base"]) for r in rows if r["base"] is not None and r["other"] is not None]
    rel = [abs(r["other"] / r["base"] - 1) for r in rows if r["base"] and r["other"] is not None]
    return {"decisions": len(rows), "regressions": sum(r["outcome"] == "regression" for r in rows),
            "worse": sum(r["verdict"] == "worse" for r in rows), "noisy": sum(r["verdict"] == "noisy" for r in rows),
            "same": sum(r["verdict"] == "same" for r in rows), "incomparable": apart,
            "median_abs_diff_mib": statistics.median(diffs) / MiB if diffs else None,
            "max_abs_diff_mib": max(diffs) / MiB if diffs else None,
            "max_rel_diff": max(rel) if rel else None,
            "peak_range_mib": [min(r["base"] for r in rows) / MiB, max(r["base"] for r in rows) / MiB] if rows else None}


def table(results: dict) -> str:
    lines = ["| experiment | cases | decisions | regressions | noisy | same | median abs. change | largest change "
             "| values compared | not compared |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, parts in results.items():
        for group, s in parts.items():
            if not s["decisions"]:
                continue
            lo, hi = s["peak_range_mib"]
            lines.append(f"| {name} | {group} | {s['decisions']} | {s['regressions']} | {s['noisy']} | {s['same']} | "
                         f"{s['median_abs_diff_mib']:.2f} MiB | {s['max_abs_diff_mib']:.2f} MiB "
                         f"({100 * s['max_rel_diff']:.2f}%) | {lo:.0f}-{hi:.0f} MiB | {s['incomparable']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=4, help="A/A runs of ab (default 4)")
    ap.add_argument("--ab-runs", type=int, default=3, help="A/B runs of ab with 20%% more allocated (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of process pairs per ab (default 3)")
    ap.add_argument("--reps", type=int, default=4, help="repetitions of each calibration size per run (default 4)")
    ap.add_argument("--json", metavar="PATH", help="write every decision here")
    ap.add_argument("--keep", metavar="DIR", help="keep the ab folders (reports) here")
    ap.add_argument("--earlier", nargs="*", default=[], metavar="DIR",
                    help="ab folders kept by earlier calls (--keep): aa-* are A/A runs, ab-* A/B runs; their "
                         "decisions are made again from the stored reports and counted with this call's")
    args = ap.parse_args()
    started = time.time()
    aa_folders = [Path(d) for d in args.earlier if Path(d).name.startswith("aa-")]
    ab_folders = [Path(d) for d in args.earlier if Path(d).name.startswith("ab-")]
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="memory-aa-") as tmp:
        where = Path(args.keep) if args.keep else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        suite = write_suite(Path(tmp), args.reps)
        for name, runs, env in (("A/A", args.runs, {}), ("A/B +20%", args.ab_runs, {EXTRA_ENV: "1"})):
            for i in range(runs):
                folder = where / f"{'aa' if not env else 'ab'}-{int(time.time())}-{i}"
                doc = run_ab(suite, folder, args.rounds, env, builtin=not env)  # A/B: the calibration cases
                (ab_folders if env else aa_folders).append(folder)
                loads.append(load_average())
                got = decisions(doc)
                print(f"{name} run {i + 1}/{runs}: {len(got)} decisions, "
                      f"{sum(r['outcome'] == 'regression' for r in got)} regressions "
                      f"({time.time() - started:.0f} s)", file=sys.stderr)
        # every decision is made from the stored reports: ab's own (paired, as ab gates its two reports) and
        # gate's (each report against every report of another run, as `gate --baseline` decides)
        rows = {"A/A (within ab)": within_ab_decisions(aa_folders),
                "A/A across runs (gate)": cross_run_decisions(aa_folders),
                "A/B +20% (ab)": within_ab_decisions(ab_folders),
                "A/B +20% (gate)": gate_ab_decisions(ab_folders)}
    results = {name: groups(name, rs) for name, rs in rows.items()}
    print(table(results))
    print(f"\nload average (1, 5, 15 min) before and after each ab of this call: {'; '.join(loads)}")
    print(f"\n{len(aa_folders)} A/A and {len(ab_folders)} A/B runs of `ab --rounds {args.rounds} --profile quick` on "
          f"the CPU ({time.time() - started:.0f} s in this call); A/A across runs: each A/A report against every A/A "
          "report of the other runs; A/B (gate): each A/B run's baseline report against its own current report and "
          "against the current reports of the other A/B runs, as `gate` decides on stored reports")
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results, "decisions": rows,
                                               "load_average": loads, "folders": [str(f) for f in
                                                                                  aa_folders + ab_folders]},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
