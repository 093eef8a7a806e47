"""`benchbench gate --baseline BASE.json CURRENT.json`: exit 0 pass, 1 regression, 3 inconclusive (2: bad input).

`--rerun` (benchbench.run.rerun, which a notebook can call too) measures the suspected regressions (slower, or noisy with the median up) of CURRENT on
this machine in as many more rounds as CURRENT's profile has, adds those rounds to their results
(evidence accumulates; nothing is replaced) and writes the grown report beside CURRENT
(CURRENT.rerun.json) before deciding. The baseline is never re-measured: it usually comes from another
commit. Re-running refuses when this machine's fingerprint differs from CURRENT's in a way that
matters, or when a benchmark's code no longer matches the definition CURRENT measured.

`--profile-regressions` (benchbench.run.profiling.profile_stored) profiles each regressed or inconclusive
case once per side after the decision: the current side from this checkout, the baseline from a
temporary git worktree of `--baseline-ref` or of the commit the baseline report records.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchbench.errors import UserError
from benchbench.model.report import check_not_input, check_output_folder, write_atomic


def add_policy_arguments(p: argparse.ArgumentParser) -> None:
    """How to decide and what to write: the options `gate` and `ab` share."""
    p.add_argument("--fail-on", metavar="median:PCT",
                   help="slowdown that counts as a regression, e.g. median:5%% (default: the rules file's, else 5%%)")
    p.add_argument("--alpha", help="significance level (default: 0.05)")
    p.add_argument("--rules", metavar="TOML", help="per-benchmark thresholds and ignores (see benchbench.analysis.gate)")
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
                   help="where CURRENT's own suites live (needed by --rerun and --profile-regressions for suites "
                   "that are not built in)")
    p.add_argument("--profile-regressions", action="store_true",
                   help="after the decision, profile each case that regressed or stayed inconclusive under "
                   "torch.profiler, once per side on this machine: the current side from this checkout, the "
                   "baseline from a temporary git worktree of its commit; write Chrome traces and an operator "
                   "diff into --profiles-dir. The verdict and exit code are the gate's")
    p.add_argument("--baseline-ref", metavar="REF",
                   help="the commit the baseline was measured at, for --profile-regressions (default: the "
                   "git commit the baseline report records)")
    p.add_argument("--profiles-dir", metavar="DIR",
                   help="where --profile-regressions writes traces, profiles.json and profiles.html "
                   "(default: CURRENT.profiles/ beside CURRENT)")
    p.add_argument("--quiet", "-q", action="store_true", help="no re-run or profiling progress")


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


def check_profiling(args: argparse.Namespace) -> Path | None:
    """The folder for --profile-regressions (checked writable), or None without it; a --baseline-ref that
    names no commit here, or options that need --profile-regressions, are one-line errors."""
    if not args.profile_regressions:
        for option, value in (("--baseline-ref", args.baseline_ref), ("--profiles-dir", args.profiles_dir)):
            if value:
                raise UserError(f"{option} is for --profile-regressions")
        return None
    if args.baseline_ref:
        from benchbench.worktree import has_commit, repo_root

        root = repo_root()
        if not has_commit(args.baseline_ref, root):
            raise UserError(f"--baseline-ref {args.baseline_ref}: no such commit, branch or tag in {root}")
    folder = Path(args.profiles_dir) if args.profiles_dir else Path(args.current).with_suffix(".profiles")
    return check_output_folder(folder, "--profiles-dir")


def main(args: argparse.Namespace) -> int:
    from benchbench.analysis.gate import gate, load_policy
    from benchbench.model.formats import load_any
    from benchbench.output.gate import gate_json, markdown_summary, terminal_text
    from benchbench.output.progress import Progress
    from benchbench.run.rerun import gate_with_rerun

    check_not_input(args.summary, [args.baseline, args.current, args.rules], "--summary")
    policy = load_policy(args.rules, args.fail_on, args.alpha)
    baseline, current = load_any(args.baseline), load_any(args.current)
    profiles_dir = check_profiling(args)  # before anything slow
    names = (Path(args.baseline).stem, Path(args.current).stem)
    if names[0] == names[1]:
        names = ("baseline", "current")
    if args.rerun:
        command = ["benchbench", "gate", "--baseline", args.baseline, args.current, "--rerun",
                   *(f"--suite-path={p}" for p in args.suite_path or [])]
        result, notes = gate_with_rerun(baseline, current, policy, names, Path(args.current).with_suffix(".rerun.json"),
                                        args.suite_path, command, Progress(quiet=args.quiet))
    else:
        result, notes = gate(baseline, current, policy, names), []
    profiles: list = []
    if profiles_dir is not None:
        from benchbench.run.profiling import profile_stored

        profiles, more = profile_stored(result, baseline, current, suite_paths=args.suite_path, folder=profiles_dir,
                                        baseline_ref=args.baseline_ref, quiet=args.quiet)
        notes += more
    if args.json:
        text = gate_json(result)
        if profiles_dir is not None:
            from benchbench.output.profiles import with_profiles

            text = with_profiles(text, profiles)
        print(text)
    else:
        print(terminal_text(result))
        if profiles:
            from benchbench.output.profiles import profiles_text

            print(profiles_text(profiles))
    for note in notes:
        print(note, file=sys.stderr)
    if profiles:
        from benchbench.output.profiles import profiles_html

        page = write_atomic(profiles_dir / "profiles.html", profiles_html(profiles, profiles_dir))
        print(f"profiles: {page}", file=sys.stderr)
    summary = markdown_summary(result)
    if profiles:
        from benchbench.output.profiles import profiles_markdown

        summary += "\n" + profiles_markdown(profiles)
    if notes:
        summary += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    for path in write_summary(summary, args.summary):
        print(f"summary written to {path}", file=sys.stderr)
    return result.exit_code
