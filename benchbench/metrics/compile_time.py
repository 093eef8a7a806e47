"""Compile time as a metric: the first call's compile cost of compiled modes, over rounds, plus graph breaks
and recompiles.

A suite that compiles records, per round, `compile_s` (what the compiling calls took beyond as many
steady calls; suites/training.py), and where it can `dynamo_s` / `inductor_s` (the split that
`torch._dynamo.utils.compilation_time_metrics` gives: `phases()` below), `graph_breaks`, `recompiles`,
and the graph breaks' reasons (`graph_break_reasons`). Every compiled case runs in a fresh process
each round, and compiles cold there `ctx.compile_repeats` times (benchbench/measure/cold_compile.py): every
compile goes into the round's `compile_runs_s`, and `compile_s` is their geometric mean.

Compile time is noisy at the scale of seconds, so it is compared like time, over rounds, in two levels:
a round's value is the mean of the logarithms of its compiles (the process is the unit: compiles in one
process share its luck, so they are not independent samples), and the rounds' values go into a t
interval at 95%: paired where the two reports' rounds were measured together (`ab`: a one-sample t on
the rounds' differences, df = rounds - 1, so a slow minute of the machine, which hits both sides of a
round, cancels), else Welch's t. `worse` when the whole interval lies above 1 + threshold (default 10%,
`compile_threshold` in the gate's rules), `better` when it lies below 1 / (1 + threshold), `same` when
it lies within, else `noisy`. With one round per side only `same` or `noisy` can come out. A new graph break or recompile is
`worse` on its own, whatever the seconds say, and the row names the new breaks' reasons.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from benchbench.metrics.base import Metric, MetricRow, parse_percent
from benchbench.model.stats import t_quantile

NAME = "compile"
DEFAULT_THRESHOLD = 0.10
LEVEL = 0.95
SETTINGS = {"compile_threshold": DEFAULT_THRESHOLD}
COUNTS = {"graph_breaks": "graph break", "recompiles": "recompile"}  # a rise of one is a regression


def parse_setting(name: str, value: Any, where: str) -> float:
    """A rules-file setting of this metric: compile_threshold ("10%")."""
    return parse_percent(value, f"{where}: {name}")


RUNS = "compile_runs_s"  # a round's cold compiles (benchbench/measure/cold_compile.py)


def round_compiles(result: Any) -> list[list[float]]:
    """Each round's cold compiles, in seconds: its `compile_runs_s`, else its one `compile_s`."""
    if result is None or not getattr(result, "ok", False):
        return []
    out = []
    for r in result.rounds:
        m = r.get("metrics") or {}
        runs = m.get(RUNS)
        if isinstance(runs, list) and runs and all(_number(v) for v in runs):
            out.append([float(v) for v in runs])
        elif _number(m.get("compile_s")):
            out.append([float(m["compile_s"])])
    if not out:
        runs, one = (result.metrics or {}).get(RUNS), (result.metrics or {}).get("compile_s")
        if isinstance(runs, list) and runs and all(_number(v) for v in runs):
            out.append([float(v) for v in runs])
        elif _number(one):
            out.append([float(one)])
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def round_means(rounds: Sequence[Sequence[float]]) -> list[float]:
    """Each round's value: the geometric mean of its compiles (all above 0)."""
    return [math.exp(statistics.fmean(math.log(v) for v in r)) for r in rounds]


def round_values(result: Any, name: str = "compile_s") -> list[float]:
    """Each round's value of a compile metric (the result's own when it has no round records)."""
    if result is None or not getattr(result, "ok", False):
        return []
    values = [r["metrics"][name] for r in result.rounds if name in (r.get("metrics") or {})]
    if not values and isinstance((result.metrics or {}).get(name), (int, float)):
        values = [result.metrics[name]]
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def value(result: Any) -> float | None:
    """A result's compile time: the median over its rounds."""
    values = round_values(result)
    return statistics.median(values) if values else None


