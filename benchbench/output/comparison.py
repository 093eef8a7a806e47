"""Comparisons as tables (console, Markdown, CSV) and as a JSON document. Takes data, returns strings."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from tabulate import tabulate

from benchbench import metrics
from benchbench.analysis import canary
from benchbench.analysis.compare import (
    VERDICT_HELP,
    Change,
    Comparison,
    Pair,
    Row,
    geomeans,
    summary_of,
    verdict_counts,
)
from benchbench.metrics.base import ROW_VERDICTS, MetricRow
from benchbench.metrics.instructions import Disagreement
from benchbench.model.report import CaseKey, Result
from benchbench.output.safe_text import csv_row
from benchbench.output.units import fmt_per_call, fmt_speed, fmt_value


def fmt_median(result: Result | None) -> str:
    s = summary_of(result)
    if s is None:
        return result.status if result is not None else "-"
    return f"{fmt_per_call(s.median, result.timing_method)} ±{100 * s.rel_noise:.1f}%"


def fmt_ratio(change: Change | None) -> str:
    if change is None:
        return "-"
    return f"{change.ratio:.3f} [{change.ci_low:.3f}, {change.ci_high:.3f}]"


def fmt_mde(mde: float | None) -> str:
    """A minimum detectable slowdown: 0.123 -> "12.3%"."""
    if mde is None:
        return "-"
    if not math.isfinite(mde):
        return "inf"
    return f"{100 * mde:.1f}%" if mde < 1 else f"{mde + 1:.1f}x"


def machine_text(machine: list[tuple[str, float]], base_name: str, name: str) -> str:
    """The canary's reading of a pair, for a case whose verdict it voids."""
    parts = []
    for where, r in machine:
        if where == "between":
            how = f"{100 * (r - 1):.0f}% slower" if r > 1 else f"{100 * (1 / r - 1):.0f}% faster"
            parts.append(f"the machine itself was {how} in {name} than in {base_name}")
        else:
            parts.append(f"the machine's own speed moved by {100 * (r - 1):.0f}% during {base_name if where == 'base' else name}")
    return ("; ".join(parts) + " (canary: a fixed Python loop, median over rounds): the timings cannot tell the "
            "code from the machine; measure both sides in one job (`benchbench ab`) or on a quiet machine")


def fmt_pct(change: Change | None) -> str:
    if change is None:
        return "-"

    def pct(r: float) -> str:
        return f"{100 * (r - 1):+.1f}%"

    return f"{pct(change.ratio)} [{pct(change.ci_low)}, {pct(change.ci_high)}]"


def row_note(row: Row) -> str:
    parts = list(row.reasons)
    if row.env:
        parts.append("environment: " + "; ".join(row.env))
        if row.statistical:
            parts.append(f"numbers say {row.statistical}")
    for side, res in (("now", row.other), ("before", row.base)):
        if res is not None and not res.ok and res.reason:
            parts.append(f"{res.status} {side}: {res.reason}")
    parts += row.flags
    if row.machine:
        parts.append("machine speed changed")
    return "; ".join(parts)


def case_name(key: CaseKey) -> str:
    return " ".join(p for p in (f"{key.suite}/{key.name}", key.backend, key.dtype, key.mode) if p)


def table_rows(comp: Comparison, pct: bool = False, max_note: int | None = 60) -> list[dict[str, str]]:
    """One row per key, with the base's median and, per other report, its median, ratio and verdict."""
    by_pair = [{row.key: row for row in pair.rows} for pair in comp.pairs]
    rows = []
    for key in comp.keys:
        base = next((m[key].base for m in by_pair if key in m and m[key].base is not None), None)
        out = {"case": case_name(key), comp.base_name: fmt_median(base)}
        notes = []
        for pair, rows_by_key in zip(comp.pairs, by_pair, strict=True):
            row = rows_by_key.get(key)
            suffix = f" ({pair.name})" if len(comp.pairs) > 1 else ""
            out[pair.name] = fmt_median(row.other) if row else "-"
            out[("change" if pct else "ratio") + suffix] = (fmt_pct if pct else fmt_ratio)(row.change if row else None)
            out["verdict" + suffix] = row.verdict if row else "-"
            out["can detect" + suffix] = fmt_mde(row.mde) if row else "-"
            if row and row_note(row):
                notes.append(row_note(row))
        note = " | ".join(notes)
        if max_note and len(note) > max_note:
            note = note[: max_note - 1] + "…"
        out["note"] = note
        rows.append(out)
    return rows


def _tabulate(rows: list[dict[str, str]], fmt: str) -> str:
    if not rows:
        return "(no results)"
    if not any(r.get("note") for r in rows):
        rows = [{k: v for k, v in r.items() if k != "note"} for r in rows]
    return tabulate(rows, headers="keys", tablefmt=fmt, disable_numparse=True)


