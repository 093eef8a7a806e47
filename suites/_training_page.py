"""The training suite's part of the report page: eager against compiled per model, with compile time and
break-even from the suite's own metrics (compile_s, compile_warm_s, speedup, break_even_steps,
break_even_steps_warm), and the note of a compiled case drawn again from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from benchbench.model.report import CaseKey, Result
from benchbench.output.units import fmt_time
from benchbench.page import Bars, Block, Heading, Run, Status, Table, case_label
from benchbench.workloads import COMPILED_MODES, EAGER_AND_COMPILED_MODES


def page_blocks(runs: Sequence[Run], backend: bool) -> list[Block]:
    """Eager vs compiled per model and report: throughput bars (each compiled bar with its speed-up, cold
    compile time and pay-off) and a table of compile times and break-even steps."""
    keys = sorted({k for run in runs for k in run.results}, key=CaseKey.sort_key)
    compiled = [k for k in keys if k.mode in COMPILED_MODES]
    if not compiled:
        return []
    models = list(dict.fromkeys(replace(k, mode=None) for k in keys if k.mode in EAGER_AND_COMPILED_MODES))
    modes = [md for md in EAGER_AND_COMPILED_MODES if any(k.mode == md for k in keys)]
    blocks: list[Block] = [Heading("Eager vs compiled")]
    for run in runs:
        series = []
        for md in modes:
            cells = [run.results.get(replace(model, mode=md)) for model in models]
            series.append((md, [(r, compile_note(r) if md != "eager" and r is not None else "") for r in cells]))
        title = f" ({run.name})" if len(runs) > 1 else ""
        blocks.append(Bars([case_label(k, backend) for k in models], series,
                           f"Eager vs compiled training throughput{title}; next to each compiled bar its "
                           "speed-up, cold compile time and the steps after which it pays off."))
        rows: list[dict[str, Any]] = []
        for k in compiled:
            r = run.results.get(k)
            if r is None:
                continue
            mt = r.metrics
            rows.append({"model": case_label(k, backend), "status": Status(r.status),
                         "speed-up": f"{mt['speedup']:.2f}x" if isinstance(mt.get("speedup"), (int, float)) else "-",
                         "compile (cold)": _secs(mt.get("compile_s")), "compile (warm cache)": _secs(mt.get("compile_warm_s")),
                         "break-even (cold)": distrust(r) or _steps(mt.get("break_even_steps"), mt.get("speedup")),
                         "break-even (warm)": distrust(r) or _steps(mt.get("break_even_steps_warm"), mt.get("speedup")),
                         "graph breaks": mt.get("graph_breaks", ""),
                         "note": "" if r.ok else r.reason or ""})
        if rows and not any(row["note"] for row in rows):
            rows = [{c: v for c, v in row.items() if c != "note"} for row in rows]
        if rows:
            if len(runs) > 1:
                blocks.append(Heading(run.name))
            blocks.append(Table(rows, numeric=("speed-up", "compile (cold)", "compile (warm cache)",
                                               "break-even (cold)", "break-even (warm)", "graph breaks")))
    return blocks


def page_note(result: Result) -> str | None:
    """A compiled case's note, drawn again from its metrics and flags, so that a report whose stored note
    claims a pay-off the speed-up cannot carry (within noise, loss mismatch) is not repeated."""
    if result.key.mode in COMPILED_MODES and isinstance(result.metrics.get("speedup"), (int, float)):
        return compile_note(result)
    return None


def distrust(r: Result) -> str | None:
    """Why the suite does not trust a compiled case's speed-up, so no break-even is drawn from it: the
    compiled loss left eager's (flag `loss-mismatch`), or the two throughputs' intervals overlap."""
    if "loss-mismatch" in r.flags:
        return "not trusted: loss mismatch"
    if r.metrics.get("speedup_within_noise") is True:
        return "within noise"
    return None


def compile_note(r: Result) -> str:
    mt = r.metrics
    why = distrust(r)
    parts = []
    if isinstance(mt.get("speedup"), (int, float)):
        parts.append(f"{mt['speedup']:.2f}x" + (f" ({why})" if why else ""))
    if isinstance(mt.get("compile_s"), (int, float)):
        parts.append(f"compile {_secs(mt['compile_s'])}")
    if "break_even_steps" in mt and why is None:
        steps = _steps(mt.get("break_even_steps"), mt.get("speedup"))
        parts.append("never pays off" if steps == "never" else f"pays off after {steps}")
    return ", ".join(parts)


def _secs(s: Any) -> str:
    return fmt_time(float(s)) if isinstance(s, (int, float)) else "-"


def _steps(n: Any, speedup: Any) -> str:
    if isinstance(n, (int, float)):
        return f"{int(n):,} steps"
    return "never" if isinstance(speedup, (int, float)) else "-"
