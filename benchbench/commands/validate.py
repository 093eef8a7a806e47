"""`benchbench validate`: timer resolution, sync cost, and benchbench vs torch.utils.benchmark."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", action="append", metavar="NAME", help="backend(s) to check (default: every usable)")
    p.add_argument("--profile", default="quick", choices=("quick", "default", "full"),
                   help="benchbench's budget for each reference op")
    p.add_argument("--rounds", type=int, default=11,
                   help="interleaved rounds per op; the ratio is the median of the rounds' ratios (default 11)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchbench.commands.run import select_backends
    from benchbench.errors import UserError
    from benchbench.output.units import fmt_time
    from benchbench.validate import TOLERANCE, validate

    if args.rounds < 1:
        raise UserError("--rounds must be at least 1")
    _, backends = select_backends(args.backend)
    tty = sys.stderr.isatty() and not args.json

    def progress(msg: str) -> None:
        if tty:
            sys.stderr.write(f"\r{msg[:100]:<100}")
            sys.stderr.flush()

    result = validate(backends, args.profile, args.rounds, on_progress=progress)
    if tty:
        sys.stderr.write("\r" + " " * 100 + "\r")
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    clock = result["clock"]
    print(f"perf_counter: declared resolution {fmt_time(clock['declared_s'])}, "
          f"smallest observed step {fmt_time(clock['observed_step_s'])}")
    print(tabulate([[b["backend"], b["timing_method"], fmt_time(b["timer_resolution_s"]), fmt_time(b["sync_cost_s"])]
                    for b in result["backends"]], headers=["backend", "timing", "timer resolution", "sync cost"]))
    print()
    rows = [[op["backend"], op["op"], fmt_time(op["benchbench_median_s"]), fmt_time(op["torch_median_s"]),
             f"{op['ratio']:.3f}", "yes" if op["agrees"] else "NO"] for op in result["ops"]]
    print(tabulate(rows, headers=["backend", "reference op", "benchbench", "torch.utils.benchmark", "ratio",
                                  f"within {TOLERANCE:.0%}"], disable_numparse=True))
    if not result["all_agree"]:
        print("\nsome medians disagree: the machine may be busy (run again) or the op is too short to time well")
    return 0
