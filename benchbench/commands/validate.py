"""`benchbench validate`: timer resolution, sync cost, and both engines against the plain loop."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", action="append", metavar="NAME", help="backend(s) to check (default: every usable)")
    p.add_argument("--profile", default="quick", choices=("quick", "default", "full"),
                   help="benchbench's budget for each reference op (default quick)")
    p.add_argument("--processes", type=int, default=5,
                   help="fresh worker processes, one after another; the interval is across them (default 5)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds per process; each times every op three ways, back to back (default 3)")
    p.add_argument("--ops", metavar="REGEX", help="only the reference ops whose name matches")
    p.add_argument("--seed", type=int, help="seed of the shuffled orders (default: random, recorded)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace) -> int:
    import re

    from benchbench.errors import UserError
    from benchbench.measure.validate import reference_ops, validate
    from benchbench.output.validate import validate_text
    from benchbench.run.session import select_backends

    if args.rounds < 1 or args.processes < 1:
        raise UserError("--rounds and --processes must be at least 1")
    if args.ops:
        try:
            re.compile(args.ops)
        except re.error as exc:
            raise UserError(f"--ops: invalid regular expression: {exc}") from None
    _, backends = select_backends(args.backend)
    if args.ops and not any(re.search(args.ops, op) for b in backends for op in reference_ops(b)):
        raise UserError(f"no reference op matches --ops {args.ops!r}")
    tty = sys.stderr.isatty() and not args.json

    def progress(msg: str) -> None:
        if tty:
            sys.stderr.write(f"\r{msg[:100]:<100}")
            sys.stderr.flush()

    result = validate(backends, args.profile, processes=args.processes, rounds=args.rounds, ops=args.ops,
                      seed=args.seed, on_progress=progress)
    if tty:
        sys.stderr.write("\r" + " " * 100 + "\r")
    if not result["ops"]:
        raise UserError("validation failed: " + "; ".join(result["errors"]))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(validate_text(result))
    return 0
