"""compare.py: statistics on synthetic samples with known answers, matching, verdicts, geometric means."""

import math
from collections import Counter

import numpy as np
import pytest

from benchbench.analysis.compare import (
    Change,
    Criteria,
    bootstrap_ratio_ci,
    change_from_samples,
    change_from_summaries,
    classify,
    compare,
    compare_pair,
    geomean,
    geomeans,
    key_seed,
    mann_whitney_p,
    summary_of,
)
from benchbench.errors import UserError
from benchbench.model.report import CaseKey, Report, Result

FP = {"torch": "2.14.1", "cpu": "AMD EPYC", "threads": 2, "hostname": "a"}


def timings(rng, n=30, median=1e-3, noise=0.02, outliers=0.0):
    """Log-normal timings around `median` with relative spread `noise`, plus a fraction of slow outliers
    (a context switch, a cache flush): what real samples look like."""
    x = median * np.exp(noise * rng.standard_normal(n))
    hit = rng.random(n) < outliers
    x[hit] *= 1 + rng.exponential(0.5, hit.sum())
    return x.tolist()


def result(key, samples=None, status="ok", **kw):
    return Result(key=key, status=status, samples=list(samples or []), **kw)


def make_report(results, fingerprint=None, label=None, run_id="r"):
    return Report(run_id=run_id, created_at="2026-01-01T00:00:00Z", label=label,
                  environment={"fingerprint": dict(FP if fingerprint is None else fingerprint), "facts": {},
                               "checks": []}, results=list(results))


KEY = CaseKey.make("ops", "matmul", {"n": 256}, "cpu", "float32")


def verdicts(slowdown, noise, threshold, n=30, outliers=0.0, trials=100, alpha=0.05):
    out = Counter()
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        base = timings(rng, n, 1e-3, noise, outliers)
        other = timings(rng, n, 1e-3 * (1 + slowdown), noise, outliers)
        out[classify(change_from_samples(base, other, 1 - alpha, 2000, seed), threshold, alpha)] += 1
    return out


# --- known answers (the gate-level ones from the issue are in test_gate.py) ------------------------------
def test_slowdown_below_the_threshold_is_same_not_slower():
    counts = verdicts(0.02, 0.01, 0.05)
    assert counts["same"] >= 99, counts


def test_speedup_is_faster():
    counts = verdicts(-0.20, 0.02, 0.05)
    assert counts["faster"] >= 99, counts


def test_bootstrap_interval_covers_the_true_ratio():
    covered = 0
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        lo, hi = bootstrap_ratio_ci(timings(rng, 40, 1.0, 0.05), timings(rng, 40, 1.2, 0.05), 0.95, 2000, seed)
        covered += lo <= 1.2 <= hi
    assert covered >= 88  # nominal 95%; the percentile bootstrap of a median runs a little narrow


def test_change_is_reproducible_and_seeded_by_key():
    rng = np.random.default_rng(7)
    a, b = timings(rng, 20), timings(rng, 20)
    seed = key_seed(KEY)
    assert change_from_samples(a, b, seed=seed) == change_from_samples(a, b, seed=seed)
    assert key_seed(KEY) == key_seed(CaseKey.make("ops", "matmul", {"n": 256}, "cpu", "float32"))
    assert key_seed(KEY) != key_seed(CaseKey.make("ops", "matmul", {"n": 512}, "cpu", "float32"))


def test_change_from_samples_point_estimate_is_the_ratio_of_medians():
    ch = change_from_samples([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.0])
    assert ch.ratio == pytest.approx(2.0)
    assert ch.ci_low <= 2.0 <= ch.ci_high
    assert ch.p_value is not None and ch.from_samples
    assert (ch.n_base, ch.n_other) == (5, 5)


def test_mann_whitney_on_constants_is_not_nan():
    assert mann_whitney_p([1.0] * 5, [1.0] * 5) == 1.0
    assert mann_whitney_p([1.0] * 8, [2.0] * 8) < 0.01


def test_change_from_summaries_narrows_with_more_samples_and_has_no_p():
    from benchbench.analysis.compare import Summary

    few = change_from_summaries(Summary(1.0, 0.1, 10, False), Summary(1.1, 0.1, 10, False))
    many = change_from_summaries(Summary(1.0, 0.1, 1000, False), Summary(1.1, 0.1, 1000, False))
    assert few.ratio == many.ratio == pytest.approx(1.1)
    assert many.ci_high - many.ci_low < few.ci_high - few.ci_low
    assert few.ci_low < 1.1 < few.ci_high
    assert few.p_value is None and not few.from_samples


