"""`benchbench env`: what this machine is, what is wrong with it for benchmarking, and what to do.

Prints the facts (grouped), the comparability fingerprint and every check grouped by verdict (fail,
warn, info, pass), each with the evidence it read and one line of advice. `--json` prints the same
object every report embeds as "environment": {"fingerprint", "facts", "checks"}; check ids are stable.

Exit codes:
  0  printed; no check failed, or some failed but --strict was not given
  1  --strict and at least one check's verdict is "fail"
  2  usage error (unknown --backend or --suite)
"""

from __future__ import annotations

import argparse
import json

from benchbench.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output: {fingerprint, facts, checks}")
    p.add_argument("--strict", action="store_true", help="exit 1 when any check fails (for CI)")
    p.add_argument("--checks-only", action="store_true", help="human output without the facts and fingerprint")
    p.add_argument("--backend", action="append", metavar="NAME",
                   help="judge for runs on this backend only (repeatable; default: any backend)")
    p.add_argument("--suite", action="append", metavar="NAME",
                   help="judge for runs of this suite only (repeatable; default: any suite)")


def main(args: argparse.Namespace) -> int:
    from benchbench.environment import Context, collect
    from benchbench.measure import backends as bk
    from benchbench.output.environment import checks_text, environment_text, summary_line

    if args.backend:
        unknown = [b for b in args.backend if b not in bk.KNOWN]
        if unknown:
            raise UserError(f"unknown backend {', '.join(map(repr, unknown))} (known: {', '.join(bk.KNOWN)})")
    if args.suite:
        from benchbench.run import registry

        registry.discover(None, list(dict.fromkeys(args.suite)))  # raises UserError for an unknown name
    context = Context(benchmark=True,
                      suites=tuple(dict.fromkeys(args.suite)) if args.suite else None,
                      backends=tuple(dict.fromkeys(args.backend)) if args.backend else None)
    env = collect(bk.discover(), context)
    checks = env.get("checks") or []
    if args.json:
        print(json.dumps(env, indent=1, default=str))
    elif args.checks_only:
        print(checks_text(checks) + f"\n\nchecks: {summary_line(checks)}")
    else:
        print(environment_text(env))
    failed = any(c.get("verdict") == "fail" for c in checks)
    from benchbench.errors import ExitCode

    return int(ExitCode.REGRESSION if args.strict and failed else ExitCode.OK)
