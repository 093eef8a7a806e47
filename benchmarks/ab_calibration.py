"""How well does `ab` decide on this machine? Run it many times with known answers and write the table.

    PYTHONPATH=. python benchmarks/ab_calibration.py --repeats 20 --profile default \
        --work /tmp/abcal --doc docs/ab-calibration.md [--cpus 0 --threads 1]

Each run is `benchbench.run.ab.run_ab` (the library call behind `benchbench ab`) over the six CPU ops of
`benchmarks/calibration_suite.py`, every case deciding on its own, with a known truth:
- `aa@5%`, `aa@2%`: identical sides at --fail-on 5% / 2%. Every `regression` is a false alarm; `ok` is
  the right answer.
- `+10%@5%`, `+20%@5%`, `+5%@2%`: the current side sets BENCHBENCH_CALIBRATION_SLOWDOWN, so the ops'
  helper module (outside the suite file: the definition hash is the same on both sides) does that much
  more work. `regression` is right; `ok` (a pass) is a miss.
The kinds are interleaved run by run, so a change of the machine's load during the hour hits all of
them. Records are saved after every run (`--work`/records.json; a rerun resumes), and `--table-only`
redraws the table from them. The document states the machine, the settings and the load seen.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = HERE / "calibration_suite.py"
SLOWDOWN_VAR = "BENCHBENCH_CALIBRATION_SLOWDOWN"
KINDS = {  # name: (threshold, injected slowdown in %)
    "aa@5%": (0.05, 0.0), "+10%@5%": (0.05, 10.0), "+20%@5%": (0.05, 20.0), "aa@2%": (0.02, 0.0), "+5%@2%": (0.02, 5.0),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def records_of(kind: str, repeat: int, result, wall_s: float, load: tuple[float, float]) -> list[dict]:
    from benchbench.analysis import blocks

    outcome = result.outcome
    out = []
    for f in result.gate.findings:
        row = f.row
        lk = outcome.looks.get(row.key)
        logs = blocks.paired_round_logs(row.base, row.other) if row.base is not None and row.other is not None \
            and row.base.ok and row.other.ok else {}
        out.append({"kind": kind, "repeat": repeat, "case": f"{row.key.suite}/{row.key.name}", "outcome": f.outcome,
                    "verdict": row.verdict, "mde": row.mde, "flags": row.flags,
                    "ratio": row.change.ratio if row.change else None,
                    "low": row.change.ci_low if row.change else None, "high": row.change.ci_high if row.change else None,
                    "rounds": outcome.rounds_of.get(row.key), "decision": lk.decision if lk else None,
                    "round_logs": [v for v, _ in logs.values()], "within_se": [se for _, se in logs.values()],
                    "wall_s": wall_s, "stopped": outcome.stopped, "exit_code": result.exit_code,
                    "load_before": load[0], "load_after": load[1], **settings()})
    return out


def settings() -> dict:
    """What a run was measured with: stored in every record, so a redrawn table states it."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"threads": os.environ.get("OMP_NUM_THREADS", "unset"), "cpus": cpus, "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}


def save(records: list[dict], work: Path) -> None:
    tmp = work / "records.json.tmp"
    tmp.write_text(json.dumps(records))
    tmp.replace(work / "records.json")