def env_lines(comp: Comparison) -> list[str]:
    """Environment differences between the base and each other report, those that matter first."""
    lines = []
    for pair in comp.pairs:
        for k, va, vb, matters in sorted(pair.env_diff, key=lambda d: (not d[3], d[0])):
            mark = "differs (results affected are incomparable)" if matters else "differs"
            lines.append(f"{k}: {_short(va)} ({comp.base_name}) vs {_short(vb)} ({pair.name}) - {mark}")
    timed = any(r.ok and metrics.of_method(r.timing_method).rule == "rounds"
                for rep in [comp.base] + [p.report for p in comp.pairs] for r in rep.results)
    if timed:  # a busy or throttled machine does not change instruction counts
        lines += drift_lines(comp)
    for name, rep in [(comp.base_name, comp.base)] + [(p.name, p.report) for p in comp.pairs]:
        if rep.partial:
            lines.append(f"{name} is a partial report (the run was interrupted)")
    return lines


def drift_lines(comp: Comparison) -> list[str]:
    """Human lines about the machine's speed (the canary) within each run and between the base and each
    other report; pairs measured round by round together (`ab`) share the machine and are not checked."""
    lines = []
    threshold = comp.criteria.threshold
    seen = set()
    for pair in comp.pairs:
        if pair.paired:
            continue
        for name, rep in ((comp.base_name, comp.base), (pair.name, pair.report)):
            r = canary.within_run(rep)
            if name not in seen and r is not None and abs(math.log(r)) > math.log1p(threshold):
                lines.append(f"{name}: the machine's own speed moved by {100 * (r - 1):.0f}% during the run "
                             "(canary, slowest over fastest round): its timings are less reliable")
            seen.add(name)
        r = canary.between_runs(comp.base, pair.report)
        if r is not None and abs(math.log(r)) > math.log1p(threshold):
            lines.append(f"machine speed: the canary ran {r:.2f}x as long in {pair.name} as in {comp.base_name} "
                         "(median over rounds): part of every ratio below is the machine, not the code (busy host, "
                         "throttling); timing verdicts of this pair are not trusted")
    return lines


def _short(v: Any, width: int = 60) -> str:
    text = json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else str(v)
    return text if len(text) <= width else text[: width - 1] + "…"


def rows_metric(rows: Any) -> Any:
    """The metric the compared rows hold: another than time only when every compared row holds it
    (instruction counts from Callgrind reports)."""
    found = {metrics.of_results(r.base, r.other).name for r in rows if r.change is not None}
    return metrics.get(found.pop()) if len(found) == 1 else metrics.TIME


def quantity(rows: Any) -> str:
    """What the ratios of these rows are ratios of: "instruction count" for counts, else "time"."""
    return rows_metric(rows).quantity


def geomean_lines(pair: Pair, base_name: str) -> list[str]:
    gms = geomeans(pair.rows)
    if not gms:
        return [f"{pair.name} vs {base_name}: no case measured on both sides"]
    overall = gms.pop(None)
    lines = [f"{pair.name} vs {base_name}: geometric mean {quantity(pair.rows)} ratio {overall.ratio:.3f} "
             f"({fmt_speed(overall.ratio)}) over {_cases(overall.n)}"]
    if len(gms) > 1:
        lines += [f"  {suite}: {g.ratio:.3f} ({fmt_speed(g.ratio)}), {_cases(g.n)}" for suite, g in sorted(gms.items())]
    return lines


def disagreement_text(d: Disagreement) -> str:
    """One sentence on a case whose time and instruction count tell different stories."""
    def pct(r: float | None) -> str:
        return f" ({100 * (r - 1):+.1f}%)" if r is not None else ""

    tw, iw = f"time {d.time}{pct(d.time_ratio)}", f"instructions {d.instructions}{pct(d.instructions_ratio)}"
    if d.kind == "instructions-only":
        return (f"{iw} but {tw}: the CPU does {'more' if d.instructions == 'up' else 'less'} work per call without "
                "a measurable change in time here (cheap work, or within timing noise); check before trusting either")
    if d.kind == "time-only":
        return (f"{tw} but {iw}: the change is where instruction counts cannot see (memory bandwidth, caches, "
                "other threads, GPU work) or in the machine, not in the code's CPU work")
    return f"{tw} but {iw}: they move in opposite directions; look at both before trusting either"


def disagreement_lines(found: list[Disagreement]) -> list[str]:
    """`case: sentence` per case where time and instructions disagree (empty when they agree)."""
    return [f"{d.key.label if d.key is not None else '?'}: {disagreement_text(d)}" for d in found]


