"""`benchbench gate --baseline BASE.json CURRENT.json`: exit 0 pass, 1 regression, 3 inconclusive (2: bad input).

`--rerun` (benchbench.rerun, which a notebook can call too) measures the suspected regressions (slower, or noisy with the median up) of CURRENT on
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
    from benchbench.rerun import gate_with_rerun

    check_not_input(args.summary, [args.baseline, args.current, args.rules], "--summary")
    policy = load_policy(args.rules, args.fail_on, args.alpha)
    baseline, current = load_any(args.baseline), load_any(args.current)
    names = (Path(args.baseline).stem, Path(args.current).stem)
    if names[0] == names[1]:
        names = ("baseline", "current")
    if args.rerun:
        command = ["benchbench", "gate", "--baseline", args.baseline, args.current, "--rerun",
                   *(f"--suite-path={p}" for p in args.suite_path or [])]
        result, notes = gate_with_rerun(baseline, current, policy, names, Path(args.current).with_suffix(".rerun.json"),
                                        args.suite_path, command, quiet=args.quiet)
    else:
        result, notes = gate(baseline, current, policy, names), []
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
