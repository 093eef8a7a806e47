"""What a suite contributes to the report page: data that the core renders (`benchbench report --html`).

A suite module may define

    def page_blocks(runs: Sequence[page.Run], backend: bool) -> list[page.Block]
    def page_note(result: Result) -> str | None

`page_blocks` gets one `Run` per report that ran the suite (its name and that suite's results by key) and
returns blocks drawn in the suite's section of the page, after the throughput and ceiling charts and
before the table of every case: headings, notes, tables, bar charts and line charts. The blocks hold
results, not numbers to draw: the page computes each rate and its interval, scales the units and says
which cases were not measured, as it does for its own charts. `backend` says whether the page names
the backend in case labels (several backends on the page); `case_label` writes a label that way.
`page_note` gives a result's note in the table of every case (None: the note the result stores).

The lines a suite prints after a run come from its `notes(results) -> list[str]` hook; `derive(results)`
writes metrics across cases before either. See docs/writing-a-suite.md. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchbench.model.report import CaseKey, Result


@dataclass(frozen=True)
class Run:
    """One report's results of the suite."""

    name: str
    results: Mapping[CaseKey, Result]


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Status:
    """A table cell drawn as a status badge (ok, failed, skipped, timeout, ...)."""

    status: str


@dataclass(frozen=True)
class Table:
    """Rows of cells (text, numbers, or `Status`); `numeric` names the columns aligned as numbers."""

    rows: Sequence[Mapping[str, Any]]
    numeric: Sequence[str] = ()


@dataclass(frozen=True)
class Bars:
    """Throughput bars: one row per label, one bar per series. A series is (name, one (result, note) per
    label); the bar is the result's rate in `prefer`'s first kind of work, the note is written beside it."""

    labels: Sequence[str]
    series: Sequence[tuple[str, Sequence[tuple[Result | None, str]]]]
    caption: str
    prefer: Sequence[str] = ("items",)


@dataclass(frozen=True)
class Lines:
    """Throughput against a parameter: per series (name, (x, case label, result) points); a mark stars a
    point with its text. Points without a rate are listed under the chart as not measured."""

    series: Sequence[tuple[str, Sequence[tuple[float, str, Result | None]]]]
    xlabel: str
    caption: str
    marks: Sequence[tuple[float, Result, str]] = field(default_factory=tuple)
    prefer: Sequence[str] = ("items", "bytes", "flops")


Block = Heading | Note | Table | Bars | Lines


def case_label(key: CaseKey, backend: bool = True) -> str:
    """The case within its suite: `matmul[n=1024] cpu float32`."""
    return " ".join(p for p in (key.name, key.backend if backend else None, key.dtype, key.mode) if p)
