"""Rounds added until the answer is clear, without inflating false alarms: a group-sequential t interval.

Block-interleaved A/B (`benchbench/run/interleave.py`) gives one log ratio per round (a process pair). After
every round from `min_rounds` on, each undecided case is looked at: a t interval on its rounds' log
ratios, at the level this look may spend, decides it when the gate's limit 1 + threshold lies outside
the interval (above it: a regression; below it: not slower). A decided case gets no more rounds; the
others go on until `max_rounds` or the time budget.

Looking after every round and stopping at the first clear answer would, with a fixed 95% interval,
raise the false-alarm rate well above 5% (each look is another chance for noise to cross the line).
So the overall alpha is spent over the planned looks n = min_rounds .. max_rounds with a Lan-DeMets
spending function of the information fraction n / max_rounds; look n uses the increment
alpha(n / N) - alpha((n - 1) / N) (the first look takes everything up to it). By the union bound, the
chance that *any* look's interval misses the true ratio is at most the sum of the increments, alpha:
a false regression needs the true ratio at or below 1 + threshold and an interval wholly above it,
so it happens with probability at most alpha / 2, whatever the stopping, and so does calling a true
regression "not slower". The union bound ignores that looks are correlated, so the real rate is
lower still; `tests/test_sequential.py` pins it by simulation.

Spending functions (t = n / N):
- "obrien-fleming": 2 - 2 Phi(z(1 - alpha/2) / sqrt(t)): almost nothing early, nearly all of alpha
  at the last look. The default: with two or three rounds a t interval is wide whatever it spends
  (t(0.999, 2) is 22), so alpha spent there is mostly wasted.
- "pocock": alpha ln(1 + (e - 1) t): more even, decides clear cases sooner, costs more at the end.
- "fixed": one look, at max_rounds, with all of alpha (what `--rounds N` asks for).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from benchbench.errors import UserError

SPENDING = ("obrien-fleming", "pocock", "fixed")


@dataclass(frozen=True)
class Plan:
    """The planned looks of a sequential decision and how alpha is spent over them."""

    alpha: float = 0.05
    min_rounds: int = 3
    max_rounds: int = 12
    spending: str = "obrien-fleming"

    def __post_init__(self) -> None:
        if self.spending not in SPENDING:
            raise UserError(f"unknown spending function {self.spending!r} (known: {', '.join(SPENDING)})")
        if not 2 <= self.min_rounds <= self.max_rounds:
            raise UserError(f"sequential plan: need 2 <= min_rounds ({self.min_rounds}) <= max_rounds "
                            f"({self.max_rounds})")
        if not 0 < self.alpha < 0.5:
            raise UserError(f"sequential plan: alpha must be between 0 and 0.5, got {self.alpha:g}")

    @classmethod
    def fixed(cls, rounds: int, alpha: float = 0.05) -> Plan:
        """One look after exactly `rounds` rounds (two at least), with all of alpha."""
        n = max(2, rounds)
        return cls(alpha=alpha, min_rounds=n, max_rounds=n, spending="fixed")

    def spent(self, n: int) -> float:
        """Alpha spent up to and including the look after round n (0 before the first look)."""
        if n < self.min_rounds:
            return 0.0
        if n >= self.max_rounds or self.spending == "fixed":
            return self.alpha if n >= self.max_rounds else 0.0
        t = n / self.max_rounds
        if self.spending == "pocock":
            return self.alpha * math.log1p((math.e - 1) * t)
        z = NormalDist().inv_cdf(1 - self.alpha / 2)
        return 2 * (1 - NormalDist().cdf(z / math.sqrt(t)))

    def alpha_at(self, n: int) -> float:
        """The two-sided alpha the look after round n may use (0: no look there)."""
        if n < self.min_rounds or n > self.max_rounds:
            return 0.0
        return self.spent(n) - self.spent(n - 1)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "alpha-spending", "alpha": self.alpha, "min_rounds": self.min_rounds,
                "max_rounds": self.max_rounds, "spending": self.spending}

    @classmethod
    def from_dict(cls, d: Any) -> Plan | None:
        """A plan stored in a report, or None where there is none (or it cannot be read)."""
        if not isinstance(d, dict) or d.get("rule") != "alpha-spending":
            return None
        try:
            return cls(alpha=float(d["alpha"]), min_rounds=int(d["min_rounds"]), max_rounds=int(d["max_rounds"]),
                       spending=str(d["spending"]))
        except (KeyError, TypeError, ValueError, UserError):
            return None


@dataclass(frozen=True)
class Look:
    """One look at a case's round log ratios: the interval this look may use, and what it says."""

    n: int
    alpha: float  # two-sided alpha of this look's interval (0: not a planned look)
    ratio: float
    low: float
    high: float
    se: float
    df: int
    decision: str  # "slower" (interval above 1 + threshold), "not-slower" (below it) or "undecided"


def look(logs: list[float], plan: Plan, threshold: float) -> Look:
    """The look after len(logs) rounds: a t interval on the mean log ratio at this look's alpha."""
    import statistics

    from scipy.stats import t as student_t

    n = len(logs)
    mean = statistics.fmean(logs) if logs else 0.0
    alpha = plan.alpha_at(n)
    if n < 2:
        return Look(n, alpha, math.exp(mean), 0.0, math.inf, math.inf, max(n - 1, 0), "undecided")
    se = statistics.stdev(logs) / math.sqrt(n)
    if alpha <= 0:
        half = math.inf
    elif se == 0:
        half = 0.0
    else:
        half = float(student_t.ppf(1 - alpha / 2, n - 1)) * se
    low, high = math.exp(mean - half), math.exp(mean + half)
    limit = 1 + threshold
    decision = "slower" if low > limit else "not-slower" if high < limit else "undecided"
    return Look(n, alpha, math.exp(mean), low, high, se, n - 1, decision)
