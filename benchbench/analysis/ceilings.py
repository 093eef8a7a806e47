"""The device's own measured ceilings, and how close each result comes to them.

The tensor_ops suite measures two ceilings on every backend, each as the best of a small sweep:
`ceiling_matmul` (square matmuls of a few sizes and layouts, one per dtype) and `ceiling_copy` (large
device-to-device copies). A FLOP-bound result is divided by the matmul ceiling of its backend and
dtype, a bandwidth-bound one by the copy ceiling of its backend. Unlike "% of peak" this needs no
datasheet, so it means something on any CPU, GPU or Mac.

A ceiling is the best rate measured for it in the run: when an ordinary case beats the ceiling case
(a size that fits the caches, an in-place op that a CPU need not read before writing), that case's
rate is the ceiling and the ceiling says which case set it, so no result is above 100%. There is a
ceiling only where the report holds a measured ceiling case.

What bounds a result: its `bound` field when the case declared one ("compute" -> matmul ceiling,
"memory" -> copy ceiling, anything else such as "link" or "overhead" -> no ceiling); otherwise
declared FLOPs mean compute-bound and declared bytes alone mean memory-bound. Pure functions of the
report: measuring never renders, rendering never measures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from benchbench.model.report import Result

CEILING_SUITE = "tensor_ops"
MATMUL_CEILING = "ceiling_matmul"
COPY_CEILING = "ceiling_copy"
DEFAULT_DTYPE = "float32"  # a FLOP-bound result without a dtype is compared with the float32 ceiling

_RATE = {"compute": "flops_per_s", "memory": "bytes_per_s"}


def bound(result: Result) -> str | None:
    """'compute', 'memory', or None when no ceiling applies (a link, overhead, or no declared work)."""
    declared = result.bound
    if declared is not None:
        return declared if declared in _RATE else None
    if result.work.get("flops"):
        return "compute"
    if result.work.get("bytes"):
        return "memory"
    return None


def is_ceiling(result: Result) -> bool:
    return result.key.suite == CEILING_SUITE and result.key.benchmark in (MATMUL_CEILING, COPY_CEILING)


@dataclass(frozen=True)
class Ceiling:
    """The ceiling a result is held against: the best rate of its kind in the run, and who set it."""

    kind: str  # "compute" or "memory"
    rate: float  # FLOP/s or bytes/s
    set_by: Result  # the result with that rate: the ceiling case, or an ordinary case that beat it
    measured: Result  # the ceiling case itself (the best of them, if several)

    @property
    def raised(self) -> bool:
        """An ordinary case beat the ceiling case and set the ceiling."""
        return self.set_by is not self.measured


def _same_group(kind: str, a: Result, b: Result) -> bool:
    if a.key.backend != b.key.backend:
        return False
    return kind == "memory" or (a.key.dtype or DEFAULT_DTYPE) == (b.key.dtype or DEFAULT_DTYPE)


def find_ceiling(results: Iterable[Result], result: Result) -> Ceiling | None:
    """The ceiling that `result` is measured against, or None (no ceiling case measured, or none applies).

    Same backend; for compute-bound results the matmul ceiling of the same dtype, for memory-bound
    ones the copy ceiling. Only ok results count; the ceiling case with the best rate is the measured
    ceiling, and any ok result of the same kind and group with a higher rate raises it.
    """
    kind = bound(result)
    if kind is None:
        return None
    rate = _RATE[kind]
    name = MATMUL_CEILING if kind == "compute" else COPY_CEILING
    results = list(results)
    measured: Result | None = None
    best: Result | None = None
    best_rate = measured_rate = 0.0
    for c in results:
        if not c.ok or not _same_group(kind, c, result):
            continue
        is_ceiling_case = c.key.suite == CEILING_SUITE and c.key.benchmark == name
        if not is_ceiling_case and bound(c) != kind:
            continue
        value = c.derived().get(rate) or 0.0
        if is_ceiling_case and value > measured_rate:
            measured, measured_rate = c, value
        if value > best_rate or (value == best_rate and is_ceiling_case):
            best, best_rate = c, value
    if measured is None or best is None:
        return None
    if best_rate <= measured_rate:
        best = measured
    return Ceiling(kind=kind, rate=best_rate, set_by=best, measured=measured)


def ceiling_fraction(results: Iterable[Result], result: Result) -> float | None:
    """Measured rate / ceiling rate (1.0 = at the ceiling, never above: a faster case raises it), or None."""
    if not result.ok:
        return None
    ceiling = find_ceiling(results, result)
    if ceiling is None:
        return None
    mine = result.derived().get(_RATE[ceiling.kind])
    if not mine or not ceiling.rate:
        return None
    return mine / ceiling.rate
