"""`benchbench export REPORT --format csv|markdown|pytest-benchmark|benchbench`: convert a report.

REPORT may be a benchbench report or a pytest-benchmark JSON file, so `--format benchbench` turns
pytest-benchmark results into a benchbench report (for notebooks, ...).
"""

from __future__ import annotations

import argparse
import sys

FORMATS = ("csv", "markdown", "pytest-benchmark", "benchbench")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("report", metavar="REPORT", help="a benchbench report or pytest-benchmark JSON file")
    p.add_argument("--format", "-f", required=True, choices=FORMATS,
                   help="pytest-benchmark: JSON that `pytest-benchmark compare` reads (ok results only)")
    p.add_argument("--output", "-o", metavar="PATH", help="write to this file instead of stdout")


def main(args: argparse.Namespace) -> int:
    from benchbench.errors import UserError
    from benchbench.model.formats import load_any
    from benchbench.model.pytest_benchmark import pytest_benchmark_json
    from benchbench.model.report import check_not_input, dumps, write_atomic
    from benchbench.output.tables import results_csv, results_table

    check_not_input(args.output, [args.report])
    report = load_any(args.report)
    if args.format == "pytest-benchmark":
        text = pytest_benchmark_json(report)
        skipped = [r for r in report.results if not r.ok]
        if not any(r.ok for r in report.results):
            raise UserError(f"{args.report}: no ok results to export (pytest-benchmark files hold timings only)")
        if skipped:
            print(f"note: {len(skipped)} result(s) that are not ok were left out (pytest-benchmark files have no place "
                  "for failed or skipped cases)", file=sys.stderr)
    else:
        text = {"csv": results_csv, "markdown": lambda r: results_table(r, "github", max_note=200),
                "benchbench": dumps}[args.format](report)
    if not text.endswith("\n"):
        text += "\n"
    if args.output:
        write_atomic(args.output, text)
        print(f"{args.format} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