def paired_interval(d: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(ratio, low, high) from per-round log differences other - base: a one-sample t, df = len(d) - 1."""
    mean = statistics.fmean(d)
    if len(d) < 2:
        return math.exp(mean), -math.inf, math.inf
    se = statistics.stdev(d) / math.sqrt(len(d))
    half = t_quantile(0.5 + level / 2, len(d) - 1) * se
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def round_indices(result: Any) -> list[int]:
    """The round index of each of `round_compiles(result)`'s rounds (their position where none is recorded)."""
    if result is None or not getattr(result, "ok", False):
        return []
    return [int(r.get("round", i)) for i, r in enumerate(result.rounds)
            if isinstance(r.get("metrics"), dict) and (isinstance(r["metrics"].get(RUNS), list)
                                                        or _number(r["metrics"].get("compile_s")))]


def interval(base: Sequence[float], other: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(ratio of geometric means other/base, low, high): Welch's t on logs; the point alone with < 2 rounds."""
    la, lb = [math.log(x) for x in base], [math.log(x) for x in other]
    d = statistics.fmean(lb) - statistics.fmean(la)
    if len(la) < 2 or len(lb) < 2:
        return math.exp(d), -math.inf, math.inf
    wa, wb = statistics.variance(la) / len(la), statistics.variance(lb) / len(lb)
    se = math.sqrt(wa + wb)
    if se == 0:
        return math.exp(d), math.exp(d), math.exp(d)
    df = (wa + wb) ** 2 / (wa**2 / (len(la) - 1) + wb**2 / (len(lb) - 1))
    half = t_quantile(0.5 + level / 2, max(1, int(df))) * se
    return math.exp(d), math.exp(d - half), math.exp(d + half)


def _count(result: Any, name: str) -> float | None:
    values = round_values(result, name)
    return statistics.median(values) if values else None


def _reasons(result: Any) -> list[str]:
    got = (result.metrics or {}).get("graph_break_reasons") if result is not None else None
    return [str(r) for r in got] if isinstance(got, (list, tuple)) else []


def compare_results(key: Any, base: Any, other: Any, settings: Mapping[str, Any] | None = None) -> MetricRow | None:
    """The compile rule on two results; None when neither side compiled."""
    threshold = float((settings or {}).get("compile_threshold") or DEFAULT_THRESHOLD)
    ra, rb = round_compiles(base), round_compiles(other)
    a, b = [statistics.median(r) for r in ra], [statistics.median(r) for r in rb]
    if not a and not b:
        return None
    ma, mb = (statistics.median(a) if a else None), (statistics.median(b) if b else None)
    if not a or not b:
        return MetricRow(NAME, key, ma, mb, "incomparable", "compile time recorded on one side only")
    risen = []
    for name, word in COUNTS.items():
        ca, cb = _count(base, name), _count(other, name)
        if ca is not None and cb is not None and cb > ca:
            risen.append(f"{word}s {ca:g} -> {cb:g}")
    details: dict[str, Any] = {"threshold": threshold, "rounds": [len(a), len(b)],
                               "compiles": [sum(map(len, ra)), sum(map(len, rb))]}
    if risen:
        new = [r for r in _reasons(other) if r not in set(_reasons(base))]
        why = "; ".join(risen) + (f" (new: {'; '.join(new)})" if new else "")
        return MetricRow(NAME, key, ma, mb, "worse", why, mb / ma if ma > 0 else None, {**details, "new_breaks": new})
    if min(min(r) for r in ra) <= 0 or min(min(r) for r in rb) <= 0:
        return MetricRow(NAME, key, ma, mb, "incomparable", "a compile took no time (nothing to compare)")
    ma_, mb_ = round_means(ra), round_means(rb)
    ia, ib = round_indices(base), round_indices(other)
    if (settings or {}).get("paired") and len(ia) == len(ra) and len(ib) == len(rb):
        by_a, by_b = dict(zip(ia, ma_, strict=True)), dict(zip(ib, mb_, strict=True))
        common = sorted(set(by_a) & set(by_b))
        if len(common) >= 2:
            d = [math.log(by_b[i]) - math.log(by_a[i]) for i in common]
            return rounds_row(NAME, key, ma_, mb_, threshold, "compile time", {**details, "paired": len(common)},
                              paired_interval(d))
    return rounds_row(NAME, key, ma_, mb_, threshold, "compile time", details)


def rounds_row(name: str, key: Any, a: Sequence[float], b: Sequence[float], threshold: float, quantity: str,
               details: dict[str, Any], change: tuple[float, float, float] | None = None) -> MetricRow:
    """The rule over rounds that compile time and energy share: Welch's interval of the ratio (`interval`), or
    the `change` (ratio, low, high) given, against ±`threshold`: `worse` above it, `better` below, `same`
    within, `noisy` straddling (with one round a side: `same` when the ratio itself is within). `quantity`
    names the values in the row's text."""
    ma, mb = statistics.median(a), statistics.median(b)
    ratio, low, high = change or interval(a, b)
    details = {**details, "low": low, "high": high}
    up, down = 1 + threshold, 1 / (1 + threshold)
    pct = f"{100 * (ratio - 1):+.1f}%"
    if low > up:
        return MetricRow(name, key, ma, mb, "worse", f"{pct} {quantity}, the {LEVEL:.0%} interval above "
                         f"+{100 * threshold:g}%", ratio, details)
    if high < down:
        return MetricRow(name, key, ma, mb, "better", f"{pct} {quantity}", ratio, details)
    if low >= down and high <= up:
        return MetricRow(name, key, ma, mb, "same", f"{pct}, within ±{100 * threshold:g}%", ratio, details)
    if len(a) < 2 or len(b) < 2:
        within = down <= ratio <= up
        return MetricRow(name, key, ma, mb, "same" if within else "noisy",
                         f"{pct} in one round per side" + ("" if within else ": more rounds to tell"), ratio, details)
    return MetricRow(name, key, ma, mb, "noisy", f"{pct}: the interval straddles ±{100 * threshold:g}%", ratio,
                     details)


# --- recording, for suites that compile -----------------------------------------------------------------
DYNAMO_TOTAL = "_compile.compile_inner"  # a frame's whole compile: tracing, then the backend compiler
BACKEND = "OutputGraph.call_user_compiler"  # the backend compiler's part (AOTAutograd and Inductor)


def phases(before: Mapping[str, Sequence[float]] | None = None,
           table: Mapping[str, Sequence[float]] | None = None) -> dict[str, float]:
    """Seconds since `before` (a `snapshot()`) in Dynamo's own tracing (`dynamo_s`) and in the backend compiler
    it calls, AOTAutograd and Inductor (`inductor_s`), from `torch._dynamo.utils.compilation_time_metrics`;
    empty where that torch does not keep them."""
    if table is None:
        try:
            from torch._dynamo.utils import compilation_time_metrics as table  # type: ignore[no-redef]
        except ImportError:  # pragma: no cover - a torch without dynamo
            return {}
    before = before or {}

    def spent(key: str) -> float | None:
        return float(sum(table[key][len(before.get(key, ())):])) if key in table else None

    total, backend = spent(DYNAMO_TOTAL), spent(BACKEND)
    out = {}
    if total is not None:
        out["dynamo_s"] = max(0.0, total - (backend or 0.0))
    if backend is not None:
        out["inductor_s"] = backend
    return out


def snapshot() -> dict[str, list[float]]:
    """The compile-time table as it is now, to subtract from later (see `phases`)."""
    try:
        from torch._dynamo.utils import compilation_time_metrics
    except ImportError:  # pragma: no cover
        return {}
    return {k: list(v) for k, v in compilation_time_metrics.items()}


def break_reason(text: str, width: int = 160) -> str:
    """Dynamo's graph-break message in one line: its title and its explanation."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if not lines:
        return ""
    why = next((ln.removeprefix("Explanation:").strip() for ln in lines[1:] if ln.startswith("Explanation:")), "")
    one = lines[0] + (f": {why}" if why else "")
    return one if len(one) <= width else one[: width - 1] + "…"


def break_counts() -> dict[str, int]:
    """Dynamo's graph breaks so far in this process, reason -> count (to subtract from later)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover
        return {}
    return dict(counters["graph_break"])


def graph_break_reasons(before: Mapping[str, int] | None = None, now: Mapping[str, int] | None = None) -> list[str]:
    """The graph breaks Dynamo counted since `before` (a `break_counts()`), each reason in one line."""
    now = break_counts() if now is None else now
    before = before or {}
    return sorted({break_reason(r) for r, n in now.items() if n > before.get(r, 0)})


COMPILE_TIME = Metric(
    name=NAME, title="compile time", quantity="compile time", unit="seconds", rule="rounds",
    help="the first call's compile time of compiled modes (Dynamo / Inductor where known), graph breaks, recompiles",
    compare_results=compare_results, value=value, settings=SETTINGS, parse_setting=parse_setting,
    rule_text=(f"Compile time regresses when the {LEVEL:.0%} Welch interval over rounds lies above "
               f"+{100 * DEFAULT_THRESHOLD:g}% (`compile_threshold` in the rules), and on any new graph break or "
               "recompile."),
    order=30,
)

METRICS = (COMPILE_TIME,)
