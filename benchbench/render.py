"""Renderers: take reports, return strings. Nothing here measures or prints."""

from __future__ import annotations

import csv
import io
from typing import Any

from benchbench.ceilings import ceiling_fraction
from benchbench.instructions import METHOD as INSTRUCTIONS
from benchbench.report import Report, Result


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"  # pragma: no cover


def fmt_per_call(value: float | None, timing_method: str | None = None) -> str:
    """A value per call in its unit: seconds, or instructions when counted under Callgrind."""
    if timing_method == INSTRUCTIONS:
        return "-" if value is None else f"{value:,.0f} instr"
    return fmt_time(value)


def fmt_si(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def peak_fraction(result: Result, report: Report) -> dict[str, float]:
    """Measured rate / datasheet peak for this backend, where the peak is known."""
    backend = report.backend(result.key.backend) or {}
    peaks = backend.get("peaks") or {}
    derived = result.derived()
    out = {}
    flops = derived.get("flops_per_s")
    if flops and peaks.get("flops"):
        peak = peaks["flops"].get(result.key.dtype or "float32")
        if peak:
            out["flops"] = flops / peak
    bw = derived.get("bytes_per_s")
    if bw and peaks.get("bandwidth") and not flops:
        out["bandwidth"] = bw / peaks["bandwidth"]
    return out


def rate_text(result: Result) -> str:
    """The one rate that best describes the case: FLOP/s if declared, else bytes/s, else items/s."""
    d = result.derived()
    if "flops_per_s" in d:
        return fmt_si(d["flops_per_s"], "FLOP/s")
    if "bytes_per_s" in d:
        return fmt_si(d["bytes_per_s"], "B/s")
    if "items_per_s" in d:
        return fmt_si(d["items_per_s"], f"{result.work.get('items_unit', 'items')}/s")
    return "-"


def _median_text(result: Result) -> str:
    st = result.stats
    if st is None:
        return "-"
    return f"{fmt_per_call(st.median, result.timing_method)} ±{100 * st.rel_spread / 2:.1f}%"


def _note(result: Result) -> str:
    if result.status != "ok":
        return result.reason or ""
    notes = [str(result.metrics["note"])] if result.metrics.get("note") else []
    return ", ".join(notes + list(result.flags))


def _percent(fraction: float | None) -> str:
    return f"{100 * fraction:.0f}%" if fraction is not None else ""


def result_rows(report: Report) -> list[dict[str, Any]]:
    """One row per result. "% peak" is against the datasheet peak, "% ceiling" against the device's
    own measured ceiling (benchbench.ceilings), when the report holds one."""
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
            "% ceiling": _percent(ceiling_fraction(report.results, r)),
            "note": _note(r),
        })
    return rows


def _drop_empty_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return rows
    keep = [c for c in rows[0] if any(str(row[c]) for row in rows)]
    return [{c: row[c] for c in keep} for row in rows]


def results_table(report: Report, fmt: str = "simple", max_note: int = 100) -> str:
    from tabulate import tabulate

    rows = _drop_empty_columns(result_rows(report))
    for row in rows:
        if "note" in row and len(row["note"]) > max_note:
            row["note"] = row["note"][: max_note - 1] + "…"
    if not rows:
        return "(no results)"
    return tabulate(rows, headers="keys", tablefmt=fmt, disable_numparse=True)


def results_csv(report: Report) -> str:
    """One row per result with raw numbers (seconds, per-second rates), for spreadsheets."""
    buf = io.StringIO()
    fields = ["suite", "benchmark", "params", "backend", "dtype", "mode", "status", "reason", "n", "median_s",
              "iqr_s", "ci_low_s", "ci_high_s", "items_per_s", "flops_per_s", "bytes_per_s", "ceiling_fraction",
              "peak_memory_bytes", "flags"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in sorted(report.results, key=lambda r: r.key.sort_key()):
        st, d = r.stats, r.derived()
        w.writerow({
            "suite": r.key.suite, "benchmark": r.key.benchmark, "params": r.key.params_label,
            "backend": r.key.backend, "dtype": r.key.dtype or "", "mode": r.key.mode or "", "status": r.status,
            "reason": r.reason or "", "n": st.n if st else "", "median_s": st.median if st else "",
            "iqr_s": st.iqr if st else "", "ci_low_s": st.ci_low if st else "", "ci_high_s": st.ci_high if st else "",
            "items_per_s": d.get("items_per_s", ""), "flops_per_s": d.get("flops_per_s", ""),
            "bytes_per_s": d.get("bytes_per_s", ""), "peak_memory_bytes": r.peak_memory_bytes or "",
            "ceiling_fraction": _or_blank(ceiling_fraction(report.results, r)),
            "flags": ";".join(r.flags),
        })
    return buf.getvalue()


def _or_blank(value: float | None) -> float | str:
    return "" if value is None else value


def status_counts(report: Report) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


def backends_table(backends: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    rows = [{"backend": b["name"], "usable": "yes" if b["available"] else "no",
             "device / reason": b.get("device_name") if b["available"] else b.get("reason")} for b in backends]
    return tabulate(rows, headers="keys", tablefmt="simple", disable_numparse=True)
