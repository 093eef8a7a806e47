"""The cost table of `compare --price-per-hour`: per case and machine, throughput, cost per million items and
items per joule, and which machine is cheapest. Takes a `benchbench.analysis.cost.CostTable`, returns text or data."""

from __future__ import annotations

import math
from typing import Any

from tabulate import tabulate

from benchbench.analysis.cost import CaseCost, CostTable
from benchbench.output.comparison import case_name
from benchbench.output.units import fmt_si


def fmt_money(value: float | None) -> str:
    """A cost in the prices' currency, with three significant digits (no symbol: the user's currency)."""
    if value is None:
        return "-"
    if value >= 100 or value <= 0:
        return f"{value:,.2f}"
    digits = max(2, 2 - math.floor(math.log10(value)))  # three significant digits, never "9e-05"
    return f"{value:.{digits}f}"


def _cells(name: str, c: CaseCost | None, priced: bool) -> dict[str, str]:
    cells = {f"{name} rate": fmt_si(c.items_per_s, f"{c.items_unit}/s") if c else "-"}
    if priced:
        cells[f"{name} cost/1M"] = fmt_money(c.cost_per_million) if c else "-"
    cells[f"{name} per J"] = fmt_si(c.items_per_joule, c.items_unit) if c and c.items_per_joule else "-"
    return cells


def cost_rows(table: CostTable) -> list[dict[str, str]]:
    rows = []
    for row in table.rows:
        out = {"case": case_name(row.key)}
        for name, price, c in zip(table.names, table.prices, row.costs, strict=True):
            out.update(_cells(name, c, price is not None))
        cheapest = row.cheapest
        out["cheapest"] = table.names[cheapest] if cheapest is not None else "-"
        rows.append(out)
    # no report measured energy in any case: its columns would be all "-" (the lines below say why)
    empty = {k for k in (rows[0] if rows else {}) if k.endswith(" per J") and all(r[k] == "-" for r in rows)}
    return [{k: v for k, v in r.items() if k not in empty} for r in rows]


def cost_lines(table: CostTable) -> list[str]:
    """What the table's numbers mean, each report's cost relative to the first, and why energy is missing."""
    lines = []
    prices = ", ".join(f"{n} {fmt_money(p)}/h" for n, p in zip(table.names, table.prices, strict=True)
                       if p is not None)
    lines.append(f"cost/1M = price per hour x the hours a million items take at the case's median rate ({prices}); "
                 "per J = items per joule of the device's energy counter, where it was read")
    for i, name in enumerate(table.names[1:], 1):
        rel = table.relative_cost(i)
        if rel is not None:
            ratio, n = rel
            how = f"{1 / ratio:.2f}x cheaper" if ratio < 1 else f"{ratio:.2f}x dearer" if ratio > 1 else "the same"
            lines.append(f"{name} vs {table.names[0]}: cost per result x{ratio:.3f} ({how}), geometric mean over "
                         f"{n} case{'s' if n != 1 else ''}")
    for name, reason in zip(table.names, table.energy_reasons, strict=True):
        if reason:
            lines.append(f"{name}: energy {reason}")
    if table.without_items:
        lines.append(f"{table.without_items} case(s) declare no items per call and have no cost per result")
    return lines


def cost_text(table: CostTable, fmt: str = "simple") -> str:
    md = fmt == "github"
    head = "**Cost per result**" if md else "Cost per result:"
    body = tabulate(cost_rows(table), headers="keys", tablefmt=fmt, disable_numparse=True) if table.rows \
        else "(no case declares items per call)"
    lines = cost_lines(table)
    return "\n".join([head, "", body, "", *(f"- {line}" if md else line for line in lines)])


def cost_doc(table: CostTable) -> dict[str, Any]:
    """The cost table as JSON-able data, raw numbers (prices' currency, items per second and per joule)."""
    rel = {name: table.relative_cost(i) for i, name in enumerate(table.names) if i}
    return {
        "prices_per_hour": dict(zip(table.names, table.prices, strict=True)),
        "relative_cost": {n: ({"ratio": r[0], "cases": r[1]} if r else None) for n, r in rel.items()},
        "energy_unavailable": {n: r for n, r in zip(table.names, table.energy_reasons, strict=True) if r},
        "rows": [{"suite": row.key.suite, "benchmark": row.key.benchmark, "params": row.key.params_label,
                  "backend": row.key.backend, "dtype": row.key.dtype, "mode": row.key.mode,
                  "cheapest": table.names[row.cheapest] if row.cheapest is not None else None,
                  "reports": {n: (None if c is None else {
                      "items_unit": c.items_unit, "items_per_s": c.items_per_s,
                      "cost_per_million": c.cost_per_million, "items_per_joule": c.items_per_joule,
                      "power_w": c.watts}) for n, c in zip(table.names, row.costs, strict=True)}}
                 for row in table.rows],
    }
