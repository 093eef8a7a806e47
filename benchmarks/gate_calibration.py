"""How honest is the gate on this machine? Measure it and write a Markdown table per case.

    PYTHONPATH=. python benchmarks/gate_calibration.py --repeats 20 --injected-repeats 10 --gate-runs 11 \
        --profile default --table calibration.md

What it runs (all on the CPU, with the six ops of `benchmarks/calibration_suite.py`):
- A/A with `ab`: `--repeats` runs of `benchbench.run.ab.run_ab` with identical sides (the library call
  behind `benchbench ab`). Every `regression` is a false one.
- Injected slowdowns: `--injected-repeats` runs of `ab` whose current side sets
  BENCHBENCH_CALIBRATION_SLOWDOWN=10, and as many with 5: the ops' helper module (outside the suite
  file, so the definition hash is unchanged) does 10% or 5% more work. A `pass`/`same` there is a
  miss; an `inconclusive` is honest when its stated detectable effect is above the injected slowdown;
  among decisions that state a detectable effect below it, at least 90% should be `regression`.
- A/A with `gate` on stored reports: `--gate-runs` back-to-back `run`s, each consecutive pair
  gated (unpaired: Welch t on the rounds, canary check). Every `regression` is a false one.

Per case the table shows the between-process spread (standard deviation of the log round values
of one side, pooled over every run: about the coefficient of variation between processes), the
minimum detectable effect that `ab`'s paired rule has with the quick (3) and default (5) rounds at
the spread of paired round differences measured here, and the outcome counts. Records are saved
after every run (`--work`/records.json; a rerun resumes), and `--table-only` decides again on the saved
reports with the code as it stands and redraws the table.
The threshold is 5% and alpha 0.05 (`--threshold`, `--alpha`); workers run with OMP_NUM_THREADS=1
unless `--threads` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = HERE / "calibration_suite.py"
SLOWDOWN_VAR = "BENCHBENCH_CALIBRATION_SLOWDOWN"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def round_logs(result, q: float = 0.0) -> dict[int, float]:
    from benchbench.analysis.compare import round_values

    return {i: math.log(v) for i, v in round_values(result, q).items() if v > 0}


def records_of(kind: str, repeat: int, gate_result) -> list[dict]:
    out = []
    for f in gate_result.findings:
        row = f.row
        rec = {"kind": kind, "repeat": repeat, "case": f"{row.key.suite}/{row.key.name}", "outcome": f.outcome,
               "verdict": row.verdict, "cause": f.cause, "mde": row.mde,
               "ratio": row.change.ratio if row.change else None, "unit": row.change.unit if row.change else None,
               "base_logs": {}, "other_logs": {}}
        for side, res in (("base", row.base), ("other", row.other)):
            if res is not None and res.ok:
                rec[f"{side}_logs"] = round_logs(res)  # the fastest sample of each round: what the gate uses
                rec[f"{side}_median_logs"] = round_logs(res, 0.5)
        out.append(rec)
    return out


def save(records: list[dict], work: Path) -> None:
    tmp = work / "records.json.tmp"
    tmp.write_text(json.dumps(records))
    tmp.replace(work / "records.json")


def measure(args: argparse.Namespace, work: Path, records: list[dict]) -> None:
    from benchbench.analysis.gate import Policy, gate
    from benchbench.run import session
    from benchbench.run.ab import SideSpec, run_ab

    policy = Policy(threshold=args.threshold, alpha=args.alpha)
    common = {"suite_paths": [str(SUITE)], "backends": ["cpu"], "profile": args.profile, "rounds": args.rounds}
    plan = [("aa", i, None) for i in range(args.repeats)]
    for pct in args.injected:
        plan += [(f"slow{pct:g}", i, pct) for i in range(args.injected_repeats)]
    # interleave the kinds, so that a change of the machine's load during the hour hits all of them
    plan.sort(key=lambda p: (p[1], p[0]))
    done = {(r["kind"], r["repeat"]) for r in records}
    for kind, i, pct in plan:
        if (kind, i) in done:
            continue
        current = SideSpec(env=((SLOWDOWN_VAR, f"{pct:g}"),)) if pct else SideSpec()
        t0 = time.time()
        res = run_ab(**common, current=current, policy=policy, output=work / f"{kind}_{i}", label=f"{kind}_{i}",
                     command=["gate_calibration.py", kind, str(i)])
        records += records_of(kind, i, res.gate)
        save(records, work)
        counts = {o: sum(1 for f in res.gate.findings if f.outcome == o) for o in ("regression", "inconclusive", "ok")}
        log(f"ab {kind} #{i}: {counts} in {time.time() - t0:.0f} s")
    from benchbench.model.report import load

    previous = None
    for i in range(args.gate_runs):
        path = work / f"run_{i}.json"
        if not path.exists() or load(path).partial:
            t0 = time.time()
            session.run(**common, output=path, label=f"run_{i}", command=["gate_calibration.py", "run", str(i)])
            log(f"run #{i} in {time.time() - t0:.0f} s")
        report = load(path)
        if previous is not None and ("gate", i) not in done:
            records += records_of("gate", i, gate(previous, report, policy, ("previous", "next")))
            save(records, work)
        previous = report


def predicted_mde(sd: float, rounds: int, threshold: float, alpha: float, power: float = 0.9) -> float:
    """ab's paired rule with `rounds` rounds at a paired round-difference spread `sd` (compare.py)."""
    from benchbench.analysis.compare import power_noncentrality

    se = sd / math.sqrt(rounds)
    return math.expm1(math.log1p(threshold) + power_noncentrality(rounds - 1, alpha, power) * se)


