"""The page's table of latency percentiles: per case timed one call per sample, each report's p50, p90,
p99 and max of all its calls (pooled over rounds), how many calls they rest on, and tokens/s where the
case counts tokens. A percentile with too few calls behind it shows as "-" with the count it needs."""

from __future__ import annotations

from collections.abc import Sequence

from benchbench.metrics import latency
from benchbench.model.percentiles import percentiles
from benchbench.model.report import CaseKey, Report
from benchbench.output import html
from benchbench.output.units import fmt_rate, fmt_time


def percentile_rows(reports: Sequence[Report], names: Sequence[str]) -> list[dict[str, str]]:
    """One row per case and report that holds per-call samples, cases in their usual order."""
    keys = sorted({r.key for rep in reports for r in rep.results if latency.per_call_rounds(r)},
                  key=CaseKey.sort_key)
    rows = []
    for key in keys:
        for name, rep in zip(names, reports, strict=True):
            res = rep.result(key)
            rounds = latency.per_call_rounds(res)
            if not rounds:
                continue
            ps = percentiles([x for r in rounds for x in r])
            row = {"case": key.label, "report": name, "calls": f"{ps['max'].calls} in {len(rounds)} rounds"}
            for p in ("p50", "p90", "p99", "max"):
                row[p] = fmt_time(ps[p].value) if ps[p].supported else f"- (needs {ps[p].needs} calls)"
            tokens = latency.tokens_value(res)
            row["tokens/s"] = fmt_rate(tokens) if tokens is not None else ""
            rows.append(row)
    return rows


def percentile_table(reports: Sequence[Report], names: Sequence[str]) -> str:
    """The section's HTML; empty when no case of these reports was timed one call per sample."""
    rows = percentile_rows(reports, names)
    if not rows:
        return ""
    if not any(r["tokens/s"] for r in rows):
        rows = [{k: v for k, v in r.items() if k != "tokens/s"} for r in rows]
    return ('<p class="note">Cases timed one call per sample: percentiles of all their calls, pooled over rounds. '
            "A percentile needs a call beyond it (p90: 10 calls, p99: 100); tokens/s is tokens made over the "
            "total time of all calls.</p>" + html.table(rows, numeric=("calls", "p50", "p90", "p99", "max",
                                                                         "tokens/s")))
