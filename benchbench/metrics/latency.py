"""Latency percentiles (p50, p90, p99) and tokens/s as metrics, read from per-call samples and compared
beside the time.

A case that times one call per sample and records a percentile summary (benchbench/model/percentiles.py; the
inference suite does) keeps every call in its report, round by round. These metrics read them back:

- `latency_p50`, `latency_p90`, `latency_p99`: the percentile of all calls, pooled over the rounds;
- `tokens_per_s`: for cases whose work is counted in tokens, tokens made over the total time of all
  calls (the decode rate: a slow call costs tokens, as it does for a server).

All four compare by one rule, the ratio of the two sides' statistic with a two-stage bootstrap interval
that resamples rounds, then calls within them (benchbench/model/quantile_ratio.py), at 95%, widened for few
rounds (`few_rounds`: measured A/A pairs across runs gave false alarms without it). `worse` when the
whole interval lies beyond the threshold (latency up by more than it, tokens/s down by more than it),
`better` beyond it the other way, `same` when the interval lies within ±threshold, else `noisy`. A
`worse` when the true ratio sits at the threshold has a chance of 2.5% (one tail of the 95% interval),
if the bootstrap covers; an A/A pair, far below the threshold, much less.

A tail needs calls beyond it: a percentile is not judged from fewer calls per side than `JUDGE_CALLS`
says (p99: 100, so at least one call beyond it); below that the row is `incomparable`, "too few calls
to judge p99", never a verdict. Thresholds are per case in the gate's rules: `p99_threshold` (default
20%: a tail moves more than a median between processes), `latency_threshold` (p50 and p90, 10%),
`tokens_threshold` (10%). How often this rule cries wolf on this machine, and what it catches, is
measured by benchmarks/p99_aa.py (docs/inference.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from benchbench.metrics.base import Metric, MetricRow, parse_percent
from benchbench.model.percentiles import PERCENTILES, has_summary
from benchbench.model.quantile_ratio import DEFAULT_LEVEL, RatioInterval, ratio_interval
from benchbench.model.stats import t_quantile

# percentile -> the fewest calls per side it is judged from (p99: one call beyond it in 100)
JUDGE_CALLS = {"p50": 10, "p90": 20, "p99": 100}
THRESHOLDS = {"p50": "latency_threshold", "p90": "latency_threshold", "p99": "p99_threshold"}
DEFAULTS = {"latency_threshold": 0.10, "p99_threshold": 0.20, "tokens_threshold": 0.10}
TOKENS = "tokens"  # the work unit (Case items_unit) whose rate is compared as tokens/s


def parse_setting(name: str, value: Any, where: str) -> float:
    """A rules-file setting of these metrics: latency_threshold, p99_threshold, tokens_threshold ("20%")."""
    return parse_percent(value, f"{where}: {name}")


def per_call_rounds(result: Any) -> list[list[float]]:
    """A result's per-call samples, round by round; empty when its samples are not single calls (a block of
    calls per sample averages the tail away) or it kept no percentile summary."""
    if result is None or not getattr(result, "ok", False) or result.loops_per_sample != 1:
        return []
    if not has_summary(result.metrics or {}):
        return []
    return [r for r in result.round_samples if r]


def _pooled(result: Any) -> list[float]:
    return [x for r in per_call_rounds(result) for x in r]


def percentile_value(result: Any, name: str) -> float | None:
    """The percentile `name` (p50, p90, p99) of all of a result's calls; None when it has too few for it."""
    from benchbench.model.percentiles import percentiles

    xs = _pooled(result)
    return percentiles(xs)[name].value if xs else None


def tokens_per_call(result: Any) -> float | None:
    work = getattr(result, "work", None) or {}
    items = work.get("items")
    if work.get("items_unit") != TOKENS or not isinstance(items, (int, float)) or items <= 0:
        return None
    return float(items)