@pytest.mark.parametrize("change, expected", [
    (Change(1.20, 1.15, 1.25, 0.95, 0.001, 0.02, 30, 30), "slower"),
    (Change(1.20, 1.15, 1.25, 0.95, 0.20, 0.02, 30, 30), "noisy"),   # not significant
    (Change(1.20, 1.15, 1.25, 0.95, 0.001, 0.25, 30, 30), "noisy"),  # within the samples' own noise
    (Change(1.06, 1.02, 1.10, 0.95, 0.001, 0.01, 30, 30), "noisy"),  # interval straddles +5%
    (Change(1.02, 1.01, 1.03, 0.95, 0.001, 0.01, 30, 30), "same"),   # significant, but small
    (Change(0.80, 0.78, 0.82, 0.95, 0.001, 0.02, 30, 30), "faster"),
    (Change(1.20, 1.15, 1.25, 0.95, None, 0.02, 30, 30), "slower"),  # from statistics alone
])
def test_classify_rule(change, expected):
    assert classify(change, threshold=0.05, alpha=0.05) == expected


# --- matching and verdicts ------------------------------------------------------------------------------
@pytest.mark.parametrize("base_status, other_status, expected", [
    (None, "ok", "new"), ("ok", None, "missing"), ("ok", "skipped", "missing"), ("ok", "failed", "broke"),
    ("ok", "timeout", "broke"), ("failed", "ok", "fixed"), ("timeout", "ok", "fixed"), ("failed", "failed", "failed"),
    ("skipped", "ok", "new"), ("skipped", "skipped", "skipped"), ("skipped", "failed", "failed"),
])
def test_status_pairs(base_status, other_status, expected):
    samples = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95]
    base = result(KEY, samples if base_status == "ok" else None, base_status) if base_status else None
    other = result(KEY, samples if other_status == "ok" else None, other_status) if other_status else None
    assert compare_pair(KEY, base, other, Criteria()).verdict == expected


def test_changed_definition_or_timing_method_is_incomparable_and_left_out_of_the_geomean():
    s = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98]
    row = compare_pair(KEY, result(KEY, s, definition_hash="sha256:a"), result(KEY, s, definition_hash="sha256:b"),
                       Criteria())
    assert row.verdict == "incomparable" and row.statistical == "same"
    assert "definition" in row.reasons[0] and not row.in_geomean
    row = compare_pair(KEY, result(KEY, s, timing_method="cuda-events"), result(KEY, s, timing_method="perf_counter"),
                       Criteria())
    assert row.verdict == "incomparable" and "cuda-events" in row.reasons[0]


def test_environment_difference_that_matters_is_incomparable_but_still_a_hardware_ratio():
    rng = np.random.default_rng(3)
    a = make_report([result(KEY, timings(rng, 30, 1e-3))])
    b = make_report([result(KEY, timings(rng, 30, 0.5e-3))], {**FP, "cpu": "Intel Xeon", "hostname": "b"})
    pair = compare([a, b]).pairs[0]
    row = pair.rows[0]
    assert row.verdict == "incomparable" and row.statistical == "faster"
    assert any(e.startswith("cpu:") for e in row.env)
    assert row.in_geomean and geomeans(pair.rows)[None].ratio == pytest.approx(0.5, rel=0.05)
    diff = {k: matters for k, _, _, matters in pair.env_diff}
    assert diff == {"cpu": True, "hostname": False}


def test_environment_difference_for_another_backend_leaves_results_comparable():
    s = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98]
    a = make_report([result(KEY, s)], {**FP, "cuda": "12.4"})
    b = make_report([result(KEY, s)], {**FP, "cuda": "13.0"})
    assert compare([a, b]).pairs[0].rows[0].verdict == "same"


def test_few_samples_are_noisy_whatever_the_numbers():
    row = compare_pair(KEY, result(KEY, [1.0, 1.0, 1.0]), result(KEY, [2.0, 2.0, 2.0]), Criteria())
    assert row.verdict == "noisy" and "few-samples" in row.flags


