"""`benchbench validate`'s result (benchbench.measure.validate.validate) as text."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from benchbench.output.units import fmt_time


def _ratio_cell(ratio: dict[str, Any]) -> str:
    high = "inf" if ratio["high"] == float("inf") else f"{ratio['high']:.3f}"
    return f"{ratio['ratio']:.3f} [{ratio['low']:.3f}, {high}]"


def validate_text(result: dict[str, Any]) -> str:
    """`benchbench validate`'s result (benchbench.measure.validate.validate) as text: clock, backends, the
    paired ratios of both engines to the plain loop with their intervals, and every verdict that is
    not agreement."""
    clock = result["clock"]
    lines = [f"perf_counter: declared resolution {fmt_time(clock['declared_s'])}, "
             f"smallest observed step {fmt_time(clock['observed_step_s'])}",
             tabulate([[b["backend"], b["timing_method"], fmt_time(b["timer_resolution_s"]), fmt_time(b["sync_cost_s"])]
                       for b in result["backends"]], headers=["backend", "timing", "timer resolution", "sync cost"]),
             "",
             f"{result['processes']} processes x {result['rounds']} rounds, profile {result['profile']}; ratio = engine / "
             f"plain loop (paired within a round), {int(100 * 0.95)}% interval across processes:"]
    machine = result.get("machine") or {}
    loads = [machine.get("load_start"), machine.get("load_end")]
    if None not in loads and machine.get("cpus"):
        busy = max(loads) > machine["cpus"]
        lines.insert(2, f"machine: {machine['cpus']} CPUs, torch uses {machine['torch_threads']} threads; load average "
                     f"{loads[0]:.1f} at the start, {loads[1]:.1f} at the end"
                     + (" (busy: more runnable processes than CPUs, expect wide intervals)" if busy else ""))
    rows, notes = [], []
    tol = result["tolerance"]
    for op in result["ops"]:
        engines = op["engines"]
        held = op["held"]
        status = ", ".join(f"{name} {e['status']}" for name, e in engines.items()) if held else \
            f"not held (< {fmt_time(result['held_above_s'])})"
        rows.append([op["backend"], op["op"], fmt_time(op["plain_s"]), fmt_time(engines["benchbench"]["median_s"]),
                     _ratio_cell(engines["benchbench"]["ratio"]), fmt_time(engines["torch"]["median_s"]),
                     _ratio_cell(engines["torch"]["ratio"]), status])
        notes += [f"- {op['backend']} {op['op']}: {e['verdict']}" for e in engines.values() if e["status"] != "agrees"]
    lines.append(tabulate(rows, headers=["backend", "reference op", "plain loop", "benchbench", "ratio [95% CI]",
                                         "torch.utils.benchmark", "ratio [95% CI]", "verdict"],
                          disable_numparse=True))
    if notes:
        lines += ["", *notes]
    for error in result.get("errors", []):
        lines.append(f"error: {error}")
    lines.append("")
    lines.append(f"both engines agree with the plain loop within ±{tol:.0%} on every op above "
                 f"{fmt_time(result['held_above_s'])}" if result["all_agree"] else
                 f"not every engine agrees within ±{tol:.0%} (see above); on a busy machine run again, with more "
                 "--processes, or when it is quiet")
    return "\n".join(lines)
