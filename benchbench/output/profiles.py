"""`ab --profile-regressions` as text: per profiled case, the operators whose self time per call moved
most (baseline vs current, with call counts), and the trace files; Markdown, JSON and an HTML page."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from benchbench.analysis.profile_diff import OpDiff, top
from benchbench.output.safe_text import md_code, md_text

TOP = 10


def fmt_us(us: float, signed: bool = False) -> str:
    """Microseconds as people read them: "38 us", "+1.24 ms"."""
    sign = "+" if signed and us > 0 else ""
    a = abs(us)
    if a >= 1e6:
        return f"{sign}{us / 1e6:.3g} s"
    if a >= 1e3:
        return f"{sign}{us / 1e3:.3g} ms"
    return f"{sign}{us:.3g} us"


def fmt_calls(n: float) -> str:
    return f"{n:g}" if n == int(n) else f"{n:.2f}"


def fmt_count(n: float, signed: bool = False) -> str:
    """Instructions per call: "1.23M instr", "+450 instr"."""
    sign = "+" if signed and n > 0 else ""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{sign}{n / scale:.3g}{suffix} instr"
    return f"{sign}{n:.3g} instr"


def row_cells(r: OpDiff) -> list[str]:
    if r.where == "instructions":  # Callgrind: own instructions per call, no call counts
        return [r.name, fmt_count(r.delta_us, signed=True), fmt_count(r.base_us), fmt_count(r.current_us), "-",
                r.change]
    return [r.name + (" (device)" if r.where == "device" else ""), fmt_us(r.delta_us, signed=True),
            fmt_us(r.base_us), fmt_us(r.current_us), f"{fmt_calls(r.base_calls)} → {fmt_calls(r.current_calls)}",
            r.change]


HEADERS = ["operator", "self time per call", "baseline", "current", "calls per call", "change"]


def _counted(cp: Any) -> bool:
    return any(o.where == "instructions" for p in cp.profiles.values() for o in p.ops)


def _missing(cp: Any) -> str:
    return "; ".join(f"{side}: {why}" for side, why in cp.errors.items())


def profiles_text(profiles: Sequence[Any], n: int = TOP) -> str:
    """The top rows of each profiled case, for the terminal."""
    lines = []
    for cp in profiles:
        what = "functions by change in own instructions per call" if _counted(cp) else \
            "operators by change in self time per call"
        lines.append(f"profile of {cp.key.label} ({cp.outcome}): {what}")
        if cp.errors:
            lines.append(f"  no diff: {_missing(cp)}")
        else:
            rows = top(cp.rows, n)
            lines.append(tabulate([row_cells(r) for r in rows], headers=HEADERS, tablefmt="simple",
                                  disable_numparse=True) if rows else "  no operator moved")
        for side, path in cp.traces.items():
            lines.append(f"  {side} trace: {path}")
        lines.append("")
    return "\n".join(lines)


def profiles_markdown(profiles: Sequence[Any], n: int = TOP) -> str:
    out = []
    for cp in profiles:
        out.append(f"#### Profile of {md_code(cp.key.label)} ({cp.outcome})")
        if cp.errors:
            out.append(f"No diff: {md_text(_missing(cp))}")
        else:
            rows = top(cp.rows, n)
            out.append(tabulate([[md_text(c) for c in row_cells(r)] for r in rows], headers=HEADERS,
                                tablefmt="github", disable_numparse=True) if rows else "No operator moved.")
        out.append("")
    return "\n".join(out)


def profiles_doc(profiles: Sequence[Any], n: int = TOP) -> list[dict[str, Any]]:
    return [{"case": cp.key.label, "outcome": cp.outcome, "traces": dict(cp.traces), "errors": dict(cp.errors),
             "top": [{"operator": r.name, "where": r.where,
                      "unit": "instructions" if r.where == "instructions" else "us", "delta_us": r.delta_us, "baseline_us": r.base_us,
                      "current_us": r.current_us, "baseline_calls": r.base_calls, "current_calls": r.current_calls,
                      "change": r.change} for r in top(cp.rows, n)]}
            for cp in profiles]


def with_profiles(json_text: str, profiles: Sequence[Any], n: int = TOP) -> str:
    """A command's JSON document (`ab --json`, `gate --json`) with the `profiles` list added."""
    import json

    return json.dumps({**json.loads(json_text), "profiles": profiles_doc(profiles, n)}, indent=1, default=str)


def profiles_html(profiles: Sequence[Any], folder: Path, n: int = TOP) -> str:
    """A self-contained page: per case, the top rows and links to both traces (relative to `folder`)."""
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>benchbench: profiles of regressions</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}"
             "</style></head><body><h1>Profiles of the cases that regressed or stayed inconclusive</h1>",
             "<p>Operators ranked by their change in self time per call of the case, baseline vs current. Open a "
             "trace in <a href='https://ui.perfetto.dev'>Perfetto</a> or chrome://tracing.</p>"]
    for cp in profiles:
        parts.append(f"<h2>{e(cp.key.label)} ({e(cp.outcome)})</h2>")
        links = [f"<a href='{e(os.path.relpath(path, folder))}'>{e(side)} trace</a>" for side, path in cp.traces.items()]
        if links:
            parts.append("<p>" + " · ".join(links) + "</p>")
        if cp.errors:
            parts.append(f"<p>No diff: {e(_missing(cp))}</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEADERS) + "</tr>")
        for r in top(cp.rows, n):
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row_cells(r)) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