def measure(args: argparse.Namespace, work: Path, records: list[dict]) -> None:
    from benchbench.analysis.gate import Policy
    from benchbench.run.ab import SideSpec, run_ab

    kinds = [k for k in KINDS if k in args.kinds]
    repeats = {k: args.repeats for k in kinds}
    for item in filter(None, (args.repeats_of or "").split(",")):
        kind, _, n = item.partition("=")
        repeats[kind.strip()] = int(n)
    plan = [(kind, i) for i in range(max(repeats.values())) for kind in kinds if i < repeats[kind]]
    done = {(r["kind"], r["repeat"]) for r in records}
    for kind, i in plan:
        if (kind, i) in done:
            continue
        threshold, pct = KINDS[kind]
        current = SideSpec(env=((SLOWDOWN_VAR, f"{pct:g}"),)) if pct else SideSpec()
        folder = work / f"{kind.replace('%', 'pct').replace('@', '_at_').replace('+', 'slow')}_{i}"
        load0 = os.getloadavg()[0]
        t0 = time.time()
        res = run_ab(suite_paths=[str(SUITE)], backends=["cpu"], profile=args.profile, current=current,
                     policy=Policy(threshold=threshold), output=folder, label=f"{kind}_{i}", budget=args.budget,
                     command=["ab_calibration.py", kind, str(i)])
        wall = time.time() - t0
        records += records_of(kind, i, res, wall, (load0, os.getloadavg()[0]))
        save(records, work)
        counts = {o: sum(1 for f in res.gate.findings if f.outcome == o) for o in ("regression", "inconclusive", "ok")}
        log(f"{kind} #{i}: {counts} in {wall:.0f} s ({res.outcome.rounds} rounds, {res.outcome.stopped})")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def resolution(record: dict, profile: str) -> float | None:
    """The smallest change from no change at all that a decision's pairs could detect with 90% power at its
    look's alpha: expm1(lambda * se). The stated detectable effect (`mde`) is the same on top of the
    threshold, log(1 + mde) = log(1 + threshold) + lambda * se, so it can never be below the threshold."""
    from benchbench.analysis.compare import power_noncentrality
    from benchbench.analysis.sequential import Plan
    from benchbench.measure.engine import get_profile

    logs = record["round_logs"]
    n = len(logs)
    if n < 2:
        return None
    alpha = Plan(max_rounds=get_profile(profile).ab_max_rounds).alpha_at(n)
    if alpha <= 0:
        return None
    se = statistics.stdev(logs) / math.sqrt(n)
    return math.expm1(power_noncentrality(n - 1, alpha, 0.9) * se)


def last_look_resolution(sd: float, profile: str) -> float:
    """What the plan's last look resolves from no change (90% power) at a between-pair spread `sd`."""
    from benchbench.analysis.compare import power_noncentrality
    from benchbench.analysis.sequential import Plan
    from benchbench.measure.engine import get_profile

    n = get_profile(profile).ab_max_rounds
    return math.expm1(power_noncentrality(n - 1, Plan(max_rounds=n).alpha_at(n), 0.9) * sd / math.sqrt(n))


