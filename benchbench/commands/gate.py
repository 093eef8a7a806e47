"""`benchbench gate --baseline BASE.json CURRENT.json`: exit 0 pass, 1 regression, 3 inconclusive (2: bad input).

`--rerun` measures the suspected regressions (slower, or noisy with the median up) of CURRENT on
this machine in as many more rounds as CURRENT's profile has, adds those rounds to their results
(evidence accumulates; nothing is replaced) and writes the grown report beside CURRENT
(CURRENT.rerun.json) before deciding. The baseline is never re-measured: it usually comes from another
commit. Re-running refuses when this machine's fingerprint differs from CURRENT's in a way that
matters, or when a benchmark's code no longer matches the definition CURRENT measured.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from benchbench.errors import UserError
from benchbench.report import check_not_input, write_atomic


def add_policy_arguments(p: argparse.ArgumentParser) -> None:
    """How to decide and what to write: the options `gate` and `ab` share."""
    p.add_argument("--fail-on", metavar="median:PCT",
                   help="slowdown that counts as a regression, e.g. median:5%% (default: the rules file's, else 5%%)")
    p.add_argument("--alpha", help="significance level (default: 0.05)")
    p.add_argument("--rules", metavar="TOML", help="per-benchmark thresholds and ignores (see benchbench.gate)")
    p.add_argument("--summary", metavar="PATH", help="write a Markdown summary here (it is also appended to "
                   "$GITHUB_STEP_SUMMARY when that is set)")
    p.add_argument("--json", action="store_true", help="print the comparison and verdict as JSON")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("current", metavar="CURRENT", help="the report to judge (benchbench or pytest-benchmark JSON)")
    p.add_argument("--baseline", "-b", required=True, metavar="BASE", help="the report to compare against")
    add_policy_arguments(p)
    p.add_argument("--rerun", action="store_true",
                   help="measure suspected regressions in more rounds, added to CURRENT's, before deciding")
    p.add_argument("--suite-path", action="append", metavar="FILE_OR_DIR",
                   help="where CURRENT's own suites live (needed by --rerun for suites that are not built in)")
    p.add_argument("--quiet", "-q", action="store_true", help="no re-run progress")


def _suspects(result: Any) -> list[Any]:
    """Rows worth re-measuring: timed on both sides with raw samples, and slower or possibly slower."""
    out = []
    for f in result.findings:
        row = f.row
        if f.outcome not in ("regression", "inconclusive") or row.change is None or not row.change.from_samples \
                or row.reasons or row.env:
            continue
        if row.verdict == "slower" or (row.verdict == "noisy" and row.change.ratio > 1):
            out.append(row)
    return out


def rerun(current: Any, rows: list[Any], suite_paths: list[str] | None, quiet: bool, out_path: Path,
          command: list[str]) -> list[str]:
    """Measure these rows' cases in more rounds and add them to `current`; returns notes for the user."""
    import random

    from benchbench import registry, session
    from benchbench.environment import collect, fingerprint_diff
    from benchbench.execute import skip_reason
    from benchbench.measure import get_profile
    from benchbench.progress import Progress
    from benchbench.runner import PlannedCase, Side

    notes = []
    available = {s.name: s for s in registry.discover(suite_paths)}
    all_backends, _ = session.select_backends(None)
    backends = {b.name: b for b in all_backends if b.name in {r.key.backend for r in rows}}
    env = collect(list(backends.values()))
    clash = [f"{k}: {a} vs {b}" for k, a, b, m in fingerprint_diff(current.fingerprint, env["fingerprint"],
                                                                      sorted(backends)) if m]
    if clash:
        raise UserError("--rerun must run on the machine (and setup) that measured CURRENT; differences: "
                        + "; ".join(clash))
    cases = []
    for row in rows:
        key, old = row.key, row.other
        suite = available.get(key.suite)
        bench = next((b for b in suite.benchmarks if b.name == key.benchmark), None) if suite else None
        backend = backends.get(key.backend)
        if bench is None:
            notes.append(f"not re-run: {key.label}: suite or benchmark not found (use --suite-path)")
        elif backend is None or not backend.available:
            notes.append(f"not re-run: {key.label}: backend {key.backend} is not usable here")
        elif old.definition_hash and bench.definition_hash != old.definition_hash:
            notes.append(f"not re-run: {key.label}: the benchmark's code differs from what CURRENT measured")
        else:
            cases.append(PlannedCase(suite, bench, key, skip_reason(bench, key, backend)))
    if not cases:
        return notes
    profile = get_profile(current.profile or "default")
    sess = session.Session(suites=list(available.values()), all_backends=list(backends.values()),
                           backends=list(backends.values()), profile=profile, budget=profile.budget,
                           rounds=profile.rounds, seed=random.randrange(2**31), cases=cases,
                           environment=env)
    # More rounds of the same budget, added to the suspects' results: evidence accumulates, nothing is replaced.
    session.measure(sess, [session.Target(Side(), current, out_path)], Progress(quiet=quiet))
    current.command = [*current.command, "+", *command]
    from benchbench.report import save

    save(current, out_path)
    notes.append(f"measured {len(cases)} suspected regression{'s' if len(cases) != 1 else ''} in "
                 f"{profile.rounds} more rounds; updated report: {out_path}")
    return notes


def write_summary(text: str, path: str | os.PathLike | None) -> list[Path]:
    """Write the summary to `path` (replacing it) and append it to $GITHUB_STEP_SUMMARY when that is set."""
    written: list[Path] = []
    if path:
        written.append(write_atomic(path, text))
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    if step:
        try:
            with open(step, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError as exc:
            raise UserError(f"GITHUB_STEP_SUMMARY={step}: cannot append: {exc}") from None
        written.append(Path(step))
    return written


def main(args: argparse.Namespace) -> int:
    from benchbench.formats import load_any
    from benchbench.gate import gate, load_policy
    from benchbench.output.gate import gate_json, markdown_summary, terminal_text

    check_not_input(args.summary, [args.baseline, args.current, args.rules], "--summary")
    policy = load_policy(args.rules, args.fail_on, args.alpha)
    baseline, current = load_any(args.baseline), load_any(args.current)
    names = (Path(args.baseline).stem, Path(args.current).stem)
    if names[0] == names[1]:
        names = ("baseline", "current")
    result = gate(baseline, current, policy, names)
    notes: list[str] = []
    if args.rerun and result.verdict != "pass":
        suspects = _suspects(result)
        if suspects:
            out = Path(args.current).with_suffix(".rerun.json")
            command = ["benchbench", "gate", "--baseline", args.baseline, args.current, "--rerun",
                       *(f"--suite-path={p}" for p in args.suite_path or [])]
            notes = rerun(current, suspects, args.suite_path, args.quiet, out, command)
            result = gate(baseline, current, policy, names)
        else:
            notes = ["--rerun: nothing to re-measure (no slower or possibly slower case with raw samples)"]
    if args.json:
        print(gate_json(result))
    else:
        print(terminal_text(result))
    for note in notes:
        print(note, file=sys.stderr)
    summary = markdown_summary(result)
    if notes:
        summary += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    for path in write_summary(summary, args.summary):
        print(f"summary written to {path}", file=sys.stderr)
    return result.exit_code