def rederive(args: argparse.Namespace, work: Path) -> list[dict]:
    """Records from the reports saved in `work`, decided by the gate as the code stands now."""
    from benchbench.analysis.gate import Policy, gate
    from benchbench.model.report import load

    policy = Policy(threshold=args.threshold, alpha=args.alpha)
    records = []
    for folder in sorted(p for p in work.iterdir() if p.is_dir()):
        kind, _, i = folder.name.rpartition("_")
        files = [folder / "baseline.json", folder / "current.json"]
        if all(f.exists() for f in files):
            base, cur = (load(f) for f in files)
            if not (base.partial or cur.partial):
                records += records_of(kind, int(i), gate(base, cur, policy, ("baseline", "current"), paired=True))
    previous = None
    for i in range(10_000):
        path = work / f"run_{i}.json"
        if not path.exists():
            break
        report = load(path)
        if report.partial:
            break
        if previous is not None:
            records += records_of("gate", i, gate(previous, report, policy, ("previous", "next")))
        previous = report
    return records


def pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{100 * x:.1f}%" if x < 1 else f"{x + 1:.1f}x"


def table(records: list[dict], args: argparse.Namespace) -> str:
    cases = sorted({r["case"] for r in records})
    lines = []

    def by(kind: str, case: str | None = None) -> list[dict]:
        return [r for r in records if r["kind"] == kind and (case is None or r["case"] == case)]

    injected = [p for p in args.injected if by(f"slow{p:g}")] if not args.table_only else sorted(
        {float(r["kind"][4:]) for r in records if r["kind"].startswith("slow")}, reverse=True)
    header = ["case", "between-process CV (round medians)", "between-process CV (round minimums)", "paired round sd",
              "MDE quick (3 rounds)", "MDE default (5 rounds)", "ab A/A: regression / inconclusive / ok"]
    for p in injected:
        header += [f"ab +{p:g}%: regression / inconclusive / pass", f"+{p:g}%: regression among MDE < {p:g}%"]
    header.append("gate A/A: regression / inconclusive / ok")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    totals: dict[str, list[int]] = {}

    def counts(rs: list[dict], key: str) -> list[int]:
        c = [sum(1 for r in rs if r["outcome"] == "regression"), sum(1 for r in rs if r["outcome"] == "inconclusive"),
             sum(1 for r in rs if r["outcome"] == "ok")]
        t = totals.setdefault(key, [0, 0, 0])
        for j in range(3):
            t[j] += c[j]
        return c

    def among(rs: list[dict], limit: float, key: str) -> str:
        sel = [r for r in rs if r["mde"] is not None and r["mde"] < limit]
        hit = sum(1 for r in sel if r["outcome"] == "regression")
        t = totals.setdefault(key, [0, 0])
        t[0] += hit
        t[1] += len(sel)
        return f"{hit}/{len(sel)}" if sel else "- (none)"

    for case in cases:
        spreads, med_spreads, diffs = [], [], []
        for r in records:
            if r["case"] != case:
                continue
            for side in ("base", "other"):
                if r["kind"] == "gate" and side == "base":
                    continue  # each stored run once
                for key, into in ((f"{side}_logs", spreads), (f"{side}_median_logs", med_spreads)):
                    vals = list(r.get(key, {}).values())
                    if len(vals) >= 2:
                        into.append(statistics.variance(vals))
            if r["kind"] == "aa":
                common = sorted(set(r["base_logs"]) & set(r["other_logs"]), key=int)
                d = [r["other_logs"][k] - r["base_logs"][k] for k in common]
                if len(d) >= 2:
                    diffs.append(statistics.variance(d))
        cv = math.sqrt(statistics.fmean(spreads)) if spreads else None
        med_cv = math.sqrt(statistics.fmean(med_spreads)) if med_spreads else None
        sd = math.sqrt(statistics.fmean(diffs)) if diffs else None
        cells = [case, pct(med_cv), pct(cv), pct(sd),
                 pct(predicted_mde(sd, 3, args.threshold, args.alpha)) if sd else "-",
                 pct(predicted_mde(sd, 5, args.threshold, args.alpha)) if sd else "-"]
        cells.append("{} / {} / {}".format(*counts(by("aa", case), "aa")))
        for p in injected:
            kind = f"slow{p:g}"
            cells.append("{} / {} / {}".format(*counts(by(kind, case), kind)))
            cells.append(among(by(kind, case), p / 100, f"among{p:g}"))
        cells.append("{} / {} / {}".format(*counts(by("gate", case), "gate")))
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**all**", "", "", "", "", ""]
    for key in ["aa", *(k for p in injected for k in (f"slow{p:g}", f"among{p:g}")), "gate"]:
        t = totals.get(key)
        if not t:
            cells.append("-")
        elif key.startswith("among"):
            cells.append(f"{t[0]}/{t[1]}" if t[1] else "- (none)")
        else:
            n = sum(t)
            cells.append(f"{t[0]} / {t[1]} / {t[2]} ({100 * t[0] / n:.1f}% regression)" if n else "-")
    lines.append("| " + " | ".join(cells) + " |")
    slow = [r for r in records if r["kind"].startswith("slow")]
    n_runs = {k: len({r["repeat"] for r in by(k)}) for k in ("aa", "gate", *(f"slow{p:g}" for p in injected))}
    honest = [r for r in slow if r["outcome"] in ("ok",)]
    bad_mde = [r for r in slow if r["outcome"] == "inconclusive" and r["mde"] is not None
               and r["mde"] < float(r["kind"][4:]) / 100]
    notes = [
        "",
        f"Profile {args.profile}{f', {args.rounds} rounds' if args.rounds else ''}, threshold {100 * args.threshold:g}%, "
        f"alpha {args.alpha:g}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}. Runs: {n_runs['aa']} ab A/A, "
        + "".join(f"{n_runs[f'slow{p:g}']} ab +{p:g}%, " for p in injected)
        + f"{n_runs['gate']} gated pairs of back-to-back runs (each row: one decision per run).",
        f"Injected runs decided pass/same (misses): {len(honest)}; inconclusive with a stated detectable effect "
        f"below the injected slowdown: {len(bad_mde)}.",
        "Between-process CV: sd of the log round medians, and of the log of each round's fastest sample (what the "
        "gate compares), one side, pooled over all runs. Paired round sd: sd of the per-round log ratios of fastest "
        "samples in the ab A/A runs; the MDE columns apply ab's rule (compare.py) to it with 3 and 5 rounds.",
    ]
    return "\n".join(lines + notes) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=20, help="ab runs with identical sides (default 20)")
    p.add_argument("--injected-repeats", type=int, default=10, help="ab runs per injected slowdown (default 10)")
    p.add_argument("--injected", type=lambda t: [float(x) for x in t.split(",") if x], default=[10.0, 5.0],
                   help="injected slowdowns in %%, comma-separated (default 10,5)")
    p.add_argument("--gate-runs", type=int, default=11, help="back-to-back runs for the gate's A/A (default 11)")
    p.add_argument("--profile", default="default", help="profile of every run (default: default)")
    p.add_argument("--rounds", type=int, help="rounds per run (default: the profile's)")
    p.add_argument("--threshold", type=float, default=0.05)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--threads", default="1", help="OMP_NUM_THREADS of the workers (default 1)")
    p.add_argument("--work", default="calibration_work", help="folder for reports and records.json")
    p.add_argument("--table", help="write the Markdown table here too")
    p.add_argument("--table-only", action="store_true",
                   help="only redraw the table, deciding again on the reports saved in --work")
    args = p.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = args.threads
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "records.json"
    records = json.loads(path.read_text()) if path.exists() else []
    if args.table_only:
        records = rederive(args, work)
    else:
        t0 = time.time()
        log(f"calibration: {args.repeats} A/A, {len(args.injected)} x {args.injected_repeats} injected, {args.gate_runs} runs; "
            f"profile {args.profile}")
        measure(args, work, records)
        log(f"done in {(time.time() - t0) / 60:.1f} min")
    text = table(records, args)
    print(text)
    if args.table:
        Path(args.table).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