def table(records: list[dict], args: argparse.Namespace) -> str:
    kinds = [k for k in KINDS if any(r["kind"] == k for r in records)]
    lines = ["| kind | decisions | regression | inconclusive | ok | right | median stated detectable effect "
             "| median resolution | median rounds per case | ab wall time (median, max) |", "|" + " --- |" * 10]
    for kind in kinds:
        rs = [r for r in records if r["kind"] == kind]
        n = len(rs)
        c = {o: sum(1 for r in rs if r["outcome"] == o) for o in ("regression", "inconclusive", "ok")}
        right = c["ok"] if KINDS[kind][1] == 0 else c["regression"]
        mdes = [r["mde"] for r in rs if r["mde"] is not None and math.isfinite(r["mde"])]
        walls = {(r["repeat"]): r["wall_s"] for r in rs}
        res = [x for r in rs if (x := resolution(r, args.profile)) is not None]
        lines.append(f"| {kind} | {n} | {c['regression']} | {c['inconclusive']} | {c['ok']} | {right}/{n} "
                     f"({_pct(right / n)}) | {_pct(statistics.median(mdes)) if mdes else '-'} "
                     f"| {_pct(statistics.median(res)) if res else '-'} "
                     f"| {statistics.median(r['rounds'] or 0 for r in rs):g} "
                     f"| {statistics.median(walls.values()):.0f} s, {max(walls.values()):.0f} s |")
    lines += ["", "Resolution: the smallest change from none that the decision's pairs could detect with 90% power at "
              "its look's alpha; the stated detectable effect is that on top of the threshold (so never below it).",
              "", "Per case, over every run: the spread of the process pairs' log ratios (their standard "
              "deviation, about the coefficient of variation of a pair's ratio) next to the spread a pair's own "
              "windows predict, what the plan's last look would resolve at that spread, and how often a case "
              "was flagged `pairs-disagree`.", "",
              "| case | pairs | between-pair sd | median within-pair se | resolution at the last look "
              "| pairs-disagree | regression in A/A | missed (ok) when slowed |", "|" + " --- |" * 8]
    for case in sorted({r["case"] for r in records}):
        rs = [r for r in records if r["case"] == case]
        devs = []
        for r in rs:  # deviations of each run's pair log ratios from that run's mean (the injection cancels)
            if len(r["round_logs"]) >= 2:
                m = statistics.fmean(r["round_logs"])
                devs += [(x - m) ** 2 * len(r["round_logs"]) / (len(r["round_logs"]) - 1) for x in r["round_logs"]]
        sd = math.sqrt(statistics.fmean(devs)) if devs else float("nan")
        within = [s for r in rs for s in r["within_se"] if s is not None]
        last = last_look_resolution(sd, args.profile) if devs else None
        lines.append(f"| {case} | {sum(len(r['round_logs']) for r in rs)} | {_pct(sd)} "
                     f"| {_pct(statistics.median(within)) if within else '-'} | {_pct(last) if last else '-'} "
                     f"| {sum(1 for r in rs if 'pairs-disagree' in r['flags'])}/{len(rs)} "
                     f"| {sum(1 for r in rs if KINDS[r['kind']][1] == 0 and r['outcome'] == 'regression')} "
                     f"| {sum(1 for r in rs if KINDS[r['kind']][1] > 0 and r['outcome'] == 'ok')} |")
    loads = [r["load_before"] for r in records] + [r["load_after"] for r in records]
    seen = {(r.get("threads"), str(r.get("cpus")), r.get("cpu_count"), r.get("processor")) for r in records}
    budget = "the profile's budget" if args.budget is None else f"a budget of {args.budget:g} s"
    header = (f"Profile `{args.profile}`, {budget}, alpha 0.05. Measured with (OMP_NUM_THREADS, CPUs used, CPUs in "
              f"the machine, processor): {'; '.join(', '.join(map(str, s)) for s in sorted(seen))}. The 1-minute "
              f"load average during the runs: {min(loads):.1f}-{max(loads):.1f}.")
    return "\n".join([header, "", *lines])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20, help="runs of ab per kind (6 decisions each)")
    ap.add_argument("--repeats-of", default=None, metavar="KIND=N,...",
                    help="other repeat counts for some kinds, e.g. +20%%@5%%=6 (the kinds stay interleaved)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="which kinds, comma-separated (default: all of " + ", ".join(KINDS).replace("%", "%%") + ")")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--budget", type=float, default=None, help="ab's time budget in seconds (default: the profile's)")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both sides (default: unset)")
    ap.add_argument("--cpus", default=None, help="pin this process and its workers to these CPUs, e.g. 0 or 0,1")
    ap.add_argument("--work", default="/tmp/benchbench-ab-calibration")
    ap.add_argument("--doc", default=None, help="write the table into this Markdown file (between markers)")
    ap.add_argument("--marker", default="ab-calibration",
                    help="the table goes between <!-- MARKER:begin --> and <!-- MARKER:end --> in --doc")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    args.kinds = [k.strip() for k in args.kinds.split(",")]
    if args.threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "records.json"
    records = json.loads(path.read_text()) if path.exists() else []
    if not args.table_only:
        measure(args, work, records)
    text = table(records, args)
    print(text)
    if args.doc:
        from doc_markers import markers, write_between

        write_between(Path(args.doc), *markers(args.marker), text, create=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
