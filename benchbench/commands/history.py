"""`benchbench history DIR`: every run in a folder, per benchmark and machine, with change points."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="DIR",
                   help="a folder of benchbench reports (*.json) and/or the history.jsonl that `run --history` writes")
    p.add_argument("--format", "-f", default="table", choices=("table", "markdown", "json"),
                   help="output format (default: table)")
    p.add_argument("--html", metavar="PATH", help="also write a self-contained HTML page with the trends")
    p.add_argument("--benchmark", action="append", metavar="GLOB",
                   help="only these benchmarks, e.g. 'tensor_ops/matmul*' (matched against suite/name and the "
                        "full label; repeatable)")
    p.add_argument("--max-pvalue", type=float, metavar="P",
                   help="significance threshold of a change point: the p-value of the scan over all splits of a "
                        "segment (default: the calibrated 0.005)")
    p.add_argument("--min-runs", type=int, metavar="N", help="fewest runs on each level of a step (default: 4)")
    p.add_argument("--output", "-o", metavar="PATH", help="write the text to this file instead of stdout")


def main(args: argparse.Namespace) -> int:
    from benchbench.analysis.history import history
    from benchbench.errors import UserError
    from benchbench.model.report import check_not_input, write_atomic
    from benchbench.output.history import history_html, history_json, history_text

    if args.max_pvalue is not None and not 0 < args.max_pvalue < 1:
        raise UserError("--max-pvalue must be between 0 and 1")
    if args.min_runs is not None and args.min_runs < 2:
        raise UserError("--min-runs must be at least 2")
    folder = Path(args.folder)
    inputs = [*folder.glob("*.json"), *folder.glob("*.jsonl")] if folder.is_dir() else []
    check_not_input(args.html, inputs, "--html")
    check_not_input(args.output, inputs)
    result = history(args.folder, args.benchmark, max_pvalue=args.max_pvalue, min_size=args.min_runs)
    if args.html:
        write_atomic(args.html, history_html(result))
        print(f"wrote {args.html}", file=sys.stderr)
    if args.format == "json":
        text = history_json(result)
    else:
        text = history_text(result, "github" if args.format == "markdown" else "simple")
    if args.output:
        write_atomic(args.output, text)
    else:
        print(text, end="")
    return 0