def test_imported_statistics_without_samples_are_flagged():
    base = Result(KEY, "ok", imported_stats={"n": 100, "median": 1.0, "iqr": 0.02})
    other = Result(KEY, "ok", imported_stats={"n": 100, "median": 1.5, "iqr": 0.02})
    assert summary_of(base).median == 1.0 and not summary_of(base).from_samples
    row = compare_pair(KEY, base, other, Criteria())
    assert row.verdict == "slower" and "no-samples" in row.flags and row.change.p_value is None


def test_per_key_threshold_overrides_the_criteria():
    rng = np.random.default_rng(5)
    base, other = result(KEY, timings(rng, 40, 1.0, 0.01)), result(KEY, timings(rng, 40, 1.10, 0.01))
    assert compare_pair(KEY, base, other, Criteria(threshold=0.05)).verdict == "slower"
    assert compare_pair(KEY, base, other, Criteria(threshold=0.05), threshold=0.25).verdict == "same"


def test_compare_three_reports_against_the_first():
    k2 = CaseKey.make("data", "load", {}, "cpu")
    rng = np.random.default_rng(11)
    a = make_report([result(KEY, timings(rng)), result(k2, timings(rng))], label="a")
    b = make_report([result(KEY, timings(rng, median=2e-3))], label="b")
    c = make_report([result(KEY, timings(rng)), result(k2, timings(rng, median=0.5e-3))], label="b")
    comp = compare([a, b, c])
    assert comp.base_name == "a" and [p.name for p in comp.pairs] == ["b", "b#2"]
    assert {r.key: r.verdict for r in comp.pairs[0].rows} == {KEY: "slower", k2: "missing"}
    assert {r.key: r.verdict for r in comp.pairs[1].rows} == {KEY: "same", k2: "faster"}
    assert comp.keys == sorted([KEY, k2], key=CaseKey.sort_key)


def test_keys_that_differ_by_a_backend_of_none_still_sort_and_compare():
    """A damaged or hand-edited report may carry a key field that is not text (found by the hostile-input
    fuzzing: a backend of None next to "cpu" in one suite and benchmark made the gate crash while sorting)."""
    odd = CaseKey(KEY.suite, KEY.benchmark, KEY.params, None, KEY.dtype, KEY.mode)
    rng = np.random.default_rng(12)
    a = make_report([result(KEY, timings(rng)), result(odd, timings(rng))], label="a")
    b = make_report([result(KEY, timings(rng)), result(odd, timings(rng))], label="b")
    comp = compare([a, b])
    assert set(comp.keys) == {KEY, odd} and comp.keys == sorted([KEY, odd], key=CaseKey.sort_key)


def test_compare_refuses_one_report_and_reports_without_common_results():
    a = make_report([result(KEY, [1.0] * 6)])
    b = make_report([result(CaseKey.make("x", "y"), [1.0] * 6)])
    with pytest.raises(UserError, match="at least two"):
        compare([a])
    with pytest.raises(UserError, match="no results in common"):
        compare([a, b], ["base", "other"])


