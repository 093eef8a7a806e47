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
    p.add_argument("--alpha", default="0.05", help="significance level: the interval is at 1 - ALPHA (t over rounds; Mann-Whitney with one round per side) (default: 0.05)")
    p.add_argument("--instructions-tolerance", default="0.5%", metavar="PCT",
                   help="instruction counts (run --metric instructions) within this are 'same' (default: 0.5%%)")
    p.add_argument("--instructions", nargs=2, metavar=("BASE_COUNTS", "OTHER_COUNTS"),
                   help="instruction-count reports of the same cases (run/ab --metric instructions): compare them "
                   "too and name the cases where time and instruction counts disagree (with two time reports)")
    p.add_argument("--price-per-hour", metavar="NAME=PRICE,...",
                   help="hourly price of each report's machine (NAME: the report's name as compare shows it, its "
                   "label or host name; or bare prices in the reports' order): adds cost per million items and "
                   "items per joule per case (docs/energy.md)")
    p.add_argument("--output", "-o", metavar="PATH", help="write to this file instead of stdout")


def main(args: argparse.Namespace) -> int:
    from benchbench.analysis.compare import Criteria, compare
    from benchbench.analysis.gate import parse_alpha, parse_threshold, parse_tolerance
    from benchbench.errors import UserError
    from benchbench.model.formats import load_any
    from benchbench.model.report import check_not_input, write_atomic
    from benchbench.output.comparison import comparison_csv, comparison_json, comparison_text

    if len(args.reports) < 2:
        raise UserError("compare needs at least two reports: BASE OTHER [MORE ...]")
    check_not_input(args.output, [*args.reports, *(args.instructions or [])])
    criteria = Criteria(threshold=parse_threshold(args.threshold, "--threshold"), alpha=parse_alpha(args.alpha),
                        instructions_tolerance=parse_tolerance(args.instructions_tolerance, "--instructions-tolerance"))
    reports = [load_any(path) for path in args.reports]
    comp = compare(reports, [Path(p).stem for p in args.reports], criteria)
    render = {"table": lambda c: comparison_text(c, "simple"), "markdown": lambda c: comparison_text(c, "github"),
              "csv": comparison_csv, "json": comparison_json}[args.format]
    if args.price_per_hour and args.format == "csv":
        raise UserError("--price-per-hour: choose --format table, markdown or json (csv holds one comparison)")
    if args.instructions:
        text = _with_counts(args, comp, criteria)
    else:
        text = render(comp)
    if args.price_per_hour:
        text = _with_cost(args, comp, reports, text)
    if args.output:
        write_atomic(args.output, text if text.endswith("\n") else text + "\n")
        print(f"comparison written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def _with_cost(args: argparse.Namespace, comp, reports, text: str) -> str:
    """The comparison followed by the cost table (or, in JSON, with a "cost" entry)."""
    import json

    from benchbench.analysis.cost import comparison_costs, parse_prices
    from benchbench.output.cost import cost_doc, cost_text

    names = [comp.base_name, *(p.name for p in comp.pairs)]
    table = comparison_costs(comp, parse_prices(args.price_per_hour, names, reports))
    if args.format == "json":
        return json.dumps({**json.loads(text), "cost": cost_doc(table)}, indent=1, default=str)
    return "\n".join([text, "", cost_text(table, "github" if args.format == "markdown" else "simple")])


def _with_counts(args: argparse.Namespace, comp, criteria) -> str:
    """The time comparison, the instruction counts' comparison, and where the two disagree."""
    import json

    from benchbench.analysis.compare import compare
    from benchbench.errors import UserError
    from benchbench.metrics.instructions import disagreements
    from benchbench.model.formats import load_any
    from benchbench.output.comparison import comparison_doc, comparison_text, disagreement_lines

    if len(args.reports) != 2:
        raise UserError("--instructions compares with exactly two time reports: BASE OTHER")
    if args.format == "csv":
        raise UserError("--instructions: choose --format table, markdown or json (csv holds one comparison)")
    counts = compare([load_any(p) for p in args.instructions], [Path(p).stem for p in args.instructions], criteria)
    found = disagreements(comp.pairs[0].rows, counts.pairs[0].rows)
    if args.format == "json":
        return json.dumps({"time": comparison_doc(comp), "instructions": comparison_doc(counts),
                           "disagreements": [d.to_dict() for d in found]}, indent=1, default=str)
    fmt = "github" if args.format == "markdown" else "simple"
    lines = disagreement_lines(found)
    out = [comparison_text(comp, fmt), "", comparison_text(counts, fmt), ""]
    if args.format == "markdown":
        out += ["**Time and instruction counts disagree**", "", *(f"- {line}" for line in lines)] if lines else []
    else:
        out += ["time and instruction counts disagree:", *(f"  {line}" for line in lines)] if lines else []
    if not lines:
        out.append("time and instruction counts agree wherever both decided")
    return "\n".join(out)
