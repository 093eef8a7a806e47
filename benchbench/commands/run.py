"""`benchbench run` (and the default command, `run --overview`): measure and write a report."""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

from benchbench.errors import UserError

PROFILE_NAMES = ("quick", "default", "full")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", action="append", metavar="NAME", help="run this suite (repeatable; default: all)")
    p.add_argument("--backend", action="append", metavar="NAME",
                   help="cpu, cuda, mps or xpu (repeatable; default: every usable one)")
    p.add_argument("--filter", metavar="REGEX", help="only cases whose label matches, e.g. 'matmul.*float32'")
    p.add_argument("--profile", default="default", choices=PROFILE_NAMES, help="time budget per case")
    p.add_argument("--quick", dest="profile", action="store_const", const="quick", help="same as --profile quick")
    p.add_argument("--full", dest="profile", action="store_const", const="full", help="same as --profile full")
    p.add_argument("--overview", action="store_true",
                   help="a few representative cases of every suite, quick budgets (what plain `benchbench` runs)")
    p.add_argument("--label", help="a name for this run (machine, branch, ...), stored in the report")
    p.add_argument("--output", "-o", metavar="PATH", help="report file (default: reports/<time>_<host>_<label>.json)")
    p.add_argument("--suite-path", action="append", metavar="FILE_OR_DIR", help="load your own suites from here")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="per-case timeout (default: the profile's)")
    p.add_argument("--metric", choices=("time", "instructions"), default="time",
                   help="what to measure per call: wall time (default), or CPU instructions counted under "
                        "Valgrind's Callgrind (CPU cases only; needs valgrind installed)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout (progress stays on stderr)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def default_path(label: str | None, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())[:40] or "host"
    name = f"{stamp}_{host}" + (f"_{''.join(c if c.isalnum() or c in '-._' else '-' for c in label)}" if label else "")
    return Path("reports") / f"{name}.json"


def select_backends(requested: list[str] | None):
    from benchbench import backends as bk

    if requested:
        found = bk.discover(list(dict.fromkeys(requested)))
        unusable = [b for b in found if not b.available]
        if unusable:
            raise UserError("; ".join(f"backend {b.name} is not usable here: {b.reason}" for b in unusable))
        return found, found
    everything = bk.discover()
    return everything, [b for b in everything if b.available]


def main(args: argparse.Namespace) -> int:
    from benchbench import registry
    from benchbench._version import __version__
    from benchbench.canary import measure_canary
    from benchbench.environment import Context, collect
    from benchbench.measure import budget_for
    from benchbench.progress import Progress
    from benchbench.render import backends_table, results_table, status_counts
    from benchbench.report import Report, dumps, save
    from benchbench.runner import Runner, plan

    if args.timeout is not None and args.timeout <= 0:
        raise UserError("--timeout must be positive")
    if args.metric == "instructions":  # before anything slow: no Valgrind, no run
        from benchbench import callgrind

        valgrind = callgrind.require()
    names = args.suite
    if args.suite_path and not names:  # `run --suite-path mine.py` means: run mine
        names = list(dict.fromkeys(s.name for s in registry.load_paths(args.suite_path)))
    suites = registry.discover(args.suite_path, names)
    all_backends, backends = select_backends(args.backend)
    profile = "quick" if args.overview and args.profile == "default" else args.profile
    budget = budget_for(profile)
    if args.timeout:
        from dataclasses import replace

        budget = replace(budget, timeout_s=args.timeout)
    cases = plan(suites, backends, profile, overview=args.overview, pattern=args.filter)
    if not cases:
        raise UserError("no cases to run: check --suite, --filter and --backend (`benchbench list` shows them)")
    # instruction counts: CPU cases only, one worker under Callgrind serves them all (benchbench/callgrind.py)
    runner_options: dict = {}
    if args.metric == "instructions":
        cases = callgrind.plan(cases)
        dump_dir = Path(tempfile.mkdtemp(prefix="benchbench-callgrind-"))
        runner_options = callgrind.runner_options(dump_dir, valgrind)

    env = collect(all_backends, Context(suites=tuple(s.name for s in suites),
                                        backends=tuple(args.backend) if args.backend else None))
    report = Report(run_id=uuid.uuid4().hex[:12], created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    label=args.label, command=["benchbench", *sys.argv[1:]], profile=profile,
                    benchbench_version=__version__, environment=env, backends=[b.info() for b in all_backends])
    path = Path(args.output) if args.output else default_path(args.label)
    err = sys.stderr
    if not args.quiet:
        print(backends_table(report.backends), file=err)
        for check in env.get("checks", []):
            if check.get("verdict") in ("warn", "fail"):
                print(f"{check['verdict'].upper()}: {check.get('title', check['id'])}: {check.get('advice', '')}",
                      file=err)
        what = "overview" if args.overview else f"profile {profile}"
        print(f"\nrunning {len(cases)} cases ({what}) on {', '.join(b.name for b in backends)}; report: {path}\n",
              file=err)
        if runner_options:
            print(f"counting instructions under Valgrind {valgrind.version}: the worker takes minutes to start "
                  "(importing torch under Callgrind), then each case runs many times slower than usual\n", file=err)

    by_suite = {s.name: s for s in suites}

    def derive(results):
        groups = defaultdict(list)
        for r in results:
            groups[r.key.suite].append(r)
        for name, rs in groups.items():
            hook = getattr(by_suite[name].module, "derive", None) if name in by_suite else None
            if hook:
                hook(rs)

    # the canary tells a slower machine apart from slower code (benchbench/canary.py)
    env["canary"] = {"start": measure_canary()}
    runner = Runner(report, path, budget, profile, progress=Progress(quiet=args.quiet), **runner_options)
    try:
        runner.run(cases, derive=derive)
    finally:
        if runner_options:
            shutil.rmtree(dump_dir, ignore_errors=True)
    env["canary"]["end"] = measure_canary()
    save(report, path)

    counts = status_counts(report)
    if args.json:
        print(dumps(report))
    else:
        print(results_table(report))
        print()
        print(f"{len(report.results)} cases: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        print(f"report: {path}")
        if args.overview:
            print("more: `benchbench list` shows every suite; `benchbench run --suite NAME` runs one in full; "
                  "`benchbench env` checks the setup; `benchbench compare A.json B.json` compares runs")
    return 4 if counts.get("failed") or counts.get("timeout") else 0