def markdown_list(lines: list[str]) -> list[str]:
    """Text lines, indented ones nested one level, as a Markdown list."""
    return [("  - " + line.lstrip()) if line.startswith(" ") else "- " + line for line in lines]


def _cases(n: int) -> str:
    return f"{n} case" if n == 1 else f"{n} cases"


def fmt_metric_change(row: MetricRow) -> str:
    if row.base is None or row.other is None:
        return "-"
    unit = metrics.get(row.metric).unit
    diff = fmt_value(abs(row.other - row.base), unit)
    pct = f" ({100 * (row.ratio - 1):+.1f}%)" if row.ratio is not None else ""
    return ("+" if row.other >= row.base else "-") + diff + pct


def metric_table_rows(rows: list[MetricRow], base_name: str, name: str) -> list[dict[str, str]]:
    """One row per case and metric recorded beside the time: both values, the change, the verdict, why."""
    out = []
    for r in rows:
        unit = metrics.get(r.metric).unit
        out.append({"case": case_name(r.key), "metric": metrics.get(r.metric).title,
                    base_name: fmt_value(r.base, unit), name: fmt_value(r.other, unit),
                    "change": fmt_metric_change(r), "verdict": r.verdict, "why": r.why})
    return out


def metric_lines(comp: Comparison, md: bool = False) -> list[str]:
    """The metrics recorded beside the time (peak memory, compile time, energy): a count of verdicts per metric,
    why a metric was measured on neither side (one line per reason), and a table of the other cases that are not
    `same`. Empty when no pair has any."""
    out: list[str] = []
    for pair in comp.pairs:
        if not pair.metric_rows:
            continue
        for name in dict.fromkeys(r.metric for r in pair.metric_rows):
            rows = [r for r in pair.metric_rows if r.metric == name]
            counts: dict[str, int] = {}
            for r in rows:
                counts[r.verdict] = counts.get(r.verdict, 0) + 1
            line = f"{pair.name} {metrics.get(name).title}: " + ", ".join(f"{counts[v]} {v}" for v in ROW_VERDICTS
                                                                           if v in counts)
            out.append(("- " if md else "") + line)
        # a metric not measured on either side (energy on a machine without counters): one line per reason
        unmeasured: dict[tuple[str, str], int] = {}
        for r in pair.metric_rows:
            if r.base is None and r.other is None:
                unmeasured[(r.metric, r.why)] = unmeasured.get((r.metric, r.why), 0) + 1
        out += [("- " if md else "") + f"{pair.name} {metrics.get(m).title}: {why} ({_cases(n)})"
                for (m, why), n in unmeasured.items()]
        shown = [r for r in pair.metric_rows if r.verdict != "same" and (r.base is not None or r.other is not None)]
        if shown:
            out += ["", _tabulate(metric_table_rows(shown, comp.base_name, pair.name), "github" if md else "simple")]
    return [""] + out if out else []


