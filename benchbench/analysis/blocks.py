"""Block-interleaved pairs: the order two live sides take turns in, and what one round of turns says.

Pure functions, no processes (the controller is `benchbench/run/interleave.py`; `compare.py` reads stored
reports with the same functions, so `gate` on two `ab` reports decides exactly as `ab` did).

Within one round both sides' workers are alive together. For each case they run timed blocks in
turn: `windows` windows of `blocks` blocks per side, each pair of turns in ABBA order (A B, B A, A B,
...), so a side never always runs first, and the two blocks of a pair are milliseconds apart. The
machine's speed moves over seconds (0.2 s windows of one op in one process vary by 9-15% on a shared
2-core runner), but two blocks milliseconds apart see the same machine.

A window's log ratio is log(median of the current side's blocks / median of the baseline's) in that
window; a round's log ratio is the median of its windows' (robust to one window hit by a burst). The
decision is taken across rounds (`benchbench/analysis/sequential.py`): each round is a fresh process pair, so
whatever one process's luck adds (memory placement, thread wake-up) is counted in the spread.

Each side's samples of a round are stored in the order they were taken, and the round's record in
each result says how many windows it had (`"windows"`), so the windows are the samples cut into that
many equal parts: the pairing is recoverable from the two reports alone.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def turn_order(blocks: int, first: int) -> list[int]:
    """The sides (0 or 1) in the order they take their turns in one window: ABBA... with A = `first`."""
    second = 1 - first
    out: list[int] = []
    for i in range(blocks):
        out += [first, second] if i % 2 == 0 else [second, first]
    return out


def window_logs(base: Sequence[float], other: Sequence[float], windows: int) -> list[float]:
    """log(median(other) / median(base)) per window; both sides cut into `windows` equal parts."""
    if windows < 1 or len(base) != len(other) or len(base) < windows or len(base) % windows:
        raise ValueError(f"cannot cut {len(base)} and {len(other)} samples into {windows} equal windows")
    size = len(base) // windows
    out = []
    for w in range(windows):
        a = statistics.median(base[w * size:(w + 1) * size])
        b = statistics.median(other[w * size:(w + 1) * size])
        if a <= 0 or b <= 0:
            raise ValueError("a window's median is not positive")
        out.append(math.log(b / a))
    return out


def round_log(logs: Sequence[float]) -> float:
    """A round's log ratio: the median of its windows' log ratios."""
    return statistics.median(logs)


def within_se(logs: Sequence[float]) -> float | None:
    """The standard error of a round's log ratio from its own windows (that of a median, about
    1.2533 sd / sqrt(W)); None with fewer than two windows."""
    if len(logs) < 2:
        return None
    return 1.2533 * statistics.stdev(logs) / math.sqrt(len(logs))


def _windows(meta: dict[str, Any]) -> int | None:
    w = meta.get("windows")
    return w if isinstance(w, int) and not isinstance(w, bool) and w >= 1 else None


def paired_round_logs(base: Any, other: Any, q: float = 0.0) -> dict[int, tuple[float, float | None]]:
    """Round index -> (log ratio other/base, its within-round standard error or None), for rounds both
    results hold. Rounds measured block-interleaved on both sides (same window count and sample count)
    give the median window log ratio; other rounds the log ratio of their q-quantiles (what a round of
    whole-case runs, or a benchmark that times itself, offers)."""
    from benchbench.model.stats import quantile

    def by_round(res: Any) -> dict[int, tuple[dict[str, Any], list[float]]]:
        return {int(meta.get("round", i)): (meta, samples)
                for i, (meta, samples) in enumerate(zip(res.rounds, res.round_samples, strict=True)) if samples}

    ra, rb = by_round(base), by_round(other)
    out: dict[int, tuple[float, float | None]] = {}
    for i in sorted(set(ra) & set(rb)):
        (ma, sa), (mb, sb) = ra[i], rb[i]
        w = _windows(ma)
        if w is not None and w == _windows(mb) and len(sa) == len(sb):
            try:
                logs = window_logs(sa, sb, w)
            except ValueError:
                continue
            out[i] = (round_log(logs), within_se(logs))
            continue
        a, b = quantile(sorted(sa), q), quantile(sorted(sb), q)
        if a > 0 and b > 0:
            out[i] = (math.log(b / a), None)
    return out


def pairs_disagree(logs: Sequence[float], within: Sequence[float | None], level: float = 0.99) -> bool:
    """True when the rounds' log ratios spread far more than each round's own windows say they should:
    a per-process effect (memory layout, thread placement) that only more process pairs average out.

    Chi-square test of the between-round variance against the mean within-round variance, at `level`,
    and the between-round standard deviation at least twice the within-round one."""
    from scipy.stats import chi2

    ses = [s for s in within if s is not None]
    n = len(logs)
    if n < 3 or len(ses) < n:
        return False
    var_within = statistics.fmean(s * s for s in ses)
    var_between = statistics.variance(logs)
    if var_within <= 0:
        return var_between > 0
    stat = (n - 1) * var_between / var_within
    return stat > float(chi2.ppf(level, n - 1)) and var_between > 4 * var_within
