"""`benchbench bisect GOOD BAD --suite ... --filter ...`: the first commit of GOOD..BAD that is slower than GOOD.

Each step is an `ab` of a candidate commit against GOOD (benchbench/run/bisect.py). Exit codes: 0 no
regression between GOOD and BAD, 1 first bad commit found, 3 cannot tell (a step stayed inconclusive,
or only skipped commits are left), 2 bad input, 130 interrupted. This module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    from benchbench.commands.ab import parse_duration
    from benchbench.commands.gate import add_policy_arguments
    from benchbench.commands.run import add_case_arguments

    p.add_argument("good", metavar="GOOD", help="a commit that is fast (an ancestor of BAD)")
    p.add_argument("bad", metavar="BAD", help="a commit that is slow")
    add_case_arguments(p, "each step: a fixed number of rounds (process pairs) instead of rounds added until decided")
    p.add_argument("--suite-path", action="append", metavar="FILE_OR_DIR",
                   help="load your own suites from here (a file of the repository is loaded from each commit's tree)")
    p.add_argument("--budget", metavar="DURATION", type=parse_duration,
                   help="each step's time budget, as for `ab` (default: the profile's)")
    p.add_argument("--retries", type=int, default=1, metavar="N",
                   help="run an inconclusive step again, with twice the rounds each time, up to N times (default: 1); "
                   "still inconclusive: bisect says so and stops")
    p.add_argument("--build", metavar="COMMAND",
                   help="a shell command run in each commit's tree before it is measured (e.g. 'make'); a commit "
                   "whose build fails is skipped")
    p.add_argument("--all-parents", action="store_true",
                   help="search every commit of GOOD..BAD, not only the first-parent history (merged branches' commits too)")
    p.add_argument("--output", "-o", metavar="DIR",
                   help="keep each step's baseline.json and current.json in DIR/<commit>/ (default: not kept)")
    add_policy_arguments(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def main(args: argparse.Namespace) -> int:
    from benchbench.analysis.gate import load_policy
    from benchbench.commands.gate import write_summary
    from benchbench.output.bisect import bisect_json, bisect_markdown, bisect_text, step_line
    from benchbench.run.bisect import bisect

    policy = load_policy(args.rules, args.fail_on, args.alpha)  # bad policy: fail before measuring
    err = sys.stderr

    def on_start(commit, attempt) -> None:
        if not args.quiet:
            again = f" again (attempt {attempt + 1}, more rounds)" if attempt else ""
            print(f"bisect: measuring {commit.short} {commit.subject[:60]} against GOOD{again}", file=err)

    def on_step(record) -> None:
        if not args.quiet:
            print(step_line(record), file=err)

    result = bisect(args.good, args.bad, suites=args.suite, suite_paths=args.suite_path, backends=args.backend,
                    profile=args.profile, rounds=args.rounds, pattern=args.filter, timeout=args.timeout,
                    seed=args.seed, policy=policy, budget=args.budget, output=args.output, build_command=args.build,
                    retries=args.retries, first_parent=not args.all_parents, on_step=on_step, on_start=on_start)
    print(bisect_json(result) if args.json else bisect_text(result), end="")
    for path in write_summary(bisect_markdown(result), args.summary):
        print(f"summary written to {path}", file=err)
    return result.exit_code
