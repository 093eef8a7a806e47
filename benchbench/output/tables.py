"""One report as a console, Markdown or CSV table. Takes reports, returns strings."""

from __future__ import annotations

import csv
import io
from typing import Any

from tabulate import tabulate

from benchbench.analysis.ceilings import ceiling_fraction, find_ceiling
from benchbench.measure.peaks import peak_fraction
from benchbench.model.report import Report, Result
from benchbench.output.energy import energy_cell, energy_fields, energy_lines
from benchbench.output.safe_text import csv_row
from benchbench.output.units import fmt_per_call, rate_text


def _median_text(result: Result) -> str:
    st = result.stats
    if st is None:
        return "-"
    return f"{fmt_per_call(st.median, result.timing_method)} ±{100 * st.rel_spread / 2:.1f}%"


def _note(result: Result) -> str:
    if result.status != "ok":
        return result.reason or ""
    notes = [result.note] if result.note else []
    return ", ".join(notes + list(result.flags))


def _percent(fraction: float | None) -> str:
    return f"{100 * fraction:.0f}%" if fraction is not None else ""


def _ceiling_text(report: Report, result: Result) -> str:
    """% of the measured ceiling; the case that beat its ceiling case and so set the ceiling says so."""
    text = _percent(ceiling_fraction(report.results, result))
    if text:
        ceiling = find_ceiling(report.results, result)
        if ceiling is not None and ceiling.raised and ceiling.set_by is result:
            text += " (sets ceiling)"
    return text


def result_rows(report: Report) -> list[dict[str, Any]]:
    """One row per result. "% peak" is against the datasheet peak, "% ceiling" against the device's
    own measured ceiling (benchbench.analysis.ceilings), when the report holds one."""
    rows = []
    for r in sorted(report.results, key=lambda r: r.key.sort_key()):
        frac = peak_fraction(r, report)
        rows.append({
            "case": f"{r.key.suite}/{r.key.name}",
            "backend": r.key.backend,
            "dtype": r.key.dtype or "",
            "mode": r.key.mode or "",
            "status": r.status,
            "median": _median_text(r),
            "rate": rate_text(r) if r.ok else "",
            "% peak": f"{100 * next(iter(frac.values())):.0f}%" if frac else "",
            "% ceiling": _ceiling_text(report, r),
            "energy": energy_cell(r),
            "note": _note(r),
        })
    return rows


def _drop_empty_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return rows
    keep = [c for c in rows[0] if any(str(row[c]) for row in rows)]
    return [{c: row[c] for c in keep} for row in rows]


def results_table(report: Report, fmt: str = "simple", max_note: int = 100) -> str:
    rows = result_rows(report)
    if all(row["energy"] in ("", "unavailable") for row in rows):
        for row in rows:  # nothing measured: the lines under the table say why, once, not a column of it
            row["energy"] = ""
    rows = _drop_empty_columns(rows)
    for row in rows:
        if "note" in row and len(row["note"]) > max_note:
            row["note"] = row["note"][: max_note - 1] + "…"
    if not rows:
        return "(no results)"
    table = tabulate(rows, headers="keys", tablefmt=fmt, disable_numparse=True)
    why = energy_lines(report)  # why energy is unavailable, one line per reason, under the table
    return "\n\n".join([table, "\n".join(why)]) if why else table


def results_csv(report: Report) -> str:
    """One row per result with raw numbers (seconds, per-second rates), for spreadsheets."""
    buf = io.StringIO()
    fields = ["suite", "benchmark", "params", "backend", "dtype", "mode", "status", "reason", "n", "median_s",
              "iqr_s", "ci_low_s", "ci_high_s", "items_per_s", "flops_per_s", "bytes_per_s", "ceiling_fraction",
              "peak_memory_bytes", "flags", "energy_j_per_call", "power_w", "energy"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in sorted(report.results, key=lambda r: r.key.sort_key()):
        st, d = r.stats, r.derived()
        w.writerow(csv_row({
            "suite": r.key.suite, "benchmark": r.key.benchmark, "params": r.key.params_label,
            "backend": r.key.backend, "dtype": r.key.dtype or "", "mode": r.key.mode or "", "status": r.status,
            "reason": r.reason or "", "n": st.n if st else "", "median_s": st.median if st else "",
            "iqr_s": st.iqr if st else "", "ci_low_s": st.ci_low if st else "", "ci_high_s": st.ci_high if st else "",
            "items_per_s": d.get("items_per_s", ""), "flops_per_s": d.get("flops_per_s", ""),
            "bytes_per_s": d.get("bytes_per_s", ""), "peak_memory_bytes": r.peak_memory_bytes or "",
            "ceiling_fraction": _or_blank(ceiling_fraction(report.results, r)),
            "flags": ";".join(r.flags),
            **energy_fields(r),
        }))
    return buf.getvalue()


def _or_blank(value: float | None) -> float | str:
    return "" if value is None else value


def status_counts(report: Report) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


def backends_table(backends: list[dict[str, Any]]) -> str:
    rows = [{"backend": b["name"], "usable": "yes" if b["available"] else "no",
             "device / reason": b.get("device_name") if b["available"] else b.get("reason")} for b in backends]
    return tabulate(rows, headers="keys", tablefmt="simple", disable_numparse=True)
