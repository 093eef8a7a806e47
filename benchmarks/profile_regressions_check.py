"""Does `ab --profile-regressions` change what `ab` decides? Measure it on the calibration's own runs.

    PYTHONPATH=. python benchmarks/profile_regressions_check.py --repeats 4 --threads 1 --cpus 0 \
        --work /tmp/profcheck --doc docs/bisect.md

Each run is `benchbench.run.ab.run_ab` over the six CPU ops of `benchmarks/calibration_suite.py` (the same
runs as benchmarks/ab_calibration.py), of two kinds with known answers:
- `aa@5%`: identical sides at --fail-on 5%: `ok` is right, and nothing should be profiled but the
  inconclusive cases;
- `+10%@5%`: the current side does 10% more work in the ops' helper module: `regression` is right,
  and every regressed case is profiled on both sides.
With `--threads 1 --cpus 0` it runs as the calibration in docs/ab.md was measured. Each kind runs with
and without `profile_regressions`, the four in alternation (the order flips each
repeat), so a change of the machine's load hits all alike. The table counts the verdicts of each, and
a Fisher exact test (scipy) per kind and outcome asks whether the option moved them. Records are saved
after every run (`--work`/records.json; a rerun resumes), `--table-only` redraws the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from ab_calibration import KINDS, SLOWDOWN_VAR, SUITE, log, records_of, save

CHECKED = ("aa@5%", "+10%@5%")
OUTCOMES = ("regression", "inconclusive", "ok")


def measure(args: argparse.Namespace, work: Path, records: list[dict]) -> None:
    from benchbench.analysis.gate import Policy
    from benchbench.run.ab import SideSpec, run_ab

    done = {(r["kind"], r["repeat"], r["profiled"]) for r in records}
    for i in range(args.repeats):
        order = [(kind, flag) for kind in CHECKED for flag in ((False, True) if i % 2 == 0 else (True, False))]
        for kind, flag in order:
            if (kind, i, flag) in done:
                continue
            threshold, pct = KINDS[kind]
            current = SideSpec(env=((SLOWDOWN_VAR, f"{pct:g}"),)) if pct else SideSpec()
            name = f"{kind.replace('%', 'pct').replace('@', '_at_').replace('+', 'slow')}_{i}_{'prof' if flag else 'plain'}"
            load0 = os.getloadavg()[0]
            t0 = time.time()
            res = run_ab(suite_paths=[str(SUITE)], backends=["cpu"], profile=args.profile, current=current,
                         policy=Policy(threshold=threshold), output=work / name, label=name,
                         command=["profile_regressions_check.py", kind, str(i)], profile_regressions=flag)
            wall = time.time() - t0
            profiled = {cp.key.label: cp for cp in res.profiles}
            recs = records_of(kind, i, res, wall, (load0, os.getloadavg()[0]))
            for rec, finding in zip(recs, res.gate.findings, strict=True):  # records_of keeps the findings' order
                cp = profiled.get(finding.row.key.label)
                records.append({**rec, "profiled": flag, "profile": args.profile, "case_profiled": cp is not None,
                                "profile_sides": sorted(cp.profiles) if cp else [],
                                "profile_errors": dict(cp.errors) if cp else {},
                                "top_operator": cp.rows[0].name if cp and cp.rows else None})
            save(records, work)
            counts = {o: sum(1 for f in res.gate.findings if f.outcome == o) for o in OUTCOMES}
            log(f"{kind} #{i} {'with' if flag else 'without'} profiling: {counts}, {len(profiled)} profiled, "
                f"{wall:.0f} s")


def table(records: list[dict]) -> str:
    from scipy.stats import fisher_exact

    lines = ["| kind | `--profile-regressions` | decisions | regression | inconclusive | ok | right "
             "| cases profiled (both sides) | ab wall time (median) |", "|" + " --- |" * 9]
    counts: dict[tuple[str, bool], dict[str, int]] = {}
    for kind in CHECKED:
        for flag in (False, True):
            rs = [r for r in records if r["kind"] == kind and r["profiled"] == flag]
            if not rs:
                continue
            c = {o: sum(1 for r in rs if r["outcome"] == o) for o in OUTCOMES}
            counts[kind, flag] = c
            right = c["ok"] if KINDS[kind][1] == 0 else c["regression"]
            both = sum(1 for r in rs if len(r["profile_sides"]) == 2)
            prof = sum(1 for r in rs if r["case_profiled"])
            walls = {r["repeat"]: r["wall_s"] for r in rs}
            lines.append(f"| {kind} | {'on' if flag else 'off'} | {len(rs)} | {c['regression']} | {c['inconclusive']} "
                         f"| {c['ok']} | {right}/{len(rs)} | {prof} ({both}) | {statistics.median(walls.values()):.0f} s |")
    tests = []
    for kind in CHECKED:
        if (kind, False) in counts and (kind, True) in counts:
            off, on = counts[kind, False], counts[kind, True]
            n_off, n_on = sum(off.values()), sum(on.values())
            ps = {o: fisher_exact([[off[o], n_off - off[o]], [on[o], n_on - on[o]]])[1] for o in OUTCOMES}
            tests.append(f"{kind}: " + ", ".join(f"{o} p = {p:.2f}" for o, p in ps.items()))
    tops: dict[str, dict[str, int]] = {}
    for r in records:
        if r["kind"] != "aa@5%" and r["top_operator"]:
            mine = tops.setdefault(r["case"], {})
            mine[r["top_operator"]] = mine.get(r["top_operator"], 0) + 1
    loads = [r["load_before"] for r in records] + [r["load_after"] for r in records]
    errors = sorted({e for r in records for e in r["profile_errors"].values()})
    seen = {(r.get("threads"), str(r.get("cpus")), r.get("cpu_count")) for r in records}
    out = [f"Profile `{records[0]['profile']}`, the calibration suite (6 CPU ops), alpha 0.05, the profile's "
           f"budget. Measured with (OMP_NUM_THREADS, CPUs used, CPUs in the machine): "
           f"{'; '.join(', '.join(map(str, s)) for s in sorted(seen))}; the 1-minute load average during the "
           f"runs: {min(loads):.1f}-{max(loads):.1f}.", "",
           *lines, "", "Fisher's exact test, off against on, of each outcome's share (a small p would say the "
           "option moved the verdicts): " + ("; ".join(tests) if tests else "-") + "."]
    if tops:
        out += ["", "The first row of each profiled +10% case's operator diff (the operator that gained the most self "
                "time per call), with how often: " + "; ".join(
                    f"{case}: " + ", ".join(f"`{op}` {n}" for op, n in sorted(ops.items(), key=lambda kv: -kv[1]))
                    for case, ops in sorted(tops.items())) + "."]
    if errors:
        out += ["", "Profiles that failed: " + "; ".join(errors) + "."]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=4, help="runs per kind and setting (6 decisions each)")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both sides (default: unset)")
    ap.add_argument("--cpus", default=None, help="pin this process and its workers to these CPUs, e.g. 0 or 0,1")
    ap.add_argument("--work", default="/tmp/benchbench-profile-regressions-check")
    ap.add_argument("--doc", default=None, help="write the table into this Markdown file (between markers)")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
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
    text = table(records)
    print(text)
    if args.doc:
        from doc_markers import markers, write_between

        write_between(Path(args.doc), *markers("profile-regressions-check"), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
