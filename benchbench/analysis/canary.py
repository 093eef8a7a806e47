"""Reading the machine canary a report holds (`benchbench.measure.canary` measures it).

Statistics inside one run cannot see the machine itself changing speed between runs (a noisy
neighbour on a shared VM, throttling, a power state): on such machines two back-to-back runs of the
same code can differ by 2x with tight spreads on both sides. The canary is the same work every time,
so comparing it across reports (and start vs end within one) tells "the machine was slower" apart
from "the code got slower".
"""

from __future__ import annotations

import math
import statistics
from typing import Any


def speed_ratio(a: dict[str, float] | None, b: dict[str, float] | None) -> float | None:
    """Geometric mean over the canary's workloads of time(b) / time(a); None when not comparable."""
    if not a or not b:
        return None
    ratios = [b[k] / a[k] for k in a if isinstance(a.get(k), (int, float)) and isinstance(b.get(k), (int, float))
              and a[k] > 0 and b[k] > 0]
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None


def run_canary(report_env: dict[str, Any], when: str) -> dict[str, float] | None:
    """The canary timings a report's environment holds for `start` or `end` of its run, or None."""
    value = (report_env.get("canary") or {}).get(when)
    return value if isinstance(value, dict) else None


# --- reading a report's canary: what the gate uses ---------------------------------------------------
# The canary's own noise decides how it is read. Each round's canary is the median of 15-60 calls,
# timed in the parent process just before the round starts; on a busy 2-core machine the one-element
# torch add swings 2-4x between rounds of one run (dispatch is a few microseconds: a single
# preemption moves it), while the pure-Python loop, whose calls are longer, tracks the load. So the
# gate reads the Python loop only, and reads a run's speed as the median over its rounds, which
# ignores a single unlucky round.
SPEED_KEY = "python_loop_s"


def _loop(value: Any) -> float | None:
    if not isinstance(value, dict):
        return None
    v = value.get(SPEED_KEY)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def run_canaries(report: Any) -> list[float]:
    """A report's canary times (Python loop, seconds), one per round; start and end when it has no
    per-round canaries (reports written before rounds existed)."""
    per_round = [v for v in (_loop(r.get("canary")) for r in report.rounds or [] if isinstance(r, dict))
                 if v is not None]
    if per_round:
        return per_round
    env = report.environment or {}
    return [v for v in (_loop(run_canary(env, w)) for w in ("start", "end")) if v is not None]


def run_speed(report: Any) -> float | None:
    """The time of the canary's Python loop over a run: the median of its rounds' canaries."""
    values = run_canaries(report)
    return statistics.median(values) if values else None


def between_runs(base: Any, other: Any) -> float | None:
    """How much longer the canary took in `other` than in `base` (1.10: the machine was 10% slower)."""
    a, b = run_speed(base), run_speed(other)
    return b / a if a and b else None


def within_run(report: Any) -> float | None:
    """How much the machine's speed moved during one run: slowest over fastest of its canaries (every
    round's, and the run's start and end), dropping the single most extreme value at each end when
    there are five or more (one preempted canary is the canary's noise, not the machine's). None with
    fewer than two canaries."""
    env = report.environment or {}
    ends = [v for v in (_loop(run_canary(env, w)) for w in ("start", "end")) if v is not None]
    per_round = [v for v in (_loop(r.get("canary")) for r in report.rounds or [] if isinstance(r, dict))
                 if v is not None]
    values = sorted(per_round + ends if per_round else ends)
    if len(values) < 2:
        return None
    if len(values) >= 5:
        values = values[1:-1]
    return values[-1] / values[0]
