"""latency.py and quantile_ratio.py: p50/p90/p99 and tokens/s compared beside the time, the p99 rule on
seeded synthetic per-call samples, and the rows in compare, gate, history and the HTML page."""

import numpy as np
import pytest
from test_compare import make_report

from benchbench import metrics
from benchbench.analysis.compare import compare
from benchbench.analysis.gate import gate, parse_rules
from benchbench.analysis.history import analyse
from benchbench.metrics import latency
from benchbench.model.percentiles import summary
from benchbench.model.quantile_ratio import Resamples, ratio_interval
from benchbench.model.report import CaseKey, Result
from benchbench.output.comparison import comparison_doc, comparison_text
from benchbench.output.gate import gate_doc, markdown_summary, terminal_text
from benchbench.output.history import history_text
from benchbench.output.report_html import report_page

DECODE = CaseKey.make("inference", "decode", {"size": "tiny", "batch": 8}, "cpu", "float32", "eager")
VISION = CaseKey.make("inference", "resnet50", {"batch": 1}, "cpu", "float32", "eager")


def calls(rng, n=100, median=1e-3, round_sd=0.03, call_sd=0.04, spikes=0.02, delay_every=0, delay=2.0):
    """One round of per-call times: a process effect shared by the round's calls, call-to-call noise, rare
    spikes (a scheduler tick, a collection) of half a call on average; `delay_every`: every k-th call
    takes `delay` median calls longer (the planted tail change)."""
    x = median * np.exp(round_sd * rng.standard_normal()) * np.exp(call_sd * rng.standard_normal(n))
    x += (rng.random(n) < spikes) * rng.exponential(0.5 * median, n)
    if delay_every:
        x[delay_every - 1::delay_every] += delay * median
    return x.tolist()


def per_call(key, rounds, tokens=None):
    """A result timed one call per sample, as the inference suite leaves it (with its percentile summary)."""
    samples = [x for r in rounds for x in r]
    records = [{"round": i, "n": len(r), "loops": 1} for i, r in enumerate(rounds)]
    work = {"items": tokens, "items_unit": "tokens"} if tokens else {"items": 1, "items_unit": "images"}
    return Result(key=key, status="ok", samples=samples, rounds=records, work=work, metrics=summary(samples, "itl"))


def side(rng, n_rounds=5, **kw):
    """One side's rounds (5, as the default profile runs: fewer widen the interval, see latency.few_rounds)."""
    return [calls(rng, **kw) for _ in range(n_rounds)]


def rows_of(base, other, settings=None):
    return {m.name: m.compare_results(base.key, base, other, settings or {}) for m in latency.LATENCY_METRICS}


# --- the resampling ------------------------------------------------------------------------------------
def test_each_resample_statistic_is_the_statistic_of_the_calls_it_drew():
    rng = np.random.default_rng(0)
    rs = Resamples([rng.random(7), rng.random(5), rng.random(9)], 200, rng)
    rows = np.arange(200)[:, None]
    cum = rs._flat.reshape(200, -1) - rows * rs._stride
    counts = np.diff(np.concatenate([np.zeros((200, 1), int), cum], axis=1), axis=1)
    # each resample holds as many calls as the rounds it drew have, from those rounds only
    assert set(counts.sum(axis=1)) <= {a + b + c for a in (5, 7, 9) for b in (5, 7, 9) for c in (5, 7, 9)}
    for q in (0.5, 0.9, 0.99, None):
        drawn = [np.repeat(rs.values, counts[b]) for b in range(200)]
        expected = [np.mean(d) if q is None else np.quantile(d, q) for d in drawn]
        assert np.allclose(rs.statistic(q), expected)


