"""Compare reports: match results by key, estimate each change with its uncertainty, give a verdict.

Pure functions of `Report` objects: no files, no printing (renderers live in `benchbench.output`, the gate
policy in `gate.py`). Every random draw comes from a numpy Generator seeded from the case key, so
the same two reports always give the same table.

The unit of evidence is a round. A result measured in rounds (schema 2) has one value per round,
each from a fresh worker process; samples inside one round share that process's luck and are not
independent draws of what another run would see (between processes, timings on a shared machine
spread ten times more than inside one).

A round stands for itself by its fastest sample (`Criteria.round_quantile`, 0.0), not its median.
Interference from other processes only ever adds time, and on a busy machine it comes in bursts: a
case whose calls take a few milliseconds is descheduled in some rounds for most of its samples and
not in others, so its round medians are bimodal (measured here: 1.1 ms in three baseline rounds,
5-6.6 ms in the three current rounds of an A/A run, whose fastest samples were 0.94-1.02 ms on
both sides). A t test on three bimodal values calls that a 5x regression. The fastest sample of a
round is the op's cost with the least interference that round saw; more work in the code still
raises it. The tables keep showing medians (the reports' estimates); the change and its interval
are those of the per-round values. A case whose samples are not repeated calls of the same work declares
`round_statistic="median"` (a typed field of its Case and Result), and its rounds stand for themselves by their median: a
DataLoader's samples are windows of a stream, and a window served from batches the workers had
prefetched is fast for a reason that is not the code (`round_quantile_of`). So when both sides have two or more rounds:

- unpaired (two stored reports, `gate`): Welch's t on the logarithms of the round values. The
  change is exp(mean log B - mean log A), its (1 - alpha) interval exp(d -/+ t(1 - alpha/2, df) se)
  with se = sqrt(sA^2/nA + sB^2/nB) and Welch-Satterthwaite df.
- paired (`ab`: both sides measured round by round together): a one-sample t on the per-round log
  ratios d_i of rounds with the same index, df = n - 1, so a slow minute of the machine, which hits
  both sides of a round, cancels. Block-interleaved rounds (both sides alive, taking turns block by
  block) give d_i as the median of the round's window log ratios (`blocks.paired_round_logs`), and a
  report that carries its sequential plan (`Report.sequential`) is judged at the level that plan's
  look after n rounds may spend (`sequential.py`): the same interval `ab` stopped on.

`classify` calls a change `slower` when the whole interval lies above 1 + threshold (which implies
p < alpha against "no change"), `faster` when it lies below 1 / (1 + threshold), `same` when it lies
inside that band, and `noisy` otherwise.

The minimum detectable effect (`Row.mde`) is the smallest true slowdown that this rule, on data with
this spread and this many rounds, calls `slower` with probability `Criteria.power` (90%):

    mde = exp(log(1 + threshold) + lambda * se) - 1

where lambda solves P(T > t(1 - alpha/2, df)) = power for T noncentral t with df degrees of freedom
and noncentrality lambda: the rule calls `slower` when (d - log(1 + threshold)) / se > t(1 - alpha/2,
df), and that statistic is noncentral t with lambda = (true log slowdown - log(1 + threshold)) /
se. (The textbook shortcut lambda = t(1 - alpha/2, df) + t(power, df) gives only 80-84% power at
three rounds.) The data's own se stands in for the true one; for Welch's t, whose df is itself
estimated, the MDE takes df = min(nA, nB) - 1 (Welch's lower bound), so the power it states is at
least nominal. A `noisy` verdict states it: a slowdown smaller than the MDE can hide in this data.

Results with a single round on either side (old v1 reports, `--rounds 1`, pytest-benchmark files)
fall back to the samples and carry the flag `single-round`: Mann-Whitney U on the raw samples
(p < alpha), a bootstrap interval of the ratio of medians beyond the threshold, and a change larger
than the spread inside the samples (half the relative IQR of the noisier side). This sees one
process per side only: it is blind to the variation between processes, and its MDE (a normal
approximation from the bootstrap interval) is a lower bound. Fewer than `Criteria.min_samples` samples
on either side is always `noisy` (flag `few-samples`). Results with statistics but no raw samples
(pytest-benchmark files saved without data) get an approximate interval and no test (flag
`no-samples`).

The canary (`benchbench/analysis/canary.py`): when two stored reports were measured while the machine itself
ran at different speeds (the median canary over each run's rounds differs by more than the
threshold), or when the machine's speed moved by more than the threshold during either run, no
timing verdict of that pair can be trusted: `Row.machine` records why, and the gate makes those
cases inconclusive. Paired rounds (`ab`) need no such check: a change of the machine's speed hits
both sides of a round.

Instruction counts (timing method `callgrind-instructions`) are not samples of a noisy distribution:
they follow the tolerance rule of `benchbench/metrics/instructions.py` (`_count_row`), and never compare with
times.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from benchbench import metrics
from benchbench.analysis import blocks, canary, sequential
from benchbench.environment.fingerprint import fingerprint_diff
from benchbench.errors import UserError
from benchbench.metrics import instructions
from benchbench.metrics.base import MetricRow
from benchbench.model.report import CaseKey, Report, Result
from benchbench.model.stats import FEW_SAMPLES

# Per-key verdicts. The first nine compare two measurements; `failed` and `skipped` name the pairs where
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
    instructions_tolerance: float = instructions.DEFAULT_TOLERANCE  # instruction counts: benchbench/metrics/instructions.py
    power: float = 0.9  # of the minimum detectable effect
    # What stands for a round: this quantile of its samples (module docstring: why the fastest, 0.0).
    round_quantile: float = 0.0
    # Pair rounds by index (both sides measured round by round, back to back: `ab`). None: pair when
    # the two reports say they were measured that way (`paired_reports`).
    paired: bool | None = None

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 10:
            raise UserError(f"threshold must be between 0% and 1000%, got {100 * self.threshold:g}%")
        if not 0 < self.alpha < 0.5:
            raise UserError(f"alpha must be between 0 and 0.5, got {self.alpha:g}")
        instructions.check_tolerance(self.instructions_tolerance)
        if not 0 <= self.round_quantile <= 0.5:
            raise UserError(f"round_quantile must be between 0 and 0.5, got {self.round_quantile:g}")

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
    imported = result.imported_stats or {}
    try:
        return Summary(float(imported["median"]), float(imported["iqr"]), int(imported["n"]), False)
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Change:
    """The ratio other/base of the time per call (above 1 is slower), with its uncertainty.

    `unit` says what the evidence is: "round" (Welch t on log round values), "paired-round" (t on
    the log ratios of rounds measured back to back), "sample" (one round per side: Mann-Whitney and a
    bootstrap on the raw samples) or "summary" (no raw samples). For round units `se` and `df` are the
    standard error and degrees of freedom of the log ratio."""

    ratio: float
    ci_low: float
    ci_high: float
    level: float
    p_value: float | None  # two-sided: t test (rounds) or Mann-Whitney U (samples); None without samples
    noise: float  # half the relative IQR of the noisier side (sample units); the between-round sd (rounds)
    n_base: int  # rounds (round units) or samples
    n_other: int
    unit: str = "sample"
    se: float | None = None
    df: float | None = None

    @property
    def from_samples(self) -> bool:
        return self.p_value is not None

    @property
    def from_rounds(self) -> bool:
        return self.unit in ("round", "paired-round")


def key_seed(key: CaseKey) -> int:
    """A seed that depends on the key only (not on Python's per-process hash randomisation)."""
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little")


# Above this many samples a side's bootstrap medians are drawn from their exact distribution instead of
# resampled: the n_boot x n index matrix of a plain bootstrap takes 16 GB at a million samples.
BOOTSTRAP_RESAMPLE_MAX = 2000


def bootstrap_medians(xs: Sequence[float], n_boot: int, rng: Any) -> Any:
    """`n_boot` bootstrap medians of `xs`, in O(n log n) time and O(n) memory whatever the size.

    Up to BOOTSTRAP_RESAMPLE_MAX samples: the plain bootstrap (resample n with replacement, take the
    median). Beyond: the same statistic drawn from its exact distribution. A resample's m-th smallest
    value (m = ceil(n/2)) is at most the k-th order statistic x_(k) exactly when at least m of its n
    draws land on x_(1..k), which is Binomial(n, k/n) >= m; so inverting that distribution function
    over k gives the bootstrap median's order statistic directly (for even n the m-th smallest, which
    differs from the averaged median by less than the gap of two neighbouring order statistics).
    """
    import numpy as np

    a = np.asarray(xs, dtype=float)
    n = a.size
    if n <= BOOTSTRAP_RESAMPLE_MAX:
        return np.median(a[rng.integers(0, n, size=(n_boot, n))], axis=1)
    from scipy.stats import binom

    a = np.sort(a)
    m = (n + 1) // 2
    half = int(10 * math.sqrt(n)) + 10  # the distribution lies within a few sqrt(n) of the middle
    ks = np.arange(max(1, m - half), min(n, m + half) + 1)  # 1-based ranks
    cdf = binom.sf(m - 1, n, ks / n)  # P(m-th smallest of a resample <= x_(k))
    cdf[-1] = 1.0
    ranks = ks[np.searchsorted(cdf, rng.random(n_boot), side="left")]
    return a[ranks - 1]


def bootstrap_ratio_ci(base: Sequence[float], other: Sequence[float], level: float = 0.95,
                       n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of median(other) / median(base), resampling each side on its own."""
    import numpy as np

    rng = np.random.default_rng(seed)
    med_a = bootstrap_medians(base, n_boot, rng)
    med_b = bootstrap_medians(other, n_boot, rng)
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
    from benchbench.model.stats import summarize

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


ROUND_STATISTICS = {"fastest": 0.0, "median": 0.5}


def round_quantile_of(base: Result, other: Result, criteria: Criteria) -> float:
    """The quantile of a round's samples that stands for the round: the criteria's (the fastest sample),
    unless either side's case declares its `round_statistic` ("median" or "fastest")."""
    for res in (base, other):
        declared = res.round_statistic
        if declared in ROUND_STATISTICS:
            return ROUND_STATISTICS[declared]
    return criteria.round_quantile


def round_values(result: Result, q: float = 0.0) -> dict[int, float]:
    """Round index -> the q-quantile of that round's samples (0: its fastest sample, 0.5: its median);
    rounds without samples are left out."""
    from benchbench.model.stats import quantile

    out = {}
    for i, (meta, samples) in enumerate(zip(result.rounds, result.round_samples, strict=True)):
        if samples:
            out[int(meta.get("round", i))] = quantile(sorted(samples), q)
    return out


def _t(p: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(p, df))


def _t_p(stat: float, df: float) -> float:
    from scipy.stats import t

    return float(2 * t.sf(abs(stat), df))


def _t_change(d: float, se: float, df: float, level: float, noise: float, n_base: int, n_other: int,
              unit: str) -> Change:
    if se > 0:
        half = _t(0.5 + level / 2, df) * se
        p = _t_p(d / se, df)
    else:  # every round agrees exactly: the change is known
        half, p = 0.0, 1.0 if d == 0 else 0.0
    return Change(math.exp(d), math.exp(d - half), math.exp(d + half), level, p, noise, n_base, n_other,
                  unit, se, df)


def change_from_rounds(base: Sequence[float], other: Sequence[float], level: float = 0.95) -> Change:
    """Welch's t on the logarithms of two independent sets of round values (two or more each)."""
    import statistics

    la, lb = [math.log(x) for x in base], [math.log(x) for x in other]
    na, nb = len(la), len(lb)
    if na < 2 or nb < 2:
        raise ValueError("Welch's t needs two or more rounds on each side")
    va, vb = statistics.variance(la), statistics.variance(lb)
    wa, wb = va / na, vb / nb
    se = math.sqrt(wa + wb)
    df = (wa + wb) ** 2 / (wa**2 / (na - 1) + wb**2 / (nb - 1)) if wa + wb > 0 else float(na + nb - 2)
    d = statistics.fmean(lb) - statistics.fmean(la)
    return _t_change(d, se, df, level, max(math.sqrt(va), math.sqrt(vb)), na, nb, "round")


def change_from_paired_rounds(pairs: Sequence[tuple[float, float]], level: float = 0.95) -> Change:
    """A t interval on the per-round log ratios log(other_i / base_i) of rounds measured back to back."""
    return change_from_paired_logs([math.log(b / a) for a, b in pairs], level)


def change_from_paired_logs(d: Sequence[float], level: float = 0.95) -> Change:
    """A t interval on per-round log ratios (other over base), one per round measured as a pair."""
    import statistics

    if len(d) < 2:
        raise ValueError("a paired comparison needs two or more rounds")
    n = len(d)
    sd = statistics.stdev(d)
    return _t_change(statistics.fmean(d), sd / math.sqrt(n), n - 1, level, sd, n, n, "paired-round")


def change_from_sequential(d: Sequence[float], plan: sequential.Plan, threshold: float) -> Change:
    """The paired change at the look a sequential plan makes after len(d) rounds: the interval at the
    alpha that look may spend (benchbench/analysis/sequential.py), so a decision read back from stored reports is
    the one `ab` took while measuring."""
    import statistics

    seen = sequential.look(list(d), plan, threshold)
    sd = statistics.stdev(d)
    p = _t_p(math.log(seen.ratio) / seen.se, seen.df) if seen.se > 0 else (1.0 if seen.ratio == 1 else 0.0)
    return Change(seen.ratio, seen.low, seen.high, 1.0 - seen.alpha, p, sd, seen.n, seen.n, "paired-round",
                  seen.se, seen.df)


@lru_cache(maxsize=1024)
def power_noncentrality(df: float, alpha: float, power: float) -> float:
    """The noncentrality lambda at which a one-sided t test at level alpha/2 with df degrees of freedom
    rejects with probability `power`: P(T(df, lambda) > t(1 - alpha/2, df)) = power."""
    from scipy.optimize import brentq
    from scipy.stats import nct

    crit = _t(1 - alpha / 2, df)
    return float(brentq(lambda lam: nct.sf(crit, df, lam) - power, 0.0, 10 * crit + 50))


def detectable_slowdown(change: Change, threshold: float, alpha: float, power: float = 0.9) -> float:
    """The minimum detectable effect: the smallest relative slowdown (0.12 = 12%) that `classify`
    calls `slower` with probability `power` on data with this change's spread and count.

    Round units: log(1 + mde) = log(1 + threshold) + lambda * se, lambda from the noncentral t
    (`power_noncentrality`; see the module docstring). Sample and summary units: the same with
    normal quantiles and the standard error read off the interval, and never below the noise the
    rule also requires; those see one process per side, so it is a lower bound.
    """
    from statistics import NormalDist

    if change.from_rounds and change.se is not None and change.df is not None:
        # Welch's df is itself estimated, and low more often than not with few rounds: the MDE uses its
        # lower bound min(nA, nB) - 1, which keeps the stated power at or above nominal (checked in
        # tests/test_compare.py); a paired test's df, n - 1, is exact.
        df = change.df if change.unit == "paired-round" else max(min(change.n_base, change.n_other) - 1, 1)
        lam = power_noncentrality(round(df, 2), alpha, power)
        return math.expm1(math.log1p(threshold) + lam * change.se)
    z = NormalDist().inv_cdf
    se = math.log(change.ci_high / change.ci_low) / (2 * z(0.5 + change.level / 2)) \
        if change.ci_low > 0 and change.ci_high > 0 else math.inf
    mde = math.expm1(math.log1p(threshold) + (z(1 - alpha / 2) + z(power)) * se)
    return max(mde, change.noise)


def classify(change: Change, threshold: float, alpha: float) -> str:
    """faster / slower / same / noisy from a Change; the rule and its reasons are in the module docstring.

    Round units: the interval alone decides (it already holds the spread between rounds, and lying
    beyond 1 + threshold implies p < alpha). One round per side: Mann-Whitney significance, the
    interval and the change beyond the noise inside the samples. Without raw samples (p_value None)
    the significance test cannot run and the interval alone decides; rows built that way carry the
    flag `no-samples`.
    """
    up, down = 1.0 + threshold, 1.0 / (1.0 + threshold)
    if change.from_rounds:
        noise, significant = 0.0, True
    else:
        noise, significant = change.noise, change.p_value is None or change.p_value < alpha
    if significant and change.ci_low > up and change.ratio > 1.0 + noise:
        return "slower"
    if significant and change.ci_high < down and change.ratio < 1.0 / (1.0 + noise):
        return "faster"
    if down < change.ci_low and change.ci_high < up:
        return "same"
    return "noisy"


def paired_reports(base: Report, other: Report) -> bool:
    """Two reports measured round by round together (`ab`): two different sides, and the same rounds
    (index and seed) in both."""
    if not (isinstance(base.side, dict) and isinstance(other.side, dict)) or base.side.get("name") == other.side.get("name"):
        return False

    def seeds(rep: Report) -> dict[Any, Any]:
        return {r.get("round"): r.get("seed") for r in rep.rounds if isinstance(r, dict)}

    sa = seeds(base)
    return len(sa) >= 2 and None not in sa.values() and sa == seeds(other)


@dataclass(frozen=True)
class MachineDrift:
    """How the machine's own speed (the canary's Python loop) moved: between the two runs (other over
    base) and within each run (slowest over fastest round). 1.0 is no change; None: not measured."""

    between: float | None
    within_base: float | None
    within_other: float | None

    def beyond(self, threshold: float) -> list[tuple[str, float]]:
        """(where, ratio) for every movement larger than the threshold: "between", "base" or "other"."""
        out = []
        for where, r in (("between", self.between), ("base", self.within_base), ("other", self.within_other)):
            if r is not None and abs(math.log(r)) > math.log1p(threshold):
                out.append((where, r))
        return out


def machine_drift(base: Report, other: Report) -> MachineDrift:
    return MachineDrift(canary.between_runs(base, other), canary.within_run(base), canary.within_run(other))


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
    flags: list[str] = field(default_factory=list)  # no-samples, few-samples, single-round
    mde: float | None = None  # minimum detectable slowdown (0.12 = 12%) at the criteria's alpha and power
    # The machine's own speed moved by more than the threshold (canary): (where, ratio) as in
    # MachineDrift.beyond. A timing verdict of this row cannot be trusted; the gate says inconclusive.
    machine: list[tuple[str, float]] = field(default_factory=list)

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
    paired: bool = False  # rounds compared pairwise (measured back to back: `ab`)
    drift: MachineDrift | None = None  # the canary's reading (unpaired pairs only)
    # the metrics every timed run records beside the time (peak memory, compile time), case by case
    metric_rows: list[MetricRow] = field(default_factory=list)


@dataclass
class Comparison:
    base_name: str
    base: Report
    pairs: list[Pair]
    criteria: Criteria
    keys: list[CaseKey]


# Typed result fields that describe what a case ran on rather than how fast, and are not in its key because
# a launch option sets them (the distributed suite's ranks): results that differ in one are not comparable.
SHAPE_FIELDS = {"world_size": "world size", "nnodes": "nodes"}


def _status(r: Result | None) -> str:
    if r is None:
        return "absent"
    return "bad" if r.status in ("failed", "timeout") else r.status


def compare_pair(key: CaseKey, base: Result | None, other: Result | None, criteria: Criteria,
                 threshold: float | None = None, env_diff: Sequence[EnvDiff] = (), paired: bool = False,
                 drift: MachineDrift | None = None, tolerance: float | None = None,
                 plan: sequential.Plan | None = None) -> Row:
    """The verdict for one key. `threshold` overrides the criteria's (per-benchmark rules); `env_diff` is
    the fingerprint difference as it applies to this key's backend; `paired` pairs rounds by index;
    `drift` is the canary's reading of the two runs (ignored when paired); `tolerance` overrides the
    criteria's instructions_tolerance; `plan` is the sequential plan paired rounds were decided by (a
    block-interleaved `ab`), whose look after the rounds at hand sets the interval's level."""
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
    for name, what in SHAPE_FIELDS.items():
        va, vb = getattr(base, name), getattr(other, name)
        if va is not None and vb is not None and va != vb:
            row.reasons.append(f"{what} {va:g} vs {vb:g}" if isinstance(va, (int, float)) else f"{what} {va} vs {vb}")
    row.env = [f"{k}: {va} vs {vb}" for k, va, vb, matters in env_diff if matters]
    metric = metrics.of_results(base, other)
    apart = metric.incomparable(base, other) if metric.incomparable and base.timing_method == other.timing_method \
        else None
    if apart:
        row.reasons.append(apart)
    if metric.rule == "tolerance":
        return _count_row(row, criteria.instructions_tolerance if tolerance is None else tolerance)

    sa, sb = summary_of(base), summary_of(other)
    if sa is None or sb is None or sa.median <= 0 or sb.median <= 0:
        row.reasons.append("no timing to compare")
        row.verdict = "incomparable"
        return row
    t = criteria.threshold if threshold is None else threshold
    few = min(sa.n, sb.n) < criteria.min_samples
    q = round_quantile_of(base, other, criteria)
    ma, mb = (round_values(base, q), round_values(other, q)) if sa.from_samples and sb.from_samples else ({}, {})
    positive = all(v > 0 for v in [*ma.values(), *mb.values()])
    logs = blocks.paired_round_logs(base, other, q) if paired and sa.from_samples and sb.from_samples else {}
    alpha = criteria.alpha
    if len(logs) >= 2:
        d = [v for v, _ in logs.values()]
        if plan is not None:
            row.change = change_from_sequential(d, plan, t)
            alpha = 1.0 - row.change.level
        else:
            row.change = change_from_paired_logs(d, criteria.level)
        if blocks.pairs_disagree(d, [se for _, se in logs.values()]):
            row.flags.append("pairs-disagree")
    elif positive and len(ma) >= 2 and len(mb) >= 2:
        row.change = change_from_rounds(list(ma.values()), list(mb.values()), criteria.level)
    elif sa.from_samples and sb.from_samples:
        row.change = change_from_samples(base.samples, other.samples, criteria.level, criteria.n_boot,
                                         key_seed(key))
        row.flags.append("single-round")
    else:
        row.change = change_from_summaries(sa, sb, criteria.level)
        row.flags.append("no-samples")
    row.mde = detectable_slowdown(row.change, t, alpha, criteria.power) if alpha > 0 else math.inf
    if few:
        row.flags.append("few-samples")
        row.statistical = "noisy"
    else:
        row.statistical = classify(row.change, t, criteria.alpha)
    if drift is not None and not paired:
        row.machine = drift.beyond(t)
    row.verdict = "incomparable" if row.reasons or row.env else row.statistical
    return row


def _count_row(row: Row, tolerance: float) -> Row:
    """Instruction counts: a tolerance rule instead of the statistics (benchbench/metrics/instructions.py).
    Against a time, or without counts, there is nothing to compare."""
    base, other = row.base, row.other
    if row.reasons or not base.samples or not other.samples:
        row.reasons = row.reasons or ["no instruction counts to compare"]
        row.verdict = "incomparable"
        return row
    counted = instructions.classify_counts(base.samples, other.samples, tolerance)
    row.change = Change(counted.ratio, counted.low, counted.high, 1.0, None, counted.jitter, len(base.samples),
                        len(other.samples))
    row.statistical = counted.verdict
    row.verdict = "incomparable" if row.env else counted.verdict
    return row


def metric_rows(rows: Sequence[Row], settings_for: Callable[[CaseKey], Mapping[str, Any]] | None = None,
                paired: bool = False) -> list[MetricRow]:
    """The rows of the metrics recorded beside the time, for the timed keys measured ok on both sides. A key
    whose time is incomparable for its definition or shape is incomparable in every metric too. Each metric's
    settings also say whether the two reports' rounds were measured together (`"paired"`: `ab`)."""
    out = []
    for row in rows:
        if row.base is None or row.other is None or not row.base.ok or not row.other.ok \
                or metrics.of_results(row.base, row.other) is not metrics.TIME:
            continue
        settings = {**metrics.settings_defaults(), **(settings_for(row.key) if settings_for else {}), "paired": paired}
        for metric in metrics.BESIDE_TIME:
            got = metric.compare_results(row.key, row.base, row.other, settings)
            if got is not None and row.reasons and got.verdict != "incomparable":
                got = replace(got, verdict="incomparable", why="; ".join(row.reasons))
            if got is not None:
                out.append(got)
    return out


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
            threshold_for: Callable[[CaseKey], float | None] | None = None,
            tolerance_for: Callable[[CaseKey], float | None] | None = None,
            settings_for: Callable[[CaseKey], Mapping[str, Any]] | None = None) -> Comparison:
    """Compare every report after the first against the first (the base). Time rows, and beside them the
    rows of the metrics a timed run records too (`metric_rows`), each by its metric's rule with the
    per-case settings `settings_for(key)` gives (gate rules; the metrics' defaults without it).

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
        paired = paired_reports(base, rep) if criteria.paired is None else criteria.paired
        drift = None if paired else machine_drift(base, rep)
        plan = sequential.Plan.from_dict(rep.sequential) if paired else None
        if plan is not None and plan.alpha != criteria.alpha:  # --alpha on stored reports: same looks, that alpha
            plan = replace(plan, alpha=criteria.alpha)
        rows = [compare_pair(k, base_by_key.get(k), other_by_key.get(k), criteria,
                             threshold_for(k) if threshold_for else None, env[k.backend], paired, drift,
                             tolerance_for(k) if tolerance_for else None, plan)
                for k in keys]
        pairs.append(Pair(name, rep, rows, fingerprint_diff(base.fingerprint, rep.fingerprint), paired, drift,
                          metric_rows(rows, settings_for, paired)))
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
