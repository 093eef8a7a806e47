"""`benchbench compare BASE OTHER [MORE ...]`: per-case ratios with intervals, verdicts, geometric means."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMATS = ("table", "markdown", "csv", "json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("reports", nargs="+", metavar="REPORT",
                   help="benchbench reports or pytest-benchmark JSON files; the first is the base")
    p.add_argument("--format", "-f", default="table", choices=FORMATS, help="output format (default: table)")
    p.add_argument("--threshold", default="5%", metavar="PCT",
                   help="a change smaller than this is 'same' (default: 5%%)")
    p.add_argument("--alpha", default="0.05", help="significance level of the Mann-Whitney test (default: 0.05)")
    p.add_argument("--output", "-o", metavar="PATH", help="write to this file instead of stdout")


def main(args: argparse.Namespace) -> int:
    from benchbench.compare import Criteria, compare
    from benchbench.errors import UserError
    from benchbench.formats import load_any
    from benchbench.gate import parse_alpha, parse_threshold
    from benchbench.output.comparison import comparison_csv, comparison_json, comparison_text
    from benchbench.report import write_atomic

    if len(args.reports) < 2:
        raise UserError("compare needs at least two reports: BASE OTHER [MORE ...]")
    criteria = Criteria(threshold=parse_threshold(args.threshold, "--threshold"), alpha=parse_alpha(args.alpha))
    reports = [load_any(path) for path in args.reports]
    comp = compare(reports, [Path(p).stem for p in args.reports], criteria)
    render = {"table": lambda c: comparison_text(c, "simple"), "markdown": lambda c: comparison_text(c, "github"),
              "csv": comparison_csv, "json": comparison_json}[args.format]
    text = render(comp)
    if args.output:
        write_atomic(args.output, text if text.endswith("\n") else text + "\n")
        print(f"comparison written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0
