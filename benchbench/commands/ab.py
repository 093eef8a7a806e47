"""`benchbench ab`: measure a baseline and a current side block-interleaved, round by round, and gate on the pairs.

Exit codes are the gate's: 0 pass, 1 regression, 3 inconclusive (2: bad input; 130: interrupted, both
partial reports kept). With identical sides (`benchbench ab --suite X`) it is the machine's A/A
calibration. The work is `benchbench.run.ab.run_ab`; this module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from benchbench.commands.gate import add_policy_arguments
from benchbench.commands.run import add_case_arguments
from benchbench.metrics import RUNNABLE, runnable

_DURATION = re.compile(r"^\s*(?:(?P<h>\d+(?:\.\d+)?)h)?\s*(?:(?P<m>\d+(?:\.\d+)?)m)?\s*"
                       r"(?:(?P<s>\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration(text: str) -> float:
    """"90", "90s", "3m", "1m30s", "1h" -> seconds (argparse turns the ValueError into a usage error, exit 2)."""
    m = _DURATION.match(text or "")
    if not m or not any(m.group(g) for g in "hms"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration such as 90s, 3m or 1m30s")
    seconds = sum(float(m.group(g) or 0) * f for g, f in (("h", 3600), ("m", 60), ("s", 1)))
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be longer than zero")
    return seconds


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_case_arguments(p, "a fixed number of rounds (process pairs), decided at once after the last (default: rounds added until every case is decided, within --budget)")
    p.add_argument("--suite-path", action="append", metavar="FILE_OR_DIR",
                   help="load your own suites from here (relative paths are found in the baseline's tree too)")
    p.add_argument("--label", help="a name for this run, stored in both reports")
    p.add_argument("--baseline-ref", metavar="GITREF",
                   help="measure the baseline on this commit of the repository around the current folder "
                   "(a temporary git worktree, first on the baseline's PYTHONPATH)")
    p.add_argument("--baseline-python", metavar="PATH", help="the baseline's interpreter (another venv, another torch)")
    p.add_argument("--baseline-env", action="append", metavar="KEY=VALUE",
                   help="an environment variable for the baseline's workers (repeatable)")
    p.add_argument("--current-python", metavar="PATH", help="the current side's interpreter (default: this one)")
    p.add_argument("--current-env", action="append", metavar="KEY=VALUE",
                   help="an environment variable for the current side's workers (repeatable)")
    p.add_argument("--metric", action="append", choices=RUNNABLE, metavar="{" + ",".join(RUNNABLE) + "}",
                   help="what to compare: wall time in rounds of fresh workers (default), or CPU instructions counted "
                   "under Valgrind's Callgrind (CPU cases only; an exact count needs no rounds: one Valgrind worker "
                   "per side, one round). Give both (--metric time --metric instructions) to gate on both and see "
                   "the cases where they disagree")
    p.add_argument("--budget", metavar="DURATION", type=parse_duration,
                   help="time: stop adding rounds when the next would end after this long (e.g. 90s, 3m; "
                   "default: the profile's, 3m for default). Rounds stop earlier once every case is decided")
    p.add_argument("--output", "-o", metavar="DIR", help="write baseline.json and current.json here "
                   "(default: reports/<UTC time>_<host>_ab[_<label>]/)")
    p.add_argument("--force", action="store_true", help="write into an --output folder that already holds reports")
    p.add_argument("--profile-regressions", action="store_true",
                   help="after the decision, profile each case that regressed or stayed inconclusive once per side "
                   "under torch.profiler (in workers of its own), write Chrome traces next to the reports and show "
                   "the operators whose self time per call changed most (with --metric instructions: the functions "
                   "whose own instructions per call changed most, from the Callgrind data)")
    add_policy_arguments(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def main(args: argparse.Namespace) -> int:
    from benchbench.analysis.gate import load_policy
    from benchbench.commands.gate import write_summary
    from benchbench.errors import UserError
    from benchbench.model.report import write_atomic
    from benchbench.output.gate import ab_json, ab_markdown, ab_sides_text, ab_text
    from benchbench.output.profiles import profiles_html, profiles_markdown, profiles_text, with_profiles
    from benchbench.output.progress import Progress
    from benchbench.output.units import fmt_duration
    from benchbench.run.ab import SideSpec, parse_env, run_ab
    from benchbench.run.session import default_path

    policy = load_policy(args.rules, args.fail_on, args.alpha)  # bad policy: fail before measuring
    baseline = SideSpec(args.baseline_python, parse_env(args.baseline_env, "--baseline-env"), args.baseline_ref)
    current = SideSpec(args.current_python, parse_env(args.current_env, "--current-env"))
    output = args.output or default_path(f"ab_{args.label}" if args.label else "ab").with_suffix("")
    held = sorted(p.name for pattern in ("baseline*.json", "current*.json") for p in Path(output).glob(pattern))
    if held and not args.force:
        raise UserError(f"-o {output}: already holds {', '.join(held)}; choose another folder, or give --force "
                        "to replace them")
    err = sys.stderr

    def on_start(session, sides) -> None:
        if not args.quiet:
            measured = runnable(session.metric)
            if measured.rule == "tolerance":  # counted, not timed: one worker per side
                print(f"ab: {len(session.cases)} cases, {measured.title} in one worker per side "
                      f"({session.rounds} round{'s' if session.rounds != 1 else ''}; the workers take minutes to "
                      f"start); reports in {output}/", file=err)
            else:
                rounds = f"{args.rounds} rounds" if args.rounds else (
                    f"rounds added until decided (at most {session.profile.ab_max_rounds}, "
                    f"{fmt_duration(args.budget or session.profile.ab_budget_s)})")
                print(f"ab: {len(session.cases)} cases; each round a fresh process pair, both sides alive and "
                      f"taking turns block by block; {rounds} (profile {session.profile.name}); reports in "
                      f"{output}/", file=err)
            print(ab_sides_text(sides), file=err)
            print(file=err)

    result = run_ab(args.suite, suite_paths=args.suite_path, backends=args.backend, profile=args.profile,
                    rounds=args.rounds, pattern=args.filter, timeout=args.timeout, seed=args.seed,
                    baseline=baseline, current=current, policy=policy, output=output, label=args.label,
                    progress=Progress(quiet=args.quiet), command=["benchbench", *sys.argv[1:]], on_start=on_start,
                    metrics=args.metric or ["time"], budget=args.budget,
                    profile_regressions=args.profile_regressions)
    profiles = [cp for part in result.parts for cp in part.profiles]
    if args.json:
        text = ab_json(result)
        print(with_profiles(text, profiles) if args.profile_regressions else text)
    else:
        print(ab_text(result))
        if profiles:
            print(profiles_text(profiles))
    for part in result.parts:
        for name, path in part.paths.items():
            print(f"{name} report: {path}", file=err)
    if profiles:
        page = write_atomic(Path(output) / "profiles.html", profiles_html(profiles, Path(output)))
        print(f"profiles: {page}", file=err)
    summary = ab_markdown(result) + ("\n" + profiles_markdown(profiles) if profiles else "")
    for path in write_summary(summary, args.summary):
        print(f"summary written to {path}", file=err)
    return result.exit_code