def test_geomean_known_values():
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert geomean([0.5, 2.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        geomean([])
    with pytest.raises(ValueError):
        geomean([1.0, 0.0])


def test_geomeans_per_suite_and_overall():
    ks = [CaseKey.make("train", f"m{i}") for i in range(2)] + [CaseKey.make("data", "d")]
    const = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    a = make_report([result(k, const) for k in ks])
    b = make_report([result(ks[0], [2.0] * 6), result(ks[1], [8.0] * 6), result(ks[2], [0.5] * 6)])
    gm = geomeans(compare([a, b]).pairs[0].rows)
    assert gm["train"].ratio == pytest.approx(4.0) and gm["train"].n == 2
    assert gm["data"].ratio == pytest.approx(0.5) and gm["data"].speedup == pytest.approx(2.0)
    assert gm[None].ratio == pytest.approx(math.exp((math.log(2) + math.log(8) + math.log(0.5)) / 3)) and gm[None].n == 3


def test_criteria_validation():
    with pytest.raises(UserError):
        Criteria(threshold=0)
    with pytest.raises(UserError):
        Criteria(alpha=0.7)
    assert Criteria(alpha=0.01).level == pytest.approx(0.99)


# --- instruction counts ----------------------------------------------------------------------------------
COUNTS = [8300.0, 8301.0, 8300.5]


def counted(key, samples, **kw):
    return result(key, samples, timing_method="callgrind-instructions", **kw)


def test_instruction_counts_use_the_tolerance_rule_not_a_test():
    row = compare_pair(KEY, counted(KEY, COUNTS), counted(KEY, [x * 1.02 for x in COUNTS]), Criteria())
    assert row.verdict == "slower" and row.change.ratio == pytest.approx(1.02)
    assert row.change.p_value is None and row.in_geomean
    assert "few-samples" not in row.flags  # three exact counts are not "few samples" of a noisy time
    same = compare_pair(KEY, counted(KEY, COUNTS), counted(KEY, [x * 1.003 for x in COUNTS]), Criteria())
    assert same.verdict == "same"
    strict = compare_pair(KEY, counted(KEY, COUNTS), counted(KEY, [x * 1.003 for x in COUNTS]),
                          Criteria(instructions_tolerance=0.001))
    assert strict.verdict == "slower"
    loose = compare_pair(KEY, counted(KEY, COUNTS), counted(KEY, [x * 1.02 for x in COUNTS]), Criteria(),
                         tolerance=0.05)
    assert loose.verdict == "same"


@pytest.mark.parametrize("counts_first", [False, True])
def test_time_and_instructions_never_compare(counts_first):
    """Whichever side holds the counts: no ratio of instructions to seconds, no statistical verdict."""
    timed, counts = result(KEY, [1e-6] * 10, timing_method="perf_counter"), counted(KEY, COUNTS)
    row = compare_pair(KEY, *((counts, timed) if counts_first else (timed, counts)), Criteria())
    assert row.verdict == "incomparable" and row.change is None and row.statistical is None
    methods = "callgrind-instructions vs perf_counter" if counts_first else "perf_counter vs callgrind-instructions"
    assert row.reasons == [f"timed with {methods}"]


def test_instruction_counts_with_an_environment_difference_are_incomparable():
    row = compare_pair(KEY, counted(KEY, COUNTS), counted(KEY, COUNTS), Criteria(),
                       env_diff=[("torch", "2.14.1", "2.15.0", True)])
    assert row.verdict == "incomparable" and row.statistical == "same"


def test_counts_with_and_without_the_allocators_internals_are_incomparable():
    apart = {"instructions": {"allocator": 9e4, "allocator_functions": ["_int_malloc"]}}
    old = counted(KEY, [x * 1.1 for x in COUNTS])  # made before the allocators were counted apart
    row = compare_pair(KEY, old, counted(KEY, COUNTS, metrics=apart), Criteria())
    assert row.verdict == "incomparable" and "allocators' internals" in row.reasons[0]
    both = compare_pair(KEY, counted(KEY, COUNTS, metrics=apart), counted(KEY, COUNTS, metrics=apart), Criteria())
    assert both.verdict == "same"


def test_a_bad_instructions_tolerance_is_a_user_error():
    with pytest.raises(UserError, match="instructions tolerance"):
        Criteria(instructions_tolerance=2.0)


# --- rounds: the unit of evidence is a round -------------------------------------------------------------
def rounds_result(key, medians, rng, n=12, within=0.01, start=0):
    """A result measured in rounds: round i's samples scatter by `within` around `medians[i]`."""
    samples, meta = [], []
    for i, m in enumerate(medians):
        samples += timings(rng, n, m, within)
        meta.append({"round": start + i, "position": 0, "n": n, "loops": 1})
    return Result(key=key, status="ok", samples=samples, rounds=meta)


def process_medians(rng, r, sd, median=1e-3, slowdown=0.0, machine=None):
    """R rounds, each a fresh process with its own lognormal offset (sd); `machine[i]` scales round i."""
    offsets = np.exp(sd * rng.standard_normal(r))
    speed = np.ones(r) if machine is None else np.asarray(machine, dtype=float)
    return (median * (1 + slowdown) * offsets * speed).tolist()


def test_welch_and_paired_changes_match_scipy():
    from scipy import stats

    from benchbench.analysis.compare import change_from_paired_rounds, change_from_rounds

    a, b = [1.0, 1.1, 0.95, 1.05], [1.2, 1.3, 1.1, 1.25, 1.22]
    c = change_from_rounds(a, b)
    ref = stats.ttest_ind(np.log(b), np.log(a), equal_var=False)
    assert c.p_value == pytest.approx(ref.pvalue) and c.unit == "round"
    assert c.ratio == pytest.approx(math.exp(np.mean(np.log(b)) - np.mean(np.log(a))))
    lo, hi = ref.confidence_interval(0.95)
    assert (c.ci_low, c.ci_high) == pytest.approx((math.exp(lo), math.exp(hi)))
    p = change_from_paired_rounds(list(zip(a, b[:4], strict=True)))
    ref = stats.ttest_rel(np.log(b[:4]), np.log(a))
    assert p.p_value == pytest.approx(ref.pvalue) and p.df == 3 and p.unit == "paired-round"


def test_round_interval_covers_the_true_ratio_at_its_nominal_rate():
    from benchbench.analysis.compare import change_from_rounds

    trials, covered = 600, 0
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        c = change_from_rounds(process_medians(rng, 5, 0.08), process_medians(rng, 5, 0.08, slowdown=0.2))
        covered += c.ci_low <= 1.2 <= c.ci_high
    assert within_binomial_se(covered / trials, 0.95, trials)  # 95% nominal, neither side


def binomial_se(p: float, trials: int) -> float:
    return math.sqrt(p * (1 - p) / trials)


def within_binomial_se(rate: float, p: float, trials: int, k: float = 3.0, side: str = "both") -> bool:
    """`rate` (of `trials` seeded trials) agrees with a true rate p: within k binomial standard errors, so the
    property decides and not the seed (a bound at the observed value only pins the seed)."""
    se = binomial_se(p, trials)
    return (side == "above" or rate <= p + k * se) and (side == "below" or rate >= p - k * se)


def _detection_rate(rounds, sd, paired, trials=600):
    """How often `classify` calls `slower` when the true slowdown is exactly the MDE of the true spread."""
    from benchbench.analysis.compare import change_from_paired_rounds, change_from_rounds, detectable_slowdown

    threshold, alpha = 0.05, 0.05
    # The MDE for data whose spread is the true one: build a Change with the true se and ask.
    se = sd / math.sqrt(rounds) if paired else sd * math.sqrt(2 / rounds)
    unit = "paired-round" if paired else "round"
    truth = Change(1.0, 1.0, 1.0, 0.95, 1.0, sd, rounds, rounds, unit, se, rounds - 1 if paired else 2 * rounds - 2)
    mde = detectable_slowdown(truth, threshold, alpha, 0.9)
    hits = 0
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        if paired:  # each round's machine state hits both sides; the pair differs by sd
            machine = np.exp(0.3 * rng.standard_normal(rounds))
            a = process_medians(rng, rounds, sd / math.sqrt(2), machine=machine)
            b = process_medians(rng, rounds, sd / math.sqrt(2), slowdown=mde, machine=machine)
            c = change_from_paired_rounds(list(zip(a, b, strict=True)))
        else:
            c = change_from_rounds(process_medians(rng, rounds, sd), process_medians(rng, rounds, sd, slowdown=mde))
        hits += classify(c, threshold, alpha) == "slower"
    return mde, hits / trials


@pytest.mark.parametrize("rounds, paired", [(3, True), (5, True), (10, True), (3, False), (5, False), (10, False)])
def test_the_stated_detectable_effect_is_met_at_its_nominal_power(rounds, paired):
    trials = 1000
    mde, rate = _detection_rate(rounds, 0.05, paired, trials)
    # paired: exact df, so the rate is the nominal 90%; Welch (unpaired) takes its df's lower bound, so
    # at least 90%. (Welch's estimated df instead: 82% at 3 rounds, 88% at 5, caught at 1000 trials.)
    assert within_binomial_se(rate, 0.9, trials, side="both" if paired else "above"), (mde, rate)


@pytest.mark.parametrize("rounds, paired", [(3, True), (10, True), (3, False), (10, False)])
def test_the_detectable_effect_is_the_noncentral_t_power_at_the_lower_df(rounds, paired):
    """The MDE against scipy's noncentral t, computed here from its definition: at the stated slowdown the
    test statistic (d - log(1 + threshold)) / se exceeds t(1 - alpha/2, n - 1) with probability 90%."""
    from scipy.stats import nct, t

    from benchbench.analysis.compare import detectable_slowdown

    se = 0.05 / math.sqrt(rounds) if paired else 0.05 * math.sqrt(2 / rounds)
    truth = Change(1.0, 1.0, 1.0, 0.95, 1.0, 0.05, rounds, rounds, "paired-round" if paired else "round", se,
                   rounds - 1 if paired else 2 * rounds - 2)  # Welch's df at equal spreads: 2n - 2
    mde = detectable_slowdown(truth, 0.05, 0.05, 0.9)
    df = rounds - 1  # paired: exact; Welch: its lower bound min(nA, nB) - 1, whatever the estimate says
    power = nct.sf(t.ppf(0.975, df), df, (math.log1p(mde) - math.log1p(0.05)) / se)
    assert power == pytest.approx(0.9, abs=1e-3)


def test_stated_mde_shrinks_with_rounds_and_grows_with_spread():
    from benchbench.analysis.compare import change_from_paired_rounds, detectable_slowdown

    rng = np.random.default_rng(3)
    d = rng.standard_normal(40) * 0.05
    mde = [detectable_slowdown(change_from_paired_rounds([(1.0, math.exp(x)) for x in d[:n]]), 0.05, 0.05)
           for n in (3, 5, 10, 40)]
    assert mde == sorted(mde, reverse=True) and mde[-1] > 0.05
    wide = detectable_slowdown(change_from_paired_rounds([(1.0, math.exp(3 * x)) for x in d[:5]]), 0.05, 0.05)
    assert wide > mde[1]


def _aa_false_alarms(paired, threshold, trials=1000, r=5, sd=0.10):
    """A/A with per-process lognormal offsets (sd 10%) far larger than the spread inside a round (1%)."""
    from benchbench.analysis.compare import change_from_paired_rounds, change_from_rounds

    alarms = Counter()
    for seed in range(trials):
        rng = np.random.default_rng(10_000 + seed)
        machine = np.exp(0.2 * rng.standard_normal(r)) if paired else None  # per-run (per-round) machine state
        a, b = process_medians(rng, r, sd, machine=machine), process_medians(rng, r, sd, machine=machine)
        c = change_from_paired_rounds(list(zip(a, b, strict=True))) if paired else change_from_rounds(a, b)
        alarms[classify(c, threshold, 0.05)] += 1
    return alarms


@pytest.mark.parametrize("paired", [False, True])
def test_at_a_near_zero_threshold_the_false_alarm_rate_is_alpha(paired):
    # The threshold alone cannot hide a broken test here: at 0.01% only the test's own error rate remains.
    counts = _aa_false_alarms(paired, 0.0001)
    rate = (counts["slower"] + counts["faster"]) / 1000
    assert 0.025 <= rate <= 0.075, counts  # alpha = 0.05 (sd of the rate over 1000 trials: 0.7%)


def test_sample_level_statistics_would_cry_wolf_on_the_same_data():
    """Why rounds: the same A/A data pooled into samples (one round per side) alarms most of the time."""
    alarms = 0
    for seed in range(100):
        rng = np.random.default_rng(20_000 + seed)
        a, b = process_medians(rng, 1, 0.10), process_medians(rng, 1, 0.10)
        ca = change_from_samples(timings(rng, 60, a[0], 0.01), timings(rng, 60, b[0], 0.01))
        alarms += classify(ca, 0.0001, 0.05) in ("slower", "faster")
    assert alarms >= 80


def test_compare_uses_rounds_welch_for_stored_reports_and_pairs_rounds_measured_together():
    rng = np.random.default_rng(5)
    machine = [1.0, 1.4, 0.8, 1.2, 1.0]  # a clock whose speed changes round by round, on both sides
    base = rounds_result(KEY, process_medians(rng, 5, 0.01, machine=machine), rng)
    cur = rounds_result(KEY, process_medians(rng, 5, 0.01, slowdown=0.15, machine=machine), rng)
    unpaired = compare_pair(KEY, base, cur, Criteria())
    paired = compare_pair(KEY, base, cur, Criteria(), paired=True)
    assert unpaired.change.unit == "round" and unpaired.verdict == "noisy"  # the machine's swings hide it
    assert paired.change.unit == "paired-round" and paired.verdict == "slower"  # they cancel in pairs
    assert paired.change.ci_low < 1.15 < paired.change.ci_high
    assert paired.mde < 0.15 < unpaired.mde
    assert not paired.flags and not unpaired.flags


def test_a_streaming_case_is_compared_on_its_round_medians_not_its_fastest_window():
    """A DataLoader window served from prefetched batches is fast for a reason that is not the code: with
    a few such windows in every round of the baseline, the fastest sample would call an unchanged
    pipeline 3x slower."""
    rng = np.random.default_rng(8)

    def stream(prefetched: bool, declare: bool) -> Result:
        r = rounds_result(KEY, [10e-3] * 5, rng, n=12, within=0.01)
        if prefetched:  # the first window of every round came from the prefetch buffer
            r.samples = [s / 3 if i % 12 == 0 else s for i, s in enumerate(r.samples)]
        if declare:
            r.round_statistic = "median"
        return r

    fastest = compare_pair(KEY, stream(True, False), stream(False, False), Criteria())
    assert fastest.verdict == "slower" and fastest.change.ratio > 2.5
    median = compare_pair(KEY, stream(True, True), stream(False, True), Criteria())
    assert median.verdict == "same" and median.change.ratio == pytest.approx(1.0, abs=0.02)


def test_stored_rounds_are_compared_on_the_declared_round_statistic_on_both_sides():
    """Two stored runs (Welch over rounds), the case declaring the round median: each side's round stands for
    its median, so a copy of the baseline's samples 10% slower is exactly 1.10 (the fastest sample on one
    side would not be)."""
    rng = np.random.default_rng(12)
    base = rounds_result(KEY, [1e-3, 1.2e-3, 0.9e-3], rng, n=9, within=0.05)
    base.round_statistic = "median"
    slower = Result(key=KEY, status="ok", samples=[1.1 * s for s in base.samples], rounds=list(base.rounds),
                    round_statistic="median")
    row = compare_pair(KEY, base, slower, Criteria())
    assert row.change.unit == "round" and row.change.ratio == pytest.approx(1.1, rel=1e-12)


def test_a_round_whose_fastest_sample_is_zero_falls_back_to_the_samples():
    """A round value of 0 (a timer's resolution) has no logarithm: the rounds are not compared on it, and
    the row says it fell back to the sample rule instead of failing."""
    rng = np.random.default_rng(13)
    base = rounds_result(KEY, [1e-3] * 3, rng)
    other = rounds_result(KEY, [1e-3] * 3, rng)
    other.samples[0] = 0.0  # the fastest sample of round 0
    row = compare_pair(KEY, base, other, Criteria())
    assert row.change.unit == "sample" and "single-round" in row.flags and row.verdict == "same"


def test_paired_rounds_before_the_plans_first_look_state_no_detectable_effect():
    """An `ab` stopped before its sequential plan's first look (an interrupted run's partial report) may
    spend no alpha yet: its interval is the whole line and the smallest effect it could detect is infinite."""
    from benchbench.analysis.sequential import Plan

    rng = np.random.default_rng(3)
    base = rounds_result(KEY, [1e-3, 1.1e-3, 0.9e-3], rng)
    cur = rounds_result(KEY, [1.05e-3, 1.16e-3, 0.94e-3], rng)
    row = compare_pair(KEY, base, cur, Criteria(), paired=True, plan=Plan(alpha=0.05, min_rounds=5, max_rounds=10))
    assert row.change.level == 1.0 and (row.change.ci_low, row.change.ci_high) == (0.0, math.inf)
    assert row.mde == math.inf and row.verdict == "noisy"
    looked = compare_pair(KEY, base, cur, Criteria(), paired=True, plan=Plan(alpha=0.05, min_rounds=3, max_rounds=10))
    assert 0 < looked.mde < math.inf


def test_results_run_with_a_different_world_size_are_not_comparable():
    rng = np.random.default_rng(9)
    base = rounds_result(KEY, [1e-3] * 3, rng)
    other = rounds_result(KEY, [1e-3] * 3, rng)
    base.world_size, base.nnodes, other.world_size, other.nnodes = 2, 1, 4, 1
    row = compare_pair(KEY, base, other, Criteria())
    assert row.verdict == "incomparable" and row.reasons == ["world size 2 vs 4"]
    other.world_size = 2
    assert compare_pair(KEY, base, other, Criteria()).verdict != "incomparable"


def test_single_round_results_keep_the_sample_rule_and_say_so():
    rng = np.random.default_rng(6)
    row = compare_pair(KEY, result(KEY, timings(rng, 30, 1e-3, 0.01)), rounds_result(KEY, [1.2e-3] * 3, rng),
                       Criteria())
    assert row.change.unit == "sample" and "single-round" in row.flags and row.verdict == "slower"
    assert row.mde is not None and row.mde > 0.05


def test_paired_reports_are_recognised_by_sides_and_round_seeds():
    from benchbench.analysis.compare import paired_reports

    def rep(side, seeds):
        r = make_report([])
        r.side = {"name": side} if side else None
        r.rounds = [{"round": i, "seed": s} for i, s in enumerate(seeds)]
        return r

    assert paired_reports(rep("baseline", [7, 8, 9]), rep("current", [7, 8, 9]))
    assert not paired_reports(rep("baseline", [7, 8, 9]), rep("current", [7, 8, 10]))
    assert not paired_reports(rep(None, [7, 8, 9]), rep(None, [7, 8, 9]))  # two plain runs
    assert not paired_reports(rep("current", [7, 8]), rep("current", [7, 8]))


def _with_canary(report, loops):
    report.rounds = [{"round": i, "seed": i, "canary": {"python_loop_s": v, "torch_dispatch_s": 1e-6}}
                     for i, v in enumerate(loops)]
    return report


def test_the_canary_voids_timing_verdicts_when_the_machine_moved_between_or_within_runs():
    rng = np.random.default_rng(8)
    base = _with_canary(make_report([rounds_result(KEY, [1e-3] * 5, rng)]), [5e-6] * 5)
    slow_machine = _with_canary(make_report([rounds_result(KEY, [1.3e-3] * 5, rng)]), [6.5e-6] * 5)
    (row,) = compare([base, slow_machine]).pairs[0].rows
    assert row.statistical == "slower" and row.machine == [("between", pytest.approx(1.3))]
    drifting = _with_canary(make_report([rounds_result(KEY, [1e-3] * 5, rng)]), [5e-6, 5e-6, 5e-6, 7e-6, 7e-6])
    (row,) = compare([base, drifting]).pairs[0].rows
    assert [w for w, _ in row.machine] == ["other"]
    steady = _with_canary(make_report([rounds_result(KEY, [1e-3] * 5, rng)]), [5.1e-6, 4.9e-6, 9e-6, 5e-6, 5e-6])
    (row,) = compare([base, steady]).pairs[0].rows
    assert row.machine == []  # one preempted canary is the canary's noise
    (row,) = compare([base, slow_machine], criteria=Criteria(paired=True)).pairs[0].rows
    assert row.machine == []  # paired rounds share the machine: no canary check


def test_bursts_of_interference_do_not_fake_a_regression():
    """A/A on a busy machine: in the current side's rounds the process was descheduled for most of its
    samples (they take 5x as long); the op itself was as fast as ever, as its fastest samples show."""
    rng = np.random.default_rng(11)
    base = rounds_result(KEY, [1e-3] * 3, rng, n=20)
    contended = []
    for _ in range(3):
        clean = timings(rng, 6, 1e-3, 0.01)
        contended += clean + [x * 5 for x in timings(rng, 14, 1e-3, 0.05)]
    cur = Result(key=KEY, status="ok", samples=contended, rounds=[{"round": i, "n": 20} for i in range(3)])
    assert summary_of(cur).median > 4 * summary_of(base).median
    row = compare_pair(KEY, base, cur, Criteria(), paired=True)
    assert row.verdict != "slower" and 0.95 < row.change.ratio < 1.05
    by_median = compare_pair(KEY, base, cur, Criteria(round_quantile=0.5), paired=True)
    assert by_median.verdict == "slower"  # what a test on round medians would claim


def test_the_bootstrap_of_a_million_sample_side_stays_in_bounded_memory():
    """One round per side with many samples: no n_boot x n index matrix (it took 1.6 GB at 50,000)."""
    import tracemalloc

    import numpy as np

    from benchbench.analysis.compare import bootstrap_ratio_ci

    rng = np.random.default_rng(5)
    base, other = rng.lognormal(0, 0.2, 20_000), rng.lognormal(0.05, 0.2, 20_000)
    tracemalloc.start()
    lo, hi = bootstrap_ratio_ci(base, other, seed=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40 * 2**20  # a plain bootstrap holds 2 x 2000 x 20,000 x 8 bytes = 640 MB
    assert lo < math.exp(0.05) < hi


def test_the_exact_bootstrap_median_agrees_with_resampling(monkeypatch):
    import numpy as np

    from benchbench.analysis import compare as c

    xs = np.random.default_rng(7).lognormal(0, 0.3, 1501)
    plain = c.bootstrap_medians(xs, 4000, np.random.default_rng(1))
    monkeypatch.setattr(c, "BOOTSTRAP_RESAMPLE_MAX", 10)
    exact = c.bootstrap_medians(xs, 4000, np.random.default_rng(2))
    sd = plain.std()
    for q in (0.025, 0.5, 0.975):
        assert abs(np.quantile(exact, q) - np.quantile(plain, q)) < 0.3 * sd
    assert 0.85 < exact.std() / sd < 1.15
