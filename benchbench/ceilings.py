"""The device's own measured ceilings, and how close each result comes to them.

The tensor_ops suite measures two ceilings on every backend: `ceiling_matmul` (a large square matmul,
one per dtype) and `ceiling_copy` (a large device-to-device copy). A FLOP-bound result is divided by
the matmul ceiling of its backend and dtype, a bandwidth-bound one by the copy ceiling of its
backend. Unlike "% of peak" this needs no datasheet, so it means something on any CPU, GPU or Mac.

What bounds a result: its `metrics["bound"]` when the case declared one ("compute" -> matmul ceiling,
"memory" -> copy ceiling, anything else such as "link" or "overhead" -> no ceiling); otherwise
declared FLOPs mean compute-bound and declared bytes alone mean memory-bound. Pure functions of the
report: measuring never renders, rendering never measures.
"""

from __future__ import annotations

from collections.abc import Iterable

from benchbench.report import Result

CEILING_SUITE = "tensor_ops"
MATMUL_CEILING = "ceiling_matmul"
COPY_CEILING = "ceiling_copy"
DEFAULT_DTYPE = "float32"  # a FLOP-bound result without a dtype is compared with the float32 ceiling

_RATE = {"compute": "flops_per_s", "memory": "bytes_per_s"}


def bound(result: Result) -> str | None:
    """'compute', 'memory', or None when no ceiling applies (a link, overhead, or no declared work)."""
    declared = result.metrics.get("bound")
    if declared is not None:
        return declared if declared in _RATE else None
    if result.work.get("flops"):
        return "compute"
    if result.work.get("bytes"):
        return "memory"
    return None


def is_ceiling(result: Result) -> bool:
    return result.key.suite == CEILING_SUITE and result.key.benchmark in (MATMUL_CEILING, COPY_CEILING)


def find_ceiling(results: Iterable[Result], result: Result) -> Result | None:
    """The ceiling result that `result` is measured against, or None (none measured, or none applies).

    Same backend; for compute-bound results the matmul ceiling of the same dtype, for memory-bound
    ones the copy ceiling. Only ok ceilings count; if several match, the fastest is the ceiling.
    """
    kind = bound(result)
    if kind is None:
        return None
    rate = _RATE[kind]
    name = MATMUL_CEILING if kind == "compute" else COPY_CEILING
    dtype = result.key.dtype or DEFAULT_DTYPE
    best: Result | None = None
    best_rate = 0.0
    for c in results:
        k = c.key
        if k.suite != CEILING_SUITE or k.benchmark != name or k.backend != result.key.backend or not c.ok:
            continue
        if kind == "compute" and (k.dtype or DEFAULT_DTYPE) != dtype:
            continue
        value = c.derived().get(rate, 0.0)
        if value > best_rate:
            best, best_rate = c, value
    return best


def ceiling_fraction(results: Iterable[Result], result: Result) -> float | None:
    """Measured rate / ceiling rate (1.0 = at the ceiling; above 1 is possible, e.g. in cache), or None."""
    if not result.ok:
        return None
    ceiling = find_ceiling(results, result)
    if ceiling is None:
        return None
    rate = _RATE[bound(result) or "compute"]
    mine, top = result.derived().get(rate), ceiling.derived().get(rate)
    if not mine or not top:
        return None
    return mine / top

