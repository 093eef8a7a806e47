"""Compare reports: match results by key, estimate each change with its uncertainty, give a verdict.

Pure functions of `Report` objects: no files, no printing (renderers live in `benchbench.output`, the gate
policy in `gate.py`). Every random draw comes from a numpy Generator seeded from the case key, so
the same two reports always give the same table.

The verdict rule (`classify`) needs three independent pieces of evidence before it calls a change
real, because each one alone is fooled by something timing data does routinely:

- significance: Mann-Whitney U on the raw samples, p < alpha. Distribution-free, so skew and
  outliers (a stray context switch) do not fake a difference; but with many samples it flags
  differences far too small to matter.
- effect size: the whole (1 - alpha) bootstrap confidence interval of the ratio of medians lies
  beyond the threshold (above 1 + t for slower, below 1 / (1 + t) for faster). This is what the
  user asked about ("more than 5% slower") and it is stated with confidence, not as a point.
- noise: the point estimate moves by more than the spread seen inside the samples (half the relative
  IQR of the noisier side). A bimodal or thermally drifting benchmark can yield a tight interval on
  a shift that is smaller than its own run-to-run wobble; that is not evidence of a code change.

A change is `same` when the interval lies inside the band (1/(1+t), 1+t): we are confident that
whatever changed is smaller than the threshold. Anything else is `noisy`: the data cannot tell, and
saying so is the point (a larger budget or a quieter machine will decide it). Fewer than
`Criteria.min_samples` samples on either side is always `noisy` (flag `few-samples`): a bootstrap of
three values is not an interval. Results with statistics but no raw samples (pytest-benchmark files
saved without data) get an approximate interval and no test (flag `no-samples`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchbench.environment.fingerprint import fingerprint_diff
from benchbench.errors import UserError
from benchbench.report import CaseKey, Report, Result
from benchbench.stats import FEW_SAMPLES

# Per-key verdicts. The first nine are the issue's; `failed` and `skipped` name the pairs where
# neither side has a measurement (not ok before either), so nothing is silently called `same`.
VERDICTS = ("faster", "slower", "same", "noisy", "new", "missing", "broke", "fixed", "incomparable",
            "failed", "skipped")
VERDICT_HELP = {
    "faster": "significantly faster, by more than the threshold and more than the noise",
    "slower": "significantly slower, by more than the threshold and more than the noise",
    "same": "the confidence interval of the change lies within the threshold",
    "noisy": "cannot tell: the interval straddles the threshold, or the change is within the noise",
    "new": "only in the newer report",
    "missing": "in the baseline, absent (or skipped) now",
    "broke": "ok in the baseline, failed or timed out now",
    "fixed": "failed or timed out in the baseline, ok now",
    "incomparable": "different benchmark definition, timing method, or an environment difference that matters",
    "failed": "not ok in the baseline and failed now",
    "skipped": "skipped now and not measured in the baseline",
}


@dataclass(frozen=True)
class Criteria:
    """What counts as a change: `threshold` is relative (0.05 = 5%), `alpha` the significance level."""

    threshold: float = 0.05
    alpha: float = 0.05
    n_boot: int = 2000
    min_samples: int = FEW_SAMPLES

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 10:
            raise UserError(f"threshold must be between 0% and 1000%, got {100 * self.threshold:g}%")
        if not 0 < self.alpha < 0.5:
            raise UserError(f"alpha must be between 0 and 0.5, got {self.alpha:g}")

    @property
    def level(self) -> float:
        return 1.0 - self.alpha


@dataclass(frozen=True)
class Summary:
    """Median, IQR and count of one result: from its samples, or imported statistics when it has none."""

    median: float
    iqr: float
    n: int
    from_samples: bool

    @property
    def rel_noise(self) -> float:
        """Half the relative IQR: the `±` shown next to a median."""
        return self.iqr / self.median / 2 if self.median > 0 else math.inf


def summary_of(result: Result | None) -> Summary | None:
    if result is None or not result.ok:
        return None
    st = result.stats
    if st is not None:
        return Summary(st.median, st.iqr, st.n, True)
    imported = result.metrics.get("imported_stats") or {}
    try:
        return Summary(float(imported["median"]), float(imported["iqr"]), int(imported["n"]), False)
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Change:
    """The ratio other/base of median times per call (above 1 is slower), with its uncertainty."""

    ratio: float
    ci_low: float
    ci_high: float
    level: float
    p_value: float | None  # Mann-Whitney U, two-sided; None when a side has no raw samples
    noise: float  # half the relative IQR of the noisier side
    n_base: int
    n_other: int

    @property
    def from_samples(self) -> bool:
        return self.p_value is not None


def key_seed(key: CaseKey) -> int:
    """A seed that depends on the key only (not on Python's per-process hash randomisation)."""
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little")


def bootstrap_ratio_ci(base: Sequence[float], other: Sequence[float], level: float = 0.95,
                       n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of median(other) / median(base), resampling each side on its own."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a = np.asarray(base, dtype=float)
    b = np.asarray(other, dtype=float)
    med_a = np.median(a[rng.integers(0, a.size, size=(n_boot, a.size))], axis=1)
    med_b = np.median(b[rng.integers(0, b.size, size=(n_boot, b.size))], axis=1)
    ratios = med_b / med_a
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def mann_whitney_p(base: Sequence[float], other: Sequence[float]) -> float:
    from scipy.stats import mannwhitneyu

    if min(base) == max(base) == min(other) == max(other):
        return 1.0  # identical constants: scipy would warn and return nan
    p = float(mannwhitneyu(base, other, alternative="two-sided").pvalue)
    return p if math.isfinite(p) else 1.0


def change_from_samples(base: Sequence[float], other: Sequence[float], level: float = 0.95,
                        n_boot: int = 2000, seed: int = 0) -> Change:
    from benchbench.stats import summarize

    sa, sb = summarize(list(base)), summarize(list(other))
    lo, hi = bootstrap_ratio_ci(base, other, level, n_boot, seed)
    noise = max(sa.rel_spread, sb.rel_spread) / 2
    return Change(sb.median / sa.median, lo, hi, level, mann_whitney_p(base, other), noise, sa.n, sb.n)


def change_from_summaries(base: Summary, other: Summary, level: float = 0.95) -> Change:
    """Without raw samples: a normal approximation on the log ratio, from median, IQR and count only.

    The standard error of a median is about 1.2533 sigma / sqrt(n), with sigma estimated as IQR / 1.349.
    Good for a table; no significance test is possible, so `p_value` is None and the gate will not
    call such a change a regression (see gate.py).
    """
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2)

    def se_log(s: Summary) -> float:
        return 1.2533 * (s.iqr / 1.349) / (s.median * math.sqrt(max(s.n, 1)))

    ratio = other.median / base.median
    half = z * math.hypot(se_log(base), se_log(other))
    noise = max(base.rel_noise, other.rel_noise)
    return Change(ratio, ratio * math.exp(-half), ratio * math.exp(half), level, None, noise, base.n, other.n)


def classify(change: Change, threshold: float, alpha: float) -> str:
    """faster / slower / same / noisy from a Change; the rule and its reasons are in the module docstring.

    Without raw samples (p_value None) the significance test cannot run and the interval alone decides;
    rows built that way carry the flag `no-samples`.
    """
    up, down = 1.0 + threshold, 1.0 / (1.0 + threshold)
    significant = change.p_value is None or change.p_value < alpha
    if significant and change.ci_low > up and change.ratio > 1.0 + change.noise:
        return "slower"
    if significant and change.ci_high < down and change.ratio < 1.0 / (1.0 + change.noise):
        return "faster"
    if down < change.ci_low and change.ci_high < up:
        return "same"
    return "noisy"


# --- environment --------------------------------------------------------------------------------
EnvDiff = tuple[str, Any, Any, bool]  # (key, base value, other value, matters)


# --- matching -----------------------------------------------------------------------------------
@dataclass
class Row:
    """One key, the base report against one other report."""

    key: CaseKey
    base: Result | None
    other: Result | None
    verdict: str
    change: Change | None = None
    statistical: str | None = None  # faster/slower/same/noisy from the numbers, even when incomparable
    reasons: list[str] = field(default_factory=list)  # different definition or timing method
    env: list[str] = field(default_factory=list)  # environment differences that matter for this case
    flags: list[str] = field(default_factory=list)  # no-samples, few-samples

    @property
    def in_geomean(self) -> bool:
        """Same benchmark measured on both sides. Environment differences are allowed: comparing two
        machines or two driver versions is exactly what a geometric mean across cases is for."""
        return self.change is not None and not self.reasons


@dataclass
class Pair:
    """The base report against one other report."""

    name: str
    report: Report
    rows: list[Row]
    env_diff: list[EnvDiff]


@dataclass
class Comparison:
    base_name: str
    base: Report
    pairs: list[Pair]
    criteria: Criteria
    keys: list[CaseKey]


def _status(r: Result | None) -> str:
    if r is None:
        return "absent"
    return "bad" if r.status in ("failed", "timeout") else r.status


def compare_pair(key: CaseKey, base: Result | None, other: Result | None, criteria: Criteria,
                 threshold: float | None = None, env_diff: Sequence[EnvDiff] = ()) -> Row:
    """The verdict for one key. `threshold` overrides the criteria's (per-benchmark rules); `env_diff` is
    the fingerprint difference as it applies to this key's backend."""
    b, o = _status(base), _status(other)
    if b == "absent":
        return Row(key, base, other, "new")
    if o == "absent":
        return Row(key, base, other, "missing")
    if b == "ok":
        verdict = {"skipped": "missing", "bad": "broke"}.get(o)
    else:
        verdict = {"ok": "fixed" if b == "bad" else "new", "skipped": "skipped", "bad": "failed"}[o]
    if verdict:
        return Row(key, base, other, verdict)

    row = Row(key, base, other, "noisy")
    if base.definition_hash and other.definition_hash and base.definition_hash != other.definition_hash:
        row.reasons.append("benchmark definition changed")
    if base.timing_method and other.timing_method and base.timing_method != other.timing_method:
        row.reasons.append(f"timed with {base.timing_method} vs {other.timing_method}")
    row.env = [f"{k}: {va} vs {vb}" for k, va, vb, matters in env_diff if matters]

    sa, sb = summary_of(base), summary_of(other)
    if sa is None or sb is None or sa.median <= 0 or sb.median <= 0:
        row.reasons.append("no timing to compare")
        row.verdict = "incomparable"
        return row
    if sa.from_samples and sb.from_samples:
        row.change = change_from_samples(base.samples, other.samples, criteria.level, criteria.n_boot,
                                         key_seed(key))
    else:
        row.change = change_from_summaries(sa, sb, criteria.level)
        row.flags.append("no-samples")
    if min(sa.n, sb.n) < criteria.min_samples:
        row.flags.append("few-samples")
        row.statistical = "noisy"
    else:
        t = criteria.threshold if threshold is None else threshold
        row.statistical = classify(row.change, t, criteria.alpha)
    row.verdict = "incomparable" if row.reasons or row.env else row.statistical
    return row


def report_names(reports: Sequence[Report], hints: Sequence[str | None] | None = None) -> list[str]:
    """Short, unique column names: the hint (usually the file's stem), else the report's label or run id."""
    names = []
    for i, rep in enumerate(reports):
        name = (hints[i] if hints and i < len(hints) else None) or rep.label or rep.run_id
        base, n = name, 2
        while name in names:
            name, n = f"{base}#{n}", n + 1
        names.append(name)
    return names


def compare(reports: Sequence[Report], names: Sequence[str | None] | None = None, criteria: Criteria | None = None,
            threshold_for: Callable[[CaseKey], float | None] | None = None) -> Comparison:
    """Compare every report after the first against the first (the base).

    Raises UserError when fewer than two reports are given or a report shares no result with the base.
    """
    if len(reports) < 2:
        raise UserError("compare needs at least two reports")
    criteria = criteria or Criteria()
    names = report_names(reports, names)
    base = reports[0]
    base_by_key = {r.key: r for r in base.results}
    all_keys = dict.fromkeys(base_by_key)
    pairs = []
    for name, rep in zip(names[1:], reports[1:], strict=True):
        other_by_key = {r.key: r for r in rep.results}
        if not set(base_by_key) & set(other_by_key):
            raise UserError(f"{name} has no results in common with {names[0]} (no benchmark matches on suite, "
                            "benchmark, params, backend, dtype and mode)")
        all_keys.update(dict.fromkeys(other_by_key))
        keys = sorted(set(base_by_key) | set(other_by_key), key=CaseKey.sort_key)
        env = {bk: fingerprint_diff(base.fingerprint, rep.fingerprint, [bk]) for bk in {k.backend for k in keys}}
        rows = [compare_pair(k, base_by_key.get(k), other_by_key.get(k), criteria,
                             threshold_for(k) if threshold_for else None, env[k.backend]) for k in keys]
        pairs.append(Pair(name, rep, rows, fingerprint_diff(base.fingerprint, rep.fingerprint)))
    return Comparison(names[0], base, pairs, criteria, sorted(all_keys, key=CaseKey.sort_key))


# --- aggregates -----------------------------------------------------------------------------------
def geomean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("geometric mean of no values")
    if any(v <= 0 for v in values):
        raise ValueError("geometric mean needs positive values")
    return math.exp(math.fsum(math.log(v) for v in values) / len(values))


@dataclass(frozen=True)
class Geomean:
    ratio: float  # geometric mean of other/base time ratios: below 1 is faster
    n: int

    @property
    def speedup(self) -> float:
        return 1.0 / self.ratio


def geomeans(rows: Sequence[Row]) -> dict[str | None, Geomean]:
    """Geometric mean of the time ratios per suite, and overall under the key None."""
    by_suite: dict[str | None, list[float]] = {}
    for row in rows:
        if row.in_geomean and row.change is not None:
            by_suite.setdefault(row.key.suite, []).append(row.change.ratio)
            by_suite.setdefault(None, []).append(row.change.ratio)
    return {suite: Geomean(geomean(v), len(v)) for suite, v in by_suite.items()}


def verdict_counts(rows: Sequence[Row]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    return {v: counts[v] for v in VERDICTS if v in counts}
