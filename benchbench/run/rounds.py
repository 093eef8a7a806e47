"""Rounds: the order a round visits the cases in, which side goes first, and how a case's result
grows round by round.

Pure functions, no processes: the session (`session.py`) drives the workers and calls these.

- Every round visits the cases in its own order, shuffled from the run's seed and the round's index
  (recorded in the report), so drift during a run and the luck of one process spread over all cases
  instead of landing on whichever case ran at a bad moment.
- With two sides (`ab`), round r runs both sides on the same order, and the side that goes first
  alternates A B, B A, A B, ... (an ABBA design), so a machine that slows down over a minute hits both
  sides alike and neither always runs in a warmer or colder state.
- A case that failed, timed out or was skipped in a round is not run again in later rounds: its
  result stays what that round gave (keeping the samples of the rounds before it).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypeVar

from benchbench.model.report import Result
from benchbench.model.stats import health_flags

T = TypeVar("T")

# flags a result's statistics decide; recomputed for the merged result rather than carried over
STATS_FLAGS = ("high-spread", "few-samples", "rounds-disagree")


def round_seed(seed: int, round_index: int) -> int:
    return (seed * 1_000_003 + round_index * 7919) % (2**63)


def round_order(items: Sequence[T], seed: int, round_index: int) -> list[T]:
    """The order round `round_index` visits `items` in: a seeded shuffle, the same on every machine."""
    out = list(items)
    random.Random(round_seed(seed, round_index)).shuffle(out)
    return out


def side_order(n_sides: int, round_index: int) -> list[int]:
    """Which side runs first in this round: 0 1, 1 0, 0 1, ... (ABBA across consecutive rounds)."""
    order = list(range(n_sides))
    return order if round_index % 2 == 0 else order[::-1]


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _kept(v: Any) -> bool:
    """Metrics a round record keeps: numbers (merged as the median), flags (merged as any), and lists of
    numbers, a round's own repeats (e.g. its cold compiles; the merged result keeps the last round's)."""
    if isinstance(v, list):
        return bool(v) and all(_numeric(x) for x in v)
    return isinstance(v, (int, float))


def merge_round(acc: Result | None, new: Result, round_index: int, position: int,
                extra: dict[str, Any] | None = None) -> Result:
    """Fold one round's result for a case into what the earlier rounds gave.

    Samples are appended with a round record (index, position in the round's order, sample count,
    calls per sample, warm-up, first call, peak memory, the round's numeric and boolean metrics and lists of
    numbers). Numeric
    metrics of the merged result are medians over rounds, a boolean is true when it was true in any round
    (e.g. "the image set was made in this run"), other metrics and the typed fields (bound, memory_kind, ...)
    are the last round's; peak memory is the largest; the first round's warm-up and first call stand for
    the case. A round that did not end ok ends the case with its status. `extra` goes into the round record as it is (block-interleaved
    rounds: their window count).
    """
    if new.status != "ok":
        if acc is None or not acc.ok:
            return new
        reason = f"round {round_index + 1}: {new.reason}" if new.reason else f"round {round_index + 1}"
        return replace(acc, status=new.status, reason=reason, details=new.details,
                       duration_s=(acc.duration_s or 0.0) + (new.duration_s or 0.0))
    record = {"round": round_index, "position": position, "n": len(new.samples), "loops": new.loops_per_sample,
              "warmup": new.warmup, "first_call_s": new.first_call_s, "peak_memory_bytes": new.peak_memory_bytes,
              "duration_s": new.duration_s,
              "metrics": {k: v for k, v in new.metrics.items() if _kept(v)}, **(extra or {})}
    if acc is None or not acc.ok:
        rounds, samples, first = [record], list(new.samples), new
    else:
        # an ok result has samples, so Result.__post_init__ has given it its round records
        rounds, samples, first = [*acc.rounds, record], [*acc.samples, *new.samples], acc
    metrics = dict(new.metrics)
    for k in {k for r in rounds for k in r.get("metrics") or {}}:
        values = [r["metrics"][k] for r in rounds if k in (r.get("metrics") or {})]
        if all(isinstance(v, bool) for v in values):
            metrics[k] = any(values)
        elif all(_numeric(v) for v in values):
            metrics[k] = statistics.median(values)
    peaks = [r["peak_memory_bytes"] for r in rounds if r.get("peak_memory_bytes") is not None]
    merged = Result(
        key=new.key, status="ok", reason=None, definition_hash=new.definition_hash, timing_method=new.timing_method,
        samples=samples, loops_per_sample=first.loops_per_sample, warmup=first.warmup,
        first_call_s=first.first_call_s, work=new.work, metrics=metrics, flags=[],
        peak_memory_bytes=max(peaks) if peaks else None,
        duration_s=sum(r.get("duration_s") or 0.0 for r in rounds), details=None, rounds=rounds,
        **new.typed_values(),
    )
    kept = [f for f in dict.fromkeys([*(acc.flags if acc is not None and acc.ok else []), *new.flags])
            if f not in STATS_FLAGS]
    merged.flags = kept + [f for f in health_flags(merged.stats, None, None) if f in STATS_FLAGS]
    return merged