def tokens_value(result: Any) -> float | None:
    """Tokens made over the total time of all calls; None for a case not counted in tokens."""
    xs, items = _pooled(result), tokens_per_call(result)
    if not xs or items is None or sum(xs) <= 0:
        return None
    return items * len(xs) / sum(xs)


def _seed(key: Any) -> int:
    """A seed from the key alone: the four metrics of a key share one set of resamples per side."""
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:7], "little")


Z = 1.959963984540054  # the normal quantile a 95% percentile interval stands for


def few_rounds(iv: RatioInterval) -> tuple[float, float]:
    """The interval widened for few rounds: a bootstrap over G rounds sees only G process effects and
    under-covers when G is small, so its half-widths (in logs) are scaled by t(G - 1) / z, the few-clusters
    correction of Cameron, Gelbach and Miller (2008): x6.5 with 2 rounds per side, x2.2 with 3, x1.4 with 5,
    x1.15 with 10. With one round per side there is nothing to scale: the calls are taken as independent."""
    g = min(iv.rounds)
    if g < 2:
        return iv.low, iv.high
    k = t_quantile(0.5 + iv.level / 2, g - 1) / Z
    return iv.ratio * (iv.low / iv.ratio) ** k, iv.ratio * (iv.high / iv.ratio) ** k


def _classify(ratio: float, low: float, high: float, threshold: float, higher_is_worse: bool) -> str:
    up, down = 1 + threshold, 1 / (1 + threshold)
    if low > up:
        return "worse" if higher_is_worse else "better"
    if high < down:
        return "better" if higher_is_worse else "worse"
    if low >= down and high <= up:
        return "same"
    return "noisy"


def _why(verdict: str, what: str, ratio: float, low: float, high: float, threshold: float, rounds: tuple[int, int]
         ) -> str:
    pct = f"{100 * (ratio - 1):+.1f}% {what} [{100 * (low - 1):+.1f}%, {100 * (high - 1):+.1f}%]"
    one = " (one round per side: calls taken as independent)" if min(rounds) < 2 else ""
    return pct + {"worse": f", beyond {100 * threshold:g}%", "better": f", beyond {100 * threshold:g}%",
                  "same": f", within ±{100 * threshold:g}%",
                  "noisy": f": the interval straddles ±{100 * threshold:g}%"}[verdict] + one


def compare_percentile(name: str, key: Any, base: Any, other: Any, settings: Mapping[str, Any] | None = None
                       ) -> MetricRow | None:
    """The rule for one percentile (p50, p90, p99) of two results' per-call samples."""
    metric = f"latency_{name}"
    setting = THRESHOLDS[name]
    threshold = float((settings or {}).get(setting) or DEFAULTS[setting])
    a, b = per_call_rounds(base), per_call_rounds(other)
    if not a and not b:
        return None
    va = percentile_value(base, name) if a else None
    vb = percentile_value(other, name) if b else None
    if not a or not b:
        return MetricRow(metric, key, va, vb, "incomparable", "per-call samples on one side only")
    na, nb = sum(map(len, a)), sum(map(len, b))
    needs = JUDGE_CALLS[name]
    details: dict[str, Any] = {"threshold": threshold, "calls": [na, nb], "rounds": [len(a), len(b)],
                               "needs_calls": needs}
    if min(na, nb) < needs:
        return MetricRow(metric, key, va, vb, "incomparable", f"too few calls to judge {name}: {na} and {nb} "
                         f"(needs >= {needs} per side)", None, details)
    q = PERCENTILES[name][0]
    try:
        iv = ratio_interval(a, b, q, _seed(key))
    except ValueError as exc:
        return MetricRow(metric, key, va, vb, "incomparable", str(exc), None, details)
    low, high = few_rounds(iv)
    details.update(low=low, high=high, level=iv.level, bootstrap=[iv.low, iv.high])
    verdict = _classify(iv.ratio, low, high, threshold, higher_is_worse=True)
    return MetricRow(metric, key, va, vb, verdict, _why(verdict, name, iv.ratio, low, high, threshold, iv.rounds),
                     iv.ratio, details)


