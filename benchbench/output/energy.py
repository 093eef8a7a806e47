"""Energy as people read it: joules per call and watts in a table cell, and why energy is unavailable in
one line under the table. Takes results, returns strings."""

from __future__ import annotations

from benchbench.measure import energy
from benchbench.model.report import Report, Result
from benchbench.output.units import fmt_joules


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def energy_cell(result: Result) -> str:
    """ "12.3 mJ/call, 41 W" where measured; "unavailable" where the case says why not; "" where the report
    holds no energy field (older reports, instruction counts)."""
    source = result.metrics.get(energy.SOURCE)
    if not result.ok or not isinstance(source, str):
        return ""
    joules, watts = _number(result.metrics.get(energy.J_PER_CALL)), _number(result.metrics.get(energy.WATTS))
    if source.startswith("unavailable") or joules is None or watts is None:
        return "unavailable"
    return f"{fmt_joules(joules)}/call, {watts:.3g} W"


def energy_fields(result: Result) -> dict[str, object]:
    """The CSV's raw energy columns: joules per call, watts, and what was read or why not (blank: no field)."""
    m = result.metrics
    return {"energy_j_per_call": _number(m.get(energy.J_PER_CALL)) if result.ok else None,
            "power_w": _number(m.get(energy.WATTS)) if result.ok else None,
            "energy": m.get(energy.SOURCE) if result.ok and isinstance(m.get(energy.SOURCE), str) else ""}


def energy_lines(report: Report) -> list[str]:
    """One line per distinct reason that energy is unavailable, with how many cases it holds for."""
    reasons: dict[str, int] = {}
    for r in report.results:
        source = r.metrics.get(energy.SOURCE)
        if r.ok and isinstance(source, str) and source.startswith("unavailable"):
            reasons[source] = reasons.get(source, 0) + 1
    ok = sum(1 for r in report.results if r.ok)
    return [f"energy {reason}" + ("" if n == ok else f" ({n} of {ok} cases)") for reason, n in reasons.items()]