def test_known_quantile_ratios_are_estimated_and_covered():
    rng = np.random.default_rng(1)
    base = [rng.lognormal(0, 0.3, 400).tolist() for _ in range(4)]
    scaled = [(1.5 * rng.lognormal(0, 0.3, 400)).tolist() for _ in range(4)]
    for q, true in ((0.5, 1.5), (0.9, 1.5), (0.99, 1.5), (None, 1.5)):
        iv = ratio_interval(base, scaled, q, seed=3)
        assert iv.low <= true <= iv.high and iv.ratio == pytest.approx(true, rel=0.15)
        assert iv.calls == (1600, 1600) and iv.rounds == (4, 4)
    with pytest.raises(ValueError, match="no samples"):
        ratio_interval([[]], [[1.0]], 0.5, seed=0)
    with pytest.raises(ValueError, match="not finite"):
        ratio_interval([[1.0, float("nan")]], [[1.0]], 0.5, seed=0)


def test_a_a_intervals_exclude_one_no_more_often_than_their_level_allows():
    """Per-call samples that share a round effect: the two-stage bootstrap's 95% interval of the p99 ratio
    leaves out 1 in at most 5% of A/A trials, plus three binomial standard errors."""
    trials, excluded = 60, 0
    for seed in range(trials):
        rng = np.random.default_rng(100 + seed)
        iv = ratio_interval(side(rng), side(rng), 0.99, seed=seed, resamples=400)
        excluded += not iv.low <= 1 <= iv.high
    assert excluded <= 0.05 * trials + 3 * (0.05 * 0.95 * trials) ** 0.5


# --- the rule ------------------------------------------------------------------------------------------
def test_the_p99_rule_gives_no_false_regression_in_a_a_and_catches_a_planted_tail():
    false_p99, caught, p50_worse = 0, 0, 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        base = per_call(DECODE, side(rng), tokens=8)
        false_p99 += rows_of(base, per_call(DECODE, side(rng), tokens=8))["latency_p99"].verdict == "worse"
        planted = rows_of(base, per_call(DECODE, side(rng, delay_every=20), tokens=8))
        caught += planted["latency_p99"].verdict == "worse"
        p50_worse += planted["latency_p50"].verdict == "worse"
    assert false_p99 == 0  # 2.5% at the threshold; A/A lies far from it
    assert caught >= 15  # about 90% power for this tail against spikes of 2% of calls
    assert p50_worse == 0  # one call in twenty moves the median by a few percent, within 10%


def loaded_calls(rng, n=200, every=0, delay=0.0):
    """One round on a loaded machine, as measured here (benchmarks/p99_aa.py, docs/inference.md): call noise,
    and the machine's own spikes (another process's time slice) on 0.5-2.5% of calls, a rate that varies
    from round to round, each 3-7 median calls longer; `every`: every k-th call `delay` median calls longer."""
    x = np.exp(0.04 * rng.standard_normal(n)) * np.exp(0.05 * rng.standard_normal())
    hit = rng.random(n) < rng.uniform(0.005, 0.025)
    x[hit] += rng.uniform(3, 7, hit.sum())
    if every:
        x[every - 1::every] += delay
    return (1e-3 * x).tolist()


def test_p99_sees_a_planted_tail_only_above_the_machines_own_spikes():
    """With about 1% of calls already 4-8x slow, p99 sits between the body and the spikes: 2% of calls 3x
    slow stays under the spikes and p99 cannot tell (never `worse`), 2% 10x slow lifts p99 above them."""
    seen: dict[str, list[str]] = {"aa": [], "3x": [], "10x": []}
    for seed in range(6):
        rng = np.random.default_rng(200 + seed)
        base = per_call(DECODE, [loaded_calls(rng) for _ in range(5)], tokens=1)
        for name, delay in (("aa", 0.0), ("3x", 2.0), ("10x", 9.0)):
            other = per_call(DECODE, [loaded_calls(rng, every=50 if delay else 0, delay=delay) for _ in range(5)],
                             tokens=1)
            seen[name].append(latency.compare_percentile("p99", DECODE, base, other).verdict)
    assert "worse" not in seen["aa"] and "worse" not in seen["3x"]
    assert seen["10x"].count("worse") >= 3, seen["10x"]  # 14 of 20 seeds in a longer run; 12 of 24 measured


