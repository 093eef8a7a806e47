"""`benchbench run` (and the default command, `run --overview`): measure and write a report.

The command parses arguments, prints what the output layer makes of the data, and leaves the run
itself to `benchbench.run.session` (which a notebook can call directly).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchbench import kinds
from benchbench.errors import ExitCode, UserError
from benchbench.measure.engine import PROFILE_NAMES, PROFILES
from benchbench.metrics import RUNNABLE, runnable
from benchbench.run.session import default_path, select_backends  # noqa: F401 - used by other commands


def add_case_arguments(p: argparse.ArgumentParser, rounds_help: str) -> None:
    """What to measure and how much: the options `run` and `ab` share."""
    p.add_argument("--suite", action="append", metavar="NAME", help="run this suite (repeatable; default: all)")
    p.add_argument("--backend", action="append", metavar="NAME",
                   help=f"{kinds.listed()} (repeatable; default: every usable one)")
    p.add_argument("--filter", metavar="REGEX", help="only cases whose label matches, e.g. 'matmul.*float32'")
    p.add_argument("--profile", default="default", choices=PROFILE_NAMES,
                   help="budget per case and number of rounds: "
                   + ", ".join(f"{n} {p.rounds} rounds" for n, p in PROFILES.items()))
    p.add_argument("--quick", dest="profile", action="store_const", const="quick", help="same as --profile quick")
    p.add_argument("--full", dest="profile", action="store_const", const="full", help="same as --profile full")
    p.add_argument("--rounds", type=int, metavar="N", help=rounds_help)
    p.add_argument("--seed", type=int, help="seed of the rounds' shuffled case orders (default: random, recorded)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="per-case timeout (default: the profile's)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_case_arguments(p, "measure every case in N rounds, each a fresh worker process (default: the profile's)")
    p.add_argument("--overview", action="store_true",
                   help="a few representative cases of every suite, quick budgets (what plain `benchbench` runs)")
    p.add_argument("--label", help="a name for this run (machine, branch, ...), stored in the report")
    p.add_argument("--output", "-o", metavar="PATH", help="report file (default: reports/<time>_<host>_<label>.json)")
    p.add_argument("--suite-path", action="append", metavar="FILE_OR_DIR", help="load your own suites from here")
    p.add_argument("--metric", choices=RUNNABLE, default="time",
                   help="what to measure per call: wall time (default), or CPU instructions counted under "
                        "Valgrind's Callgrind (CPU cases only; needs valgrind installed)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout (progress stays on stderr)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument("--history", metavar="DIR", help="also append the report to DIR/history.jsonl (see `history`)")
    # torchrun placement for the distributed suite; handed to the workers by distributed_env()
    p.add_argument("--nproc-per-node", type=int, metavar="N",
                   help="distributed suite: ranks per machine (default: 2 on the CPU, every visible GPU on CUDA)")
    p.add_argument("--nnodes", type=int, metavar="N", help="distributed suite: machines (each runs this command)")
    p.add_argument("--node-rank", type=int, metavar="K", help="distributed suite: this machine's rank, 0..nnodes-1")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="distributed suite: rendezvous of all machines")


def distributed_env(args: argparse.Namespace) -> dict[str, str]:
    """--nproc-per-node, --nnodes, --node-rank, --rdzv-endpoint as the environment variables the
    distributed suite reads in the worker (names: suites/distributed.py)."""
    nproc, nnodes, node_rank, endpoint = (getattr(args, a, None) for a in
                                          ("nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint"))
    if nproc is not None and nproc < 1:
        raise UserError("--nproc-per-node must be at least 1")
    if nnodes is not None and nnodes < 1:
        raise UserError("--nnodes must be at least 1")
    if node_rank is not None and not 0 <= node_rank < (nnodes or 1):
        raise UserError(f"--node-rank must be between 0 and --nnodes - 1 ({(nnodes or 1) - 1})")
    if (nnodes or 1) > 1 and not endpoint:
        raise UserError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT (the same on every machine)")
    values = {"BENCHBENCH_NPROC_PER_NODE": nproc, "BENCHBENCH_NNODES": nnodes, "BENCHBENCH_NODE_RANK": node_rank,
              "BENCHBENCH_RDZV_ENDPOINT": endpoint}
    return {name: str(v) for name, v in values.items() if v is not None}


def main(args: argparse.Namespace) -> int:
    from benchbench.model.report import check_writable, dumps
    from benchbench.output.progress import Progress
    from benchbench.output.tables import backends_table, results_table, status_counts
    from benchbench.run import session as sess
    from benchbench.run.runner import Side

    path = Path(args.output) if args.output else default_path(args.label)
    session = sess.prepare(args.suite, args.suite_path, args.backend, args.profile, args.rounds, args.filter,
                           args.overview, args.timeout, args.seed, worker_env=distributed_env(args),
                           metric=args.metric)
    check_writable(path)  # fail before measuring, not after
    if args.history:
        from benchbench.analysis.history import check_folder

        check_folder(args.history)
    report = sess.new_report(session, args.label, ["benchbench", *sys.argv[1:]])
    err = sys.stderr
    if not args.quiet:
        print(backends_table(report.backends), file=err)
        for check in report.environment.get("checks", []):
            if check.get("verdict") in ("warn", "fail"):
                print(f"{check['verdict'].upper()}: {check.get('title', check['id'])}: {check.get('advice', '')}",
                      file=err)
        what = "overview" if args.overview else f"profile {session.profile.name}"
        print(f"\nrunning {len(session.cases)} cases x {session.rounds} rounds ({what}) on "
              f"{', '.join(b.name for b in session.backends)}; report: {path}\n", file=err)
        note = runnable(session.metric).start_note
        if note:
            print(note + "\n", file=err)
    sess.measure(session, [sess.Target(Side(), report, path)], Progress(quiet=args.quiet))
    if args.history:  # one line per run in the folder `benchbench history DIR` reads
        from benchbench.analysis.history import append

        append(report, args.history)

    counts = status_counts(report)
    if args.json:
        print(dumps(report))
    else:
        print(results_table(report))
        for suite in session.suites:  # a suite's own summary lines (e.g. the dataloader recommendation)
            hook = getattr(suite.module, "notes", None)
            for line in hook([r for r in report.results if r.key.suite == suite.name]) if hook else []:
                print(line)
        print()
        print(f"{len(report.results)} cases: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        print(f"report: {path}")
        if args.overview:
            print("more: `benchbench list` shows every suite; `benchbench run --suite NAME` runs one in full; "
                  "`benchbench env` checks the setup; `benchbench compare A.json B.json` compares runs")
    return int(ExitCode.CASES_FAILED if counts.get("failed") or counts.get("timeout") else ExitCode.OK)
