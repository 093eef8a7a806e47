"""How instruction counts compare: a tolerance rule, not a significance test.

An instruction count (benchbench/measure/callgrind.py) is exact up to small interpreter jitter, so a change
of the median count beyond a small relative tolerance is a real change of the work done per call,
and anything within it is `same`. There is no sampling distribution to test, and no test is
pretended. One guard: a change beyond the tolerance counts only when every repeat of one side lies
beyond every repeat of the other (the ranges do not overlap). When they overlap, the counts are not
deterministic enough to call it (an allocator warming up, say), and the verdict is `noisy`.

Instruction counts see the CPU work of the calling thread only: GPU kernels, memory bandwidth, cache
misses and other threads are invisible to them. `disagreement` points out where a time comparison
and an instruction comparison of the same case tell different stories.

Pure functions of numbers; no files, no printing.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from benchbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from benchbench.model.report import CaseKey


class Row(Protocol):
    """What `disagreements` reads of a comparison row (compare.Row), named here so that this module does
    not import compare, which imports it."""

    key: Any
    verdict: str
    change: Any

METHOD = "callgrind-instructions"
DEFAULT_TOLERANCE = 0.005  # 0.5%


@dataclass(frozen=True)
class CountChange:
    """other/base of the median instructions per call, and the jitter seen within each side."""

    verdict: str  # slower (more instructions), faster (fewer), same, noisy
    ratio: float
    low: float  # the smallest and largest ratio any pair of repeats gives
    high: float
    jitter: float  # the larger relative range (max - min) / median of the two sides
    tolerance: float

    @property
    def change(self) -> float:
        return self.ratio - 1.0


def allocators_apart(result: Any) -> bool:
    """Whether a count result leaves the memory allocators' internals out of its samples (benchbench/measure/callgrind.py
    does where the libc has symbols for them; reports made before it did, or on a libc without them, do not)."""
    info = (getattr(result, "metrics", None) or {}).get("instructions")
    return bool(isinstance(info, dict) and info.get("allocator_functions"))


def check_tolerance(value: float, what: str = "instructions tolerance") -> float:
    if not 0 < value < 1:
        raise UserError(f"{what} must be between 0% and 100%, got {100 * value:g}%")
    return value


def relative_range(values: Sequence[float]) -> float:
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med > 0 else float("inf")


def classify_counts(base: Sequence[float], other: Sequence[float],
                    tolerance: float = DEFAULT_TOLERANCE) -> CountChange:
    """Compare two sets of repeated instruction counts (per call) under a relative tolerance.

    `slower` when the median count grew by more than the tolerance and every repeat of `other` lies above
    every repeat of `base`, `faster` likewise downwards, `same` within the tolerance; `noisy` when the
    median moved beyond the tolerance but the repeats of the two sides overlap.
    """
    if not base or not other:
        raise ValueError("classify_counts needs at least one count on each side")
    mb, mo = statistics.median(base), statistics.median(other)
    if mb <= 0 or mo <= 0:
        raise ValueError("instruction counts must be positive")
    ratio = mo / mb
    low, high = min(other) / max(base), max(other) / min(base)
    jitter = max(relative_range(base), relative_range(other))
    if ratio > 1.0 + tolerance:
        verdict = "slower" if low > 1.0 else "noisy"
    elif ratio < 1.0 / (1.0 + tolerance):
        verdict = "faster" if high < 1.0 else "noisy"
    else:
        verdict = "same"
    return CountChange(verdict, ratio, low, high, jitter, tolerance)


# --- time and instructions side by side -----------------------------------------------------------------
UP, DOWN, FLAT = "up", "down", "flat"


def _direction(verdict: str | None) -> str | None:
    return {"slower": UP, "faster": DOWN, "same": FLAT}.get(verdict or "")


@dataclass(frozen=True)
class Disagreement:
    """The time and the instruction count of one case moving differently: each direction is up, down or
    flat (compare's slower, faster, same), with the ratios (current / baseline) when known."""

    time: str
    instructions: str
    time_ratio: float | None = None
    instructions_ratio: float | None = None
    key: CaseKey | None = None

    @property
    def kind(self) -> str:
        """instructions-only: more (or less) CPU work without a measurable change in time (cheap work, or
        within timing noise). time-only: the time moved where counts cannot see (memory bandwidth,
        caches, other threads, the GPU, the machine). opposite: they move in opposite directions."""
        if self.time == FLAT:
            return "instructions-only"
        if self.instructions == FLAT:
            return "time-only"
        return "opposite"

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.key.label if self.key is not None else None, "kind": self.kind, "time": self.time,
                "instructions": self.instructions, "time_ratio": self.time_ratio,
                "instructions_ratio": self.instructions_ratio}


def disagreement(time_verdict: str | None, instructions_verdict: str | None,
                 time_ratio: float | None = None, instructions_ratio: float | None = None,
                 key: CaseKey | None = None) -> Disagreement | None:
    """Where the time and the instruction count of one case tell different stories, else None.

    Verdicts are compare's (slower / faster / same / noisy / ...). Only decided verdicts count: a noisy
    time says nothing, so it cannot disagree.
    """
    t, i = _direction(time_verdict), _direction(instructions_verdict)
    if t is None or i is None or t == i:
        return None
    return Disagreement(t, i, time_ratio, instructions_ratio, key)


def disagreements(time_rows: Sequence[Row], instruction_rows: Sequence[Row]) -> list[Disagreement]:
    """Match two comparisons' rows (time and instructions, same reports' cases) by key; where they disagree."""
    by_key = {r.key: r for r in instruction_rows}
    out = []
    for t in time_rows:
        i = by_key.get(t.key)
        if i is None:
            continue
        found = disagreement(t.verdict, i.verdict, t.change.ratio if t.change else None,
                             i.change.ratio if i.change else None, t.key)
        if found:
            out.append(found)
    return out