def test_too_few_calls_for_p99_is_incomparable_and_says_so_while_p50_is_judged():
    rng = np.random.default_rng(2)
    base = per_call(DECODE, side(rng, n_rounds=2, n=30), tokens=8)
    other = per_call(DECODE, side(rng, n_rounds=2, n=30), tokens=8)
    rows = rows_of(base, other)
    assert rows["latency_p99"].verdict == "incomparable"
    assert rows["latency_p99"].why == "too few calls to judge p99: 60 and 60 (needs >= 100 per side)"
    assert rows["latency_p99"].base is None  # no p99 from 60 calls
    assert rows["latency_p50"].verdict in ("same", "noisy") and rows["latency_p50"].base is not None
    assert rows["latency_p90"].verdict != "incomparable"


def test_tokens_per_s_is_tokens_over_the_total_time_and_a_slower_decode_is_worse():
    rng = np.random.default_rng(3)
    base = per_call(DECODE, side(rng), tokens=8)
    assert latency.tokens_value(base) == pytest.approx(8 * len(base.samples) / sum(base.samples))
    slow = per_call(DECODE, [[1.25 * x for x in r] for r in side(rng)], tokens=8)
    row = latency.compare_tokens(DECODE, base, slow)
    assert row.verdict == "worse" and row.ratio == pytest.approx(0.8, rel=0.05)
    assert row.details["high"] < 1 / 1.1
    fast = per_call(DECODE, [[0.75 * x for x in r] for r in side(rng)], tokens=8)
    assert latency.compare_tokens(DECODE, base, fast).verdict == "better"
    # a vision case counts images: no tokens/s row, but its percentiles compare
    img = per_call(VISION, side(rng))
    rows = rows_of(img, per_call(VISION, side(rng)))
    assert rows["tokens_per_s"] is None and rows["latency_p50"] is not None


def test_few_rounds_widen_the_interval_so_that_two_rounds_cannot_call_a_planted_tail():
    rng = np.random.default_rng(6)
    base = per_call(DECODE, side(rng, n_rounds=2), tokens=8)
    row = rows_of(base, per_call(DECODE, side(rng, n_rounds=2, delay_every=20), tokens=8))["latency_p99"]
    low, high = row.details["bootstrap"]
    assert row.details["low"] < low and row.details["high"] > high  # x6.5 in logs with 2 rounds per side
    assert row.verdict == "noisy"
    one = per_call(DECODE, side(rng, n_rounds=1, n=200), tokens=8)
    row = rows_of(one, per_call(DECODE, side(rng, n_rounds=1, n=200, delay_every=20), tokens=8))["latency_p99"]
    assert [row.details["low"], row.details["high"]] == row.details["bootstrap"]
    assert "one round per side: calls taken as independent" in row.why


def test_rows_need_per_call_samples_on_both_sides():
    rng = np.random.default_rng(4)
    timed = per_call(DECODE, side(rng), tokens=8)
    blocks = Result(key=DECODE, status="ok", samples=[1e-3] * 10, loops_per_sample=50)  # block means
    no_summary = Result(key=DECODE, status="ok", samples=[1e-3] * 10)  # not a per-call case
    assert all(r is None for r in rows_of(blocks, no_summary).values())
    one_side = rows_of(timed, no_summary)
    assert one_side["latency_p99"].verdict == "incomparable" and "one side only" in one_side["latency_p99"].why
    assert one_side["tokens_per_s"].verdict == "incomparable"


def test_the_metrics_are_registered_beside_the_time_with_their_settings():
    for name in ("latency_p50", "latency_p90", "latency_p99", "tokens_per_s"):
        assert metrics.get(name) in metrics.BESIDE_TIME
    assert metrics.get("tokens_per_s").unit == "per_second" and not metrics.get("tokens_per_s").lower_is_better
    defaults = metrics.settings_defaults()
    assert defaults["p99_threshold"] == 0.20 and defaults["latency_threshold"] == 0.10
    assert defaults["tokens_threshold"] == 0.10