def comparison_text(comp: Comparison, fmt: str = "simple") -> str:
    """The terminal table (fmt="simple") or Markdown (fmt="github"), with environment and geometric means."""
    md = fmt == "github"
    out = []
    env = env_lines(comp)
    if env:
        out.append("Environment differences:" if not md else "**Environment differences**")
        out += [("- " if md else "  ") + line for line in env]
        out.append("")
    out.append(_tabulate(table_rows(comp, max_note=None if md else 60), fmt))
    out.append("")
    for pair in comp.pairs:
        lines = geomean_lines(pair, comp.base_name)
        out += markdown_list(lines) if md else lines
        counts = verdict_counts(pair.rows)
        out.append(("- " if md else "") + f"{pair.name}: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    c = comp.criteria
    out.append("")
    out += metric_lines(comp, md)
    measured = rows_metric([r for p in comp.pairs for r in p.rows])
    what = measured.quantity
    if measured.rule == "tolerance":  # counts: exact up to jitter, no test
        out.append(f"ratio = instructions per call {'/'.join(p.name for p in comp.pairs)} / {comp.base_name} (median "
                   f"of the repeats); slower/faster: beyond the {100 * c.instructions_tolerance:g}% tolerance and "
                   "beyond the repeats' own spread (noisy otherwise). Counts are exact up to small jitter: no "
                   "significance test is made.")
        return "\n".join(out)
    plans = {p.report.sequential.get("spending") for p in comp.pairs if p.paired and p.report.sequential}
    if plans:
        out.append(f"ratio = {what} {'/'.join(p.name for p in comp.pairs)} / {comp.base_name}, from block-interleaved "
                   "process pairs (both sides alive, taking turns ABBA; a pair's ratio is the median of its windows'), "
                   f"with the t interval across pairs at the level its sequential look allows ({100 * c.alpha:g}% "
                   f"spent over the planned looks, {', '.join(sorted(plans))}); below 1 is faster. slower/faster: the "
                   f"interval beyond ±{100 * c.threshold:g}%. can detect: the slowdown these pairs would catch with "
                   f"{100 * c.power:g}% power. pairs-disagree: the pairs spread far beyond their own windows (a "
                   "per-process effect that only more pairs average out).")
        return "\n".join(out)
    out.append(f"ratio = {what} {'/'.join(p.name for p in comp.pairs)} / {comp.base_name} with its "
               f"{100 * c.level:g}% interval from the rounds (t on the log of each round's fastest sample; paired by round for reports "
               f"measured together); below 1 is faster. slower/faster: the interval beyond ±{100 * c.threshold:g}%. "
               "One round per side (single-round): Mann-Whitney and a bootstrap on the samples. can detect: the "
               f"slowdown this data would catch with {100 * c.power:g}% power.")
    return "\n".join(out)


RECORD_FIELDS = ["suite", "benchmark", "params", "backend", "dtype", "mode", "base", "other", "base_status",
                 "other_status", "base_median_s", "base_iqr_s", "base_n", "other_median_s", "other_iqr_s", "other_n",
                 "ratio", "ratio_ci_low", "ratio_ci_high", "ci_level", "p_value", "noise", "unit", "df", "mde",
                 "machine", "verdict", "statistical", "reasons", "flags"]


def comparison_records(comp: Comparison) -> list[dict[str, Any]]:
    """Flat records, one per key and compared report, with raw numbers (seconds, ratios)."""
    recs = []
    for pair in comp.pairs:
        for row in pair.rows:
            sa, sb, ch = summary_of(row.base), summary_of(row.other), row.change
            recs.append({
                "suite": row.key.suite, "benchmark": row.key.benchmark, "params": row.key.params_label,
                "backend": row.key.backend, "dtype": row.key.dtype, "mode": row.key.mode,
                "base": comp.base_name, "other": pair.name,
                "base_status": row.base.status if row.base else None,
                "other_status": row.other.status if row.other else None,
                "base_median_s": sa.median if sa else None, "base_iqr_s": sa.iqr if sa else None,
                "base_n": sa.n if sa else None,
                "other_median_s": sb.median if sb else None, "other_iqr_s": sb.iqr if sb else None,
                "other_n": sb.n if sb else None,
                "ratio": ch.ratio if ch else None, "ratio_ci_low": ch.ci_low if ch else None,
                "ratio_ci_high": ch.ci_high if ch else None, "ci_level": ch.level if ch else None,
                "p_value": ch.p_value if ch else None, "noise": ch.noise if ch else None,
                "unit": ch.unit if ch else None, "df": ch.df if ch else None, "mde": row.mde,
                "machine": "; ".join(f"{w}:{r:.4g}" for w, r in row.machine),
                "verdict": row.verdict, "statistical": row.statistical,
                "reasons": "; ".join(row.reasons + row.env), "flags": ";".join(row.flags),
            })
    return recs


def comparison_csv(comp: Comparison) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\n")
    w.writeheader()
    for rec in comparison_records(comp):
        w.writerow(csv_row({k: "" if v is None else v for k, v in rec.items()}))
    return buf.getvalue()


def comparison_doc(comp: Comparison) -> dict[str, Any]:
    """The comparison as plain JSON-able data (what `--format json` prints)."""
    c = comp.criteria
    return {
        "base": comp.base_name,
        "others": [p.name for p in comp.pairs],
        "criteria": {"threshold": c.threshold, "alpha": c.alpha, "ci_level": c.level, "n_boot": c.n_boot,
                     "power": c.power},
        "paired": {p.name: p.paired for p in comp.pairs},
        "environment_differences": {p.name: [{"key": k, "base": a, "other": b, "matters": m}
                                             for k, a, b, m in p.env_diff] for p in comp.pairs},
        "geomeans": {p.name: {(s if s is not None else "overall"): {"ratio": g.ratio, "speedup": g.speedup, "n": g.n}
                              for s, g in geomeans(p.rows).items()} for p in comp.pairs},
        "verdicts": {p.name: verdict_counts(p.rows) for p in comp.pairs},
        "verdict_help": VERDICT_HELP,
        "rows": comparison_records(comp),
        "metrics": {p.name: [r.to_dict() for r in p.metric_rows] for p in comp.pairs},
    }


def comparison_json(comp: Comparison) -> str:
    return json.dumps(comparison_doc(comp), indent=1, default=str)
