"""`benchbench report REPORT [MORE ...] [--baseline BASE] --html OUT`: one self-contained HTML page.

Without --html the same reports print as tables (`--format table`) or Markdown (`--format markdown`).
Inputs are anything `compare` reads, and earlier pages (their embedded reports). Several reports are
compared against the first; with --baseline every report is compared against BASE, and with one
report the gate decides on it too (the page shows the verdict; the exit code stays 0: `gate` is the
command whose exit code means pass or fail).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("reports", nargs="+", metavar="REPORT",
                   help="benchbench reports, pytest-benchmark JSON files or earlier benchbench pages")
    p.add_argument("--html", metavar="PATH", help="write one self-contained HTML page here")
    p.add_argument("--format", "-f", default="table", choices=("table", "markdown"),
                   help="without --html: print tables (default) or Markdown")
    p.add_argument("--baseline", "-b", metavar="BASE", help="compare every report against this one (and gate one)")
    p.add_argument("--title", help="the page's title")
    p.add_argument("--fail-on", metavar="median:PCT", help="the gate's threshold, e.g. median:5%% (with --baseline)")
    p.add_argument("--alpha", help="significance level: the interval is at 1 - ALPHA (t over rounds; Mann-Whitney with one round per side) (default: 0.05)")
    p.add_argument("--rules", metavar="TOML", help="the gate's per-benchmark rules file (with --baseline)")


def _names(paths: list[str], counts: list[int]) -> list[str]:
    names = []
    for path, n in zip(paths, counts, strict=True):
        stem = Path(path).stem
        names += [stem] if n == 1 else [f"{stem}#{i + 1}" for i in range(n)]
    return names


def main(args: argparse.Namespace) -> int:
    from benchbench.analysis.compare import compare, report_names
    from benchbench.analysis.gate import decide, load_policy
    from benchbench.errors import UserError
    from benchbench.model.formats import load_reports
    from benchbench.model.report import check_not_input, write_atomic

    policy = load_policy(args.rules, args.fail_on, args.alpha)
    paths = ([args.baseline] if args.baseline else []) + list(args.reports)
    check_not_input(args.html, [*paths, args.rules], "--html")
    loaded = [load_reports(p) for p in paths]
    reports = [r for group in loaded for r in group]
    names = report_names(reports, _names(paths, [len(g) for g in loaded]))
    comparison, gate_result, notes = None, None, []
    base_keys = {r.key for r in reports[0].results}
    shared = [i for i in range(1, len(reports)) if base_keys & {r.key for r in reports[i].results}]
    for i in range(1, len(reports)):
        if i not in shared:
            notes.append(f"{names[i]} has no case in common with {names[0]}: not compared.")
    if args.baseline and not shared:
        raise UserError(f"no report has a case in common with the baseline {names[0]} (cases match on suite, "
                        "benchmark, params, backend, dtype and mode)")
    if shared:
        comparison = compare([reports[0]] + [reports[i] for i in shared], [names[0]] + [names[i] for i in shared],
                             policy.criteria, threshold_for=policy.threshold_for, settings_for=policy.metric_settings)
    if args.baseline and len(shared) == 1:
        gate_result = decide(comparison, policy)
    elif args.baseline:
        notes.append(f"The gate judges one report at a time: {len(shared)} reports are compared with the baseline, "
                     "none is gated.")
    if args.html:
        from benchbench.output.report_html import report_page
        from benchbench.run.registry import builtin_modules

        suites = builtin_modules(sorted({r.key.suite for rep in reports for r in rep.results}))
        text = report_page(reports, names, comparison, gate_result, notes, args.title, suites)
        write_atomic(args.html, text)
        print(f"page written to {args.html} ({len(text.encode()) / 1024:.0f} KiB)", file=sys.stderr)
        return 0
    from benchbench.output.comparison import comparison_text
    from benchbench.output.gate import markdown_summary, terminal_text
    from benchbench.output.tables import results_table

    fmt = "github" if args.format == "markdown" else "simple"
    out = []
    for name, rep in zip(names, reports, strict=True):
        out += [f"## {name}" if fmt == "github" else f"== {name} ==", "", results_table(rep, fmt), ""]
    out += notes
    if gate_result is not None:
        out.append(markdown_summary(gate_result) if fmt == "github" else terminal_text(gate_result))
    elif comparison is not None:
        out.append(comparison_text(comparison, fmt))
    print("\n".join(out).rstrip())
    return 0
