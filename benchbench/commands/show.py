"""`benchbench show REPORT`: print a saved report's results (table, Markdown, CSV or JSON).

REPORT is anything `compare` reads: a benchbench report or a pytest-benchmark JSON file.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("report", help="a benchbench report or pytest-benchmark JSON file")
    p.add_argument("--format", default="table", choices=("table", "markdown", "csv", "json"))


def main(args: argparse.Namespace) -> int:
    from benchbench.model.formats import load_any
    from benchbench.model.report import dumps
    from benchbench.output.tables import backends_table, results_csv, results_table

    report = load_any(args.report)
    if args.format == "csv":
        print(results_csv(report), end="")
    elif args.format == "json":
        print(dumps(report))
    elif args.format == "markdown":
        print(results_table(report, fmt="github"))
    else:
        head = f"run {report.run_id}" + (f" ({report.label})" if report.label else "")
        head += f", {report.created_at}, profile {report.profile}" + (", PARTIAL" if report.partial else "")
        print(head)
        print(backends_table(report.backends))
        print()
        print(results_table(report))
    return 0