def compare_tokens(key: Any, base: Any, other: Any, settings: Mapping[str, Any] | None = None) -> MetricRow | None:
    """The rule for tokens/s: the ratio of mean call times, turned into a ratio of rates."""
    threshold = float((settings or {}).get("tokens_threshold") or DEFAULTS["tokens_threshold"])
    ta, tb = tokens_value(base), tokens_value(other)
    if ta is None and tb is None:
        return None
    if ta is None or tb is None:
        return MetricRow("tokens_per_s", key, ta, tb, "incomparable", "tokens/s recorded on one side only")
    a, b = per_call_rounds(base), per_call_rounds(other)
    details: dict[str, Any] = {"threshold": threshold, "calls": [sum(map(len, a)), sum(map(len, b))],
                               "rounds": [len(a), len(b)]}
    if tokens_per_call(base) != tokens_per_call(other):
        return MetricRow("tokens_per_s", key, ta, tb, "incomparable", "different tokens per call: "
                         f"{tokens_per_call(base):g} vs {tokens_per_call(other):g}", None, details)
    try:
        iv = ratio_interval(a, b, None, _seed(key))
    except ValueError as exc:
        return MetricRow("tokens_per_s", key, ta, tb, "incomparable", str(exc), None, details)
    wide_low, wide_high = few_rounds(iv)
    ratio, low, high = 1 / iv.ratio, 1 / wide_high, 1 / wide_low
    details.update(low=low, high=high, level=iv.level, bootstrap=[1 / iv.high, 1 / iv.low])
    verdict = _classify(ratio, low, high, threshold, higher_is_worse=False)
    return MetricRow("tokens_per_s", key, ta, tb, verdict, _why(verdict, "tokens/s", ratio, low, high, threshold,
                                                               iv.rounds), ratio, details)


def _percentile_metric(name: str) -> Metric:
    setting = THRESHOLDS[name]
    return Metric(
        name=f"latency_{name}", title=f"latency {name}", quantity=f"{name} latency", unit="seconds", rule="rounds",
        order=51,
        help=f"the {name} of per-call times (cases timed one call per sample), pooled over rounds",
        compare_results=lambda key, base, other, settings=None: compare_percentile(name, key, base, other, settings),
        value=lambda result: percentile_value(result, name), settings={setting: DEFAULTS[setting]},
        parse_setting=parse_setting,
        rule_text=(f"Latency {name} regresses when the {DEFAULT_LEVEL:.0%} two-stage bootstrap interval (rounds, "
                   f"then calls) of its ratio lies above +{100 * DEFAULTS[setting]:g}% (`{setting}` in the rules); "
                   f"it is not judged from fewer than {JUDGE_CALLS[name]} calls per side."),
    )


LATENCY_P50, LATENCY_P90, LATENCY_P99 = (_percentile_metric(n) for n in ("p50", "p90", "p99"))

TOKENS_PER_S = Metric(
    name="tokens_per_s", title="tokens/s", quantity="token rate", unit="per_second", rule="rounds",
    lower_is_better=False, order=50,
    help="tokens made over the total time of all calls, for cases counted in tokens (decode, prefill)",
    compare_results=compare_tokens, value=tokens_value, settings={"tokens_threshold": DEFAULTS["tokens_threshold"]},
    parse_setting=parse_setting,
    rule_text=(f"Tokens/s regresses when the {DEFAULT_LEVEL:.0%} two-stage bootstrap interval of its ratio lies below "
               f"1 / (1 + {100 * DEFAULTS['tokens_threshold']:g}%) (`tokens_threshold` in the rules)."),
)

LATENCY_METRICS = (TOKENS_PER_S, LATENCY_P50, LATENCY_P90, LATENCY_P99)
METRICS = LATENCY_METRICS
