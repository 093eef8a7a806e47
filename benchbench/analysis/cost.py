"""Cost per result across machines: what a million samples, images or tokens cost on each, from its hourly
price and the case's measured throughput, and how much work it does per joule where energy was measured.

Pure functions over reports (no I/O, no formatting): `compare --price-per-hour` calls them and the output
layer (benchbench.output.cost) renders what they return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from benchbench.analysis.compare import Comparison
from benchbench.errors import UserError
from benchbench.metrics import energy
from benchbench.model.report import CaseKey, Report, Result, report_fact

MILLION = 1e6


def cost_per_million(items_per_s: float, price_per_hour: float) -> float:
    """What a million items cost at this rate and hourly price: the hours they take times the price."""
    return price_per_hour * (MILLION / items_per_s) / 3600.0


@dataclass(frozen=True)
class CaseCost:
    """One case on one machine. None where the number cannot be had (no price, no items, no energy)."""

    items_unit: str
    items_per_s: float | None
    cost_per_million: float | None
    items_per_joule: float | None
    watts: float | None


def case_cost(result: Result | None, price_per_hour: float | None) -> CaseCost | None:
    """The case's throughput, cost per million items and items per joule; None when it has no items/s."""
    if result is None or not result.ok:
        return None
    items_per_s = result.derived().get("items_per_s")
    items = result.work.get("items")
    if not items_per_s or not items:
        return None
    j = result.metrics.get(energy.J_PER_CALL)
    w = result.metrics.get(energy.WATTS)
    measured = isinstance(j, (int, float)) and not isinstance(j, bool) and j > 0
    return CaseCost(
        items_unit=str(result.work.get("items_unit", "items")),
        items_per_s=items_per_s,
        cost_per_million=cost_per_million(items_per_s, price_per_hour) if price_per_hour else None,
        items_per_joule=items / j if measured else None,
        watts=float(w) if measured and isinstance(w, (int, float)) else None,
    )


@dataclass(frozen=True)
class CostRow:
    key: CaseKey
    costs: tuple[CaseCost | None, ...]  # one per report, in the comparison's order

    @property
    def cheapest(self) -> int | None:
        """Index of the report whose million items cost least (None without two prices to compare)."""
        priced = [(c.cost_per_million, i) for i, c in enumerate(self.costs)
                  if c is not None and c.cost_per_million is not None]
        return min(priced)[1] if len(priced) > 1 else None


@dataclass(frozen=True)
class CostTable:
    names: tuple[str, ...]
    prices: tuple[float | None, ...]
    rows: tuple[CostRow, ...]
    energy_reasons: tuple[str | None, ...]  # per report: why it has no energy, when none of its cases has
    without_items: int  # cases compared that declare no items per call (no cost per result)

    def relative_cost(self, i: int) -> tuple[float, int] | None:
        """Geometric mean over the cases priced on both of report i's cost per result over the first report's,
        with the number of cases; None when they share no priced case."""
        logs = [math.log(r.costs[i].cost_per_million / r.costs[0].cost_per_million) for r in self.rows
                if r.costs[0] is not None and r.costs[i] is not None
                and r.costs[0].cost_per_million and r.costs[i].cost_per_million]
        return (math.exp(sum(logs) / len(logs)), len(logs)) if logs else None


def _energy_reason(report: Report) -> str | None:
    sources = [r.metrics.get(energy.SOURCE) for r in report.results if r.ok]
    if any(isinstance(s, str) and not s.startswith("unavailable") for s in sources):
        return None
    reasons = [s for s in sources if isinstance(s, str)]
    return reasons[0] if reasons else "unavailable: the report holds no energy measurements"


def cost_table(reports: Sequence[Report], names: Sequence[str], prices: Sequence[float | None],
               keys: Sequence[CaseKey]) -> CostTable:
    """Per case key, every report's throughput and, where priced, its cost per million items."""
    rows, without = [], 0
    for key in keys:
        costs = tuple(case_cost(rep.result(key), price) for rep, price in zip(reports, prices, strict=True))
        if any(c is not None for c in costs):
            rows.append(CostRow(key, costs))
        else:
            without += 1
    return CostTable(tuple(names), tuple(prices), tuple(rows), tuple(_energy_reason(r) for r in reports), without)


def parse_prices(text: str, names: Sequence[str], reports: Sequence[Report]) -> list[float | None]:
    """`--price-per-hour`: `NAME=PRICE,NAME=PRICE` (NAME: a report's name in the comparison, its label or its
    host name) or bare prices in the reports' order. Returns one price (or None) per report."""
    what = "--price-per-hour"
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError(f"{what}: give NAME=PRICE pairs (e.g. base=2.5,new=4.1) or one price per report")
    out: list[float | None] = [None] * len(names)
    if all("=" not in p for p in parts):
        if len(parts) != len(names):
            raise UserError(f"{what}: {len(parts)} prices for {len(names)} reports; give one per report, "
                            "or NAME=PRICE pairs")
        return [_price(p, what) for p in parts]
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep:
            raise UserError(f"{what}: {part!r}: mix of bare prices and NAME=PRICE; use NAME=PRICE for all")
        i = _which(name.strip(), names, reports, what)
        if out[i] is not None:
            raise UserError(f"{what}: {names[i]} is priced twice")
        out[i] = _price(value, what)
    return out


def _price(text: str, what: str) -> float:
    try:
        value = float(text.strip().lstrip("$€£"))
    except ValueError:
        raise UserError(f"{what}: {text.strip()!r} is not a price (a number per hour, e.g. 2.49)") from None
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"{what}: {text.strip()!r}: a price per hour must be a positive number")
    return value


def _which(name: str, names: Sequence[str], reports: Sequence[Report], what: str) -> int:
    for aliases in (list(names), [r.label for r in reports], [report_fact(r, "hostname") for r in reports]):
        hits = [i for i, a in enumerate(aliases) if a is not None and a == name]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UserError(f"{what}: {name!r} names {len(hits)} reports; use the names compare shows "
                            f"({', '.join(names)})")
    raise UserError(f"{what}: no report named {name!r} (names: {', '.join(names)}; a report's label or host "
                    "name works too)")


def comparison_costs(comp: Comparison, prices: Sequence[float | None]) -> CostTable:
    """The cost table of a comparison's reports (the base first), over the keys it compared."""
    reports = [comp.base, *(p.report for p in comp.pairs)]
    return cost_table(reports, [comp.base_name, *(p.name for p in comp.pairs)], prices, comp.keys)
