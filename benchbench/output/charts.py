"""The charts benchbench pages draw, each returned as an inline `<svg>` string (see `html.svg`).

    bars(labels, series, xlabel)      horizontal bars, one row per label and one bar per series, with
                                      interval whiskers; a string entry is written where its bar would
                                      be (failed, skipped, missing): what was not measured stays visible
    lines(series, marks, xlabel, ylabel)   lines of (x, y, low, high) points with whiskers; `marks` are
                                      starred and labelled (a recommendation, a change point)
    forest(rows, threshold, xlabel)   ratios with their intervals around 1, coloured by outcome

They take plain numbers and labels, so any page can use them (the history page's trend lines with
change points marked are `lines` with one mark per change point).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from benchbench.output import html

WIDTH_IN = 7.6  # chart width: fits a laptop window and an A4/letter page
RATIO_TICKS = (0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0)


@dataclass(frozen=True)
class Bar:
    value: float
    low: float | None = None
    high: float | None = None
    note: str = ""


Entry = Bar | str  # a measured bar, or why there is none (failed, skipped, timeout, missing)


def bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[Entry]]], xlabel: str, log: bool = False,
         ref: float | None = None) -> str:
    """Horizontal bars, one row per label and one bar per series, with interval whiskers. An entry that
    is a string is written where its bar would be, so what was not measured stays visible."""
    n, k = len(labels), len(series)
    per_row = max(0.2, 0.15 * k + 0.06)
    fig, ax = html.figure(WIDTH_IN, 0.55 + n * per_row + (0.25 if k > 1 else 0))
    height = 0.8 / k
    measured = [e for _, entries in series for e in entries if isinstance(e, Bar)]
    lows = [e.low if e.low and e.low > 0 else e.value for e in measured if e.value > 0]
    left = min(lows) / 1.6 if log and lows else 0.0
    for j, (name, entries) in enumerate(series):
        colour = html.PALETTE[j % len(html.PALETTE)]
        ys, widths, whiskers = [], [], []
        for i, e in enumerate(entries):
            y = i + (j - (k - 1) / 2) * height
            if isinstance(e, Bar):
                ys.append(y)
                widths.append(max(e.value - left, 0.0))
                if e.low is not None and e.high is not None:
                    whiskers.append((e.value, y, max(e.value - e.low, 0.0), max(e.high - e.value, 0.0)))
                if e.note:
                    ax.annotate(e.note, (e.high if e.high is not None else e.value, y), xytext=(4, 0),
                                textcoords="offset points", va="center", fontsize=6.5, color="#333")
            else:
                ax.text(0.004, y, e, transform=ax.get_yaxis_transform(), va="center", fontsize=6.5,
                        color=html.STATUS_COLOURS.get(e, "#555"), fontweight="bold")
        ax.barh(ys, widths, height=height * 0.92, left=left, color=colour, label=name if k > 1 else None)
        if whiskers:
            ax.errorbar([w[0] for w in whiskers], [w[1] for w in whiskers],
                        xerr=[[w[2] for w in whiskers], [w[3] for w in whiskers]], fmt="none", ecolor="#222",
                        elinewidth=0.7, capsize=1.6)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    if ref is not None:
        ax.axvline(ref, color="#888", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(n), labels)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#e3e7ec", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", length=0)
    if measured:
        top = max((e.high if e.high is not None else e.value) for e in measured)
        ax.set_xlim(left=left or 0, right=top * (3.0 if log else 1.28) if any(e.note for e in measured)
                    else top * (1.6 if log else 1.05))
    if k > 1:
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=min(k, 5), frameon=False, borderaxespad=0.2)
    return html.svg(fig)


def lines(series: Sequence[tuple[str, Sequence[tuple[float, float, float | None, float | None]]]],
          marks: Sequence[tuple[float, float, str]], xlabel: str, ylabel: str) -> str:
    """One line per series of (x, y, low, high) points with whiskers; `marks` are starred and labelled."""
    fig, ax = html.figure(WIDTH_IN * 0.8, 2.9)
    xs_all: set[float] = set()
    for j, (name, points) in enumerate(series):
        pts = sorted(points)
        xs = [p[0] for p in pts]
        xs_all.update(xs)
        ys = [p[1] for p in pts]
        colour = html.PALETTE[j % len(html.PALETTE)]
        ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.3, color=colour, label=name)
        err = [(x, y, lo, hi) for x, y, lo, hi in pts if lo is not None and hi is not None]
        if err:
            ax.errorbar([e[0] for e in err], [e[1] for e in err], yerr=[[e[1] - e[2] for e in err],
                        [e[3] - e[1] for e in err]], fmt="none", ecolor=colour, elinewidth=0.8, capsize=2)
    for x, y, text in marks:
        ax.plot([x], [y], marker="*", markersize=13, color="#c62828", zorder=5, linestyle="none")
        ax.annotate(text, (x, y), xytext=(6, 8), textcoords="offset points", fontsize=7, color="#c62828",
                    fontweight="bold")
    if len(xs_all) <= 12:  # a sweep (num_workers): tick every value; a long series: matplotlib's ticks
        ax.set_xticks(sorted(xs_all))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(color="#e3e7ec", linewidth=0.6)
    ax.set_axisbelow(True)
    if len(series) > 1:
        ax.legend(frameon=False, fontsize=6.5)
    return html.svg(fig)


def forest(rows: Sequence[tuple[str, float, float, float, str]], threshold: float | None, xlabel: str) -> str:
    """Ratios with their intervals, one row each, coloured by outcome; 1 and ±threshold marked."""
    n = len(rows)
    fig, ax = html.figure(WIDTH_IN, 0.6 + 0.2 * n)
    for i, (_, ratio, lo, hi, outcome) in enumerate(rows):
        colour = html.STATUS_COLOURS.get(outcome, "#4269d0")
        ax.plot([lo, hi], [i, i], color=colour, linewidth=1.6, solid_capstyle="butt")
        ax.plot([ratio], [i], marker="o", markersize=3.6, color=colour)
    ax.axvline(1.0, color="#444", linewidth=0.8)
    if threshold is not None:
        for x in (1 + threshold, 1 / (1 + threshold)):
            ax.axvline(x, color="#999", linewidth=0.7, linestyle="--")
    ax.set_xscale("log")
    lo = min([r[2] for r in rows] + [1 / (1 + (threshold or 0.05))])
    hi = max([r[3] for r in rows] + [1 + (threshold or 0.05)])
    ax.set_xlim(lo / 1.08, hi * 1.08)
    ticks = [t for t in RATIO_TICKS if lo / 1.08 <= t <= hi * 1.08]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(range(n), [r[0] for r in rows])
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#e3e7ec", linewidth=0.6)
    ax.tick_params(axis="y", length=0)
    return html.svg(fig)