# --- compare, gate, history, the page ------------------------------------------------------------------
def planted_reports(seed=5):
    rng = np.random.default_rng(seed)
    base = make_report([per_call(DECODE, side(rng), tokens=8), per_call(VISION, side(rng))])
    cur = make_report([per_call(DECODE, side(rng, delay_every=20), tokens=8), per_call(VISION, side(rng))])
    return base, cur


def test_compare_shows_percentile_and_token_rows_in_text_markdown_and_json():
    base, cur = planted_reports()
    comp = compare([base, cur], ["base", "cur"])
    rows = {(r.metric, r.key): r for r in comp.pairs[0].metric_rows}
    assert rows[("latency_p99", DECODE)].verdict == "worse"
    assert rows[("latency_p99", VISION)].verdict in ("same", "noisy")
    text = comparison_text(comp)
    assert "cur latency p99: 1 worse" in text and "cur tokens/s:" in text
    md = comparison_text(comp, "github")
    assert "| latency p99" in md
    doc = comparison_doc(comp)
    got = {(r["metric"], r["case"]) for r in doc["metrics"]["cur"]}
    assert ("latency_p99", DECODE.label) in got and ("tokens_per_s", DECODE.label) in got


def test_gate_fails_on_a_p99_regression_and_rules_set_p99_threshold_per_case():
    base, cur = planted_reports()
    result = gate(base, cur, names=("base", "cur"))
    assert result.verdict == "regression"
    [bad] = [f for f in result.metric_findings if f.outcome == "regression"]
    assert bad.row.metric == "latency_p99" and bad.row.key == DECODE
    assert "latency p99: 1 regression" in terminal_text(result)
    assert "latency p99" in markdown_summary(result)
    assert any(c["metric"] == "latency_p99" and c["outcome"] == "regression"
               for c in gate_doc(result)["gate"]["metric_cases"])
    lenient = parse_rules({"rules": [{"match": "inference/decode*", "p99_threshold": "300%"}]})
    assert not any(f.outcome == "regression" for f in gate(base, cur, lenient).metric_findings)


@pytest.mark.parametrize("doc, message", [
    ({"p99_threshold": "lots"}, "p99_threshold 'lots': expected a percentage"),
    ({"rules": [{"match": "x", "tokens_threshold": "0%"}]}, "rule 1: tokens_threshold '0%'"),
])
def test_bad_latency_settings_are_one_line_user_errors(doc, message):
    from benchbench.errors import UserError

    with pytest.raises(UserError, match=message):
        parse_rules(doc)


def test_history_has_p99_and_token_series_and_finds_a_planted_tail_step():
    rng = np.random.default_rng(8)
    reports = []
    for i in range(16):
        # no spikes: history's scan takes its scale from consecutive runs, and a series of spike-driven p99s
        # that turns steady after the step would read the earlier runs as outliers
        rep = make_report([per_call(DECODE, side(rng, spikes=0.0, delay_every=20 if i >= 8 else 0), tokens=8)],
                          run_id=f"run{i:02d}")
        rep.created_at = f"2026-01-{i + 1:02d}T00:00:00Z"
        reports.append(rep)
    hist = analyse(reports)
    by_metric = {s.metric: s for s in hist.series}
    assert {"time", "latency_p50", "latency_p90", "latency_p99", "tokens_per_s"} <= set(by_metric)
    [step] = by_metric["latency_p99"].changes
    assert step.run.run_id == "run08" and step.ratio > 1.3
    assert "(latency p99)" in history_text(hist) and "(tokens/s)" in history_text(hist)


def test_the_page_has_a_percentile_table_per_case():
    base, cur = planted_reports()
    few = make_report([per_call(DECODE, [calls(np.random.default_rng(9), n=40)], tokens=8)])
    page = report_page([base, cur, few], ["base", "cur", "few"], compare([base, cur], ["base", "cur"]))
    assert "Latency percentiles" in page and "500 in 5 rounds" in page
    assert "- (needs 100 calls)" in page  # the run with 40 calls has no p99
    assert "latency p99" in page  # the comparison's rows
