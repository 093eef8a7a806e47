"""gate.py: policy parsing, rules files, the decision on synthetic samples with known answers."""

from collections import Counter

import numpy as np
import pytest
from test_compare import FP, make_report, result, timings

from benchbench.analysis.gate import (
    EXIT_CODES,
    Policy,
    Rule,
    decide,
    gate,
    load_policy,
    parse_rules,
    parse_threshold,
)
from benchbench.errors import ExitCode, UserError
from benchbench.model.report import CaseKey

KEY = CaseKey.make("ops", "matmul", {"n": 1024}, "cpu", "float32")
OTHER = CaseKey.make("data", "load", {"workers": 2}, "cpu")


def gate_trials(slowdown, noise, policy=None, n=30, outliers=0.0, trials=100):
    """Gate verdicts over seeded trials of baseline/current samples from known distributions."""
    out = Counter()
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        base = make_report([result(KEY, timings(rng, n, 1e-3, noise, outliers))])
        cur = make_report([result(KEY, timings(rng, n, 1e-3 * (1 + slowdown), noise, outliers))])
        out[gate(base, cur, policy).verdict] += 1
    return out


# --- the known answers --------------------------------------------------------------------------
def test_a_a_pair_from_the_same_noisy_distribution_passes_99_of_100():
    counts = gate_trials(0.0, 0.02, outliers=0.05)
    assert counts["pass"] >= 99, counts


def test_ten_percent_slowdown_with_two_percent_noise_is_caught_99_of_100():
    counts = gate_trials(0.10, 0.02)
    assert counts["regression"] >= 99, counts


def test_three_percent_slowdown_is_caught_when_the_noise_allows_it():
    counts = gate_trials(0.03, 0.005, load_policy(fail_on="median:1%"))
    assert counts["regression"] >= 99, counts


def test_high_noise_is_inconclusive_not_regression():
    counts = gate_trials(0.03, 0.30)
    assert counts["regression"] == 0, counts
    assert counts["inconclusive"] >= 95, counts


def test_per_benchmark_threshold_from_rules():
    rng = np.random.default_rng(1)
    base = make_report([result(KEY, timings(rng, 40, 1e-3, 0.01))])
    cur = make_report([result(KEY, timings(rng, 40, 1.1e-3, 0.01))])
    assert gate(base, cur).verdict == "regression"
    lenient = parse_rules({"rules": [{"match": "ops/matmul*", "threshold": "25%"}]})
    assert gate(base, cur, lenient).verdict == "pass"


# --- decisions -------------------------------------------------------------------------------------------
STEADY = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01]


def decide_on(base_results, cur_results, policy=None, cur_fp=None):
    return gate(make_report(base_results), make_report(cur_results, cur_fp), policy or Policy())


def test_ok_before_failed_now_is_a_regression():
    res = decide_on([result(KEY, STEADY)], [result(KEY, status="failed", reason="CUDA error")])
    assert res.verdict == "regression" and res.exit_code == 1
    assert "failed now" in res.by_outcome("regression")[0].why


def test_regression_wins_over_inconclusive():
    res = decide_on([result(KEY, STEADY), result(OTHER, STEADY)],
                    [result(KEY, status="timeout"), result(OTHER, [x * 1.06 for x in STEADY])])
    assert res.verdict == "regression"
    assert {f.row.key: f.outcome for f in res.findings} == {KEY: "regression", OTHER: "inconclusive"}


@pytest.mark.parametrize("field, value, verdict", [
    ("missing", "inconclusive", "inconclusive"), ("missing", "ignore", "pass"), ("missing", "regression", "regression"),
])
def test_missing_case_follows_the_policy(field, value, verdict):
    policy = parse_rules({field: value})
    res = decide_on([result(KEY, STEADY), result(OTHER, STEADY)], [result(OTHER, STEADY)], policy)
    assert res.verdict == verdict


def test_incomparable_does_not_pass_silently_unless_ignored():
    base = [result(KEY, STEADY, definition_hash="sha256:old")]
    cur = [result(KEY, STEADY, definition_hash="sha256:new")]
    res = decide_on(base, cur)
    assert res.verdict == "inconclusive" and "definition" in res.findings[0].why
    assert decide_on(base, cur, parse_rules({"incomparable": "ignore"})).verdict == "pass"


def test_environment_difference_that_matters_is_inconclusive():
    res = decide_on([result(KEY, STEADY)], [result(KEY, STEADY)], cur_fp={**FP, "threads": 8})
    assert res.verdict == "inconclusive" and "threads" in res.findings[0].why


def test_noisy_is_inconclusive_unless_ignored_and_pass_when_confidently_not_slower():
    rng = np.random.default_rng(2)
    base = [result(KEY, timings(rng, 30, 1.0, 0.3))]
    cur = [result(KEY, timings(rng, 30, 1.0, 0.3))]
    assert decide_on(base, cur).findings[0].row.verdict == "noisy"
    assert decide_on(base, cur).verdict == "inconclusive"
    assert decide_on(base, cur, parse_rules({"noisy": "ignore"})).verdict == "pass"
    faster_noisy = [result(KEY, [x * 0.95 for x in STEADY])]  # interval straddles -5%, all of it below +5%
    res = decide_on([result(KEY, STEADY)], faster_noisy)
    assert res.findings[0].row.verdict in ("noisy", "faster") and res.verdict == "pass"


def test_too_few_samples_are_inconclusive_even_when_they_agree():
    res = decide_on([result(KEY, [1.0, 1.0, 1.0])], [result(KEY, [1.0, 1.0, 1.0])])
    assert res.verdict == "inconclusive" and "too few samples" in res.findings[0].why


def test_slower_without_raw_samples_is_only_suspected():
    base = [result(KEY, imported_stats={"n": 200, "median": 1.0, "iqr": 0.01})]
    cur = [result(KEY, imported_stats={"n": 200, "median": 1.5, "iqr": 0.01})]
    res = decide_on(base, cur)
    assert res.findings[0].row.verdict == "slower"
    assert res.verdict == "inconclusive" and "--benchmark-save-data" in res.findings[0].why


def test_ignored_cases_never_fail():
    policy = parse_rules({"rules": [{"match": "ops/*", "ignore": True, "reason": "flaky"}]})
    res = decide_on([result(KEY, STEADY), result(OTHER, STEADY)], [result(KEY, status="failed"),
                                                                    result(OTHER, STEADY)], policy)
    assert res.verdict == "pass"
    assert res.by_outcome("ignored")[0].why == "flaky"


def test_new_fixed_and_faster_cases_pass():
    third = CaseKey.make("ops", "add")
    res = decide_on([result(KEY, status="failed"), result(OTHER, STEADY)],
                    [result(KEY, STEADY), result(OTHER, [x / 2 for x in STEADY]), result(third, STEADY)])
    assert {f.row.verdict for f in res.findings} == {"fixed", "faster", "new"}
    assert res.verdict == "pass" and res.exit_code == 0


def test_exit_codes_are_the_clis():
    assert EXIT_CODES == {"pass": ExitCode.OK, "regression": ExitCode.REGRESSION,
                          "inconclusive": ExitCode.INCONCLUSIVE}
    assert len(set(EXIT_CODES.values()) | {ExitCode.USAGE}) == 4


def test_decide_needs_exactly_one_current_report():
    from benchbench.analysis.compare import compare

    reps = [make_report([result(KEY, STEADY)]) for _ in range(3)]
    with pytest.raises(ValueError, match="^the gate compares exactly one report against the baseline$"):
        decide(compare(reps), Policy())


# --- policy parsing --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [("median:5%", 0.05), ("5%", 0.05), ("median:2.5%", 0.025),
                                         (" median:10% ", 0.10)])
def test_parse_threshold(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text, message", [
    ("mean:5%", "only the median"), ("5", "expected a percentage"), ("median:0%", "above 0%"),
    ("median:five%", "expected a percentage"), ("median:5000%", "below 1000%"),
])
def test_parse_threshold_errors(text, message):
    with pytest.raises(UserError, match=message):
        parse_threshold(text)


def test_rule_globs_treat_brackets_literally():
    rule = Rule(match="ops/matmul[n=1024]", threshold=0.1)
    assert rule.applies(KEY)
    assert not rule.applies(CaseKey.make("ops", "matmul", {"n": 1}, "cpu", "float32"))
    assert Rule(match="ops/*", backend="cu*", threshold=0.1).applies(CaseKey.make("ops", "x", {}, "cuda"))
    assert not Rule(match="ops/*", backend="cu*", threshold=0.1).applies(KEY)
    assert Rule(dtype="float32", threshold=0.1).applies(KEY) and not Rule(dtype="bf*", threshold=0.1).applies(KEY)


def test_later_rules_win_for_the_settings_they_make():
    policy = parse_rules({"fail_on": "median:3%", "rules": [
        {"match": "*", "threshold": "10%"}, {"match": "ops/*", "threshold": "20%"},
        {"match": "data/*", "ignore": True}, {"match": "data/*", "threshold": "15%"},
        {"match": "ops/*", "ignore": True}, {"match": "ops/matmul*", "ignore": False}]})
    assert policy.threshold == pytest.approx(0.03)
    assert policy.settings_for(KEY) == (pytest.approx(0.20), None)
    threshold, ignored = policy.settings_for(OTHER)
    assert threshold == pytest.approx(0.15) and ignored is not None and ignored.match == "data/*"
    assert policy.settings_for(CaseKey.make("ops", "add"))[1] is not None


@pytest.mark.parametrize("doc, message", [
    ({"treshold": "5%"}, "unknown key 'treshold'"),
    ({"noisy": "pass"}, "expected one of ignore, inconclusive, regression"),
    ({"rules": [{"match": "x"}]}, "rule 1: sets neither threshold, instructions_tolerance nor ignore"),
    ({"instructions_tolerance": "half"}, "instructions_tolerance .half.: expected a percentage"),
    ({"rules": [{"match": "x", "instructions_tolerance": "150%"}]}, "between 0% and 100%"),
    ({"rules": [{"match": "x", "threshold": 5}]}, "rule 1: threshold"),
    ({"rules": [{"match": "x", "ignore": "yes"}]}, "ignore must be true or false"),
    ({"rules": [{"match": "x", "thresold": "5%"}]}, "unknown key 'thresold'"),
    ({"rules": {"match": "x"}}, "list of tables"),
    ({"alpha": 0.9}, "between 0 and 0.5"),
])
def test_bad_rules_are_one_line_user_errors(doc, message):
    with pytest.raises(UserError, match=message) as exc:
        parse_rules(doc, "rules.toml")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("rules.toml")


def test_rules_file_and_command_line(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('fail_on = "median:8%"\nalpha = 0.01\nmissing = "ignore"\n\n'
                    '[[rules]]\nmatch = "data/*"\nthreshold = "30%"\n')
    policy = load_policy(str(path))
    assert (policy.threshold, policy.alpha, policy.missing) == (pytest.approx(0.08), 0.01, "ignore")
    assert policy.threshold_for(OTHER) == pytest.approx(0.30)
    overridden = load_policy(str(path), fail_on="median:2%", alpha=0.05)
    assert (overridden.threshold, overridden.alpha) == (pytest.approx(0.02), 0.05)
    assert overridden.threshold_for(OTHER) == pytest.approx(0.30)  # per-case rules still win


def test_unreadable_rules_files(tmp_path):
    with pytest.raises(UserError, match="no such rules file"):
        load_policy(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("fail_on = \n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_policy(str(bad))


# --- instruction counts ----------------------------------------------------------------------------------
COUNTS = [8300.0, 8301.0, 8300.5]


def counted(samples, key=KEY):
    return result(key, samples, timing_method="callgrind-instructions")


def test_instructions_beyond_the_tolerance_are_a_regression_without_a_significance_test():
    g = decide_on([counted(COUNTS)], [counted([x * 1.02 for x in COUNTS])])
    assert g.verdict == "regression"
    (f,) = g.findings
    assert "+2.00% instructions per call" in f.why and "0.5% tolerance" in f.why
    from benchbench.output.gate import markdown_summary

    assert "Instruction counts" in markdown_summary(g)
    assert decide_on([counted(COUNTS)], [counted([x * 1.004 for x in COUNTS])]).verdict == "pass"
    assert decide_on([counted(COUNTS)], [counted(list(COUNTS))]).verdict == "pass"
    assert decide_on([counted(COUNTS)], [counted([x * 0.9 for x in COUNTS])]).verdict == "pass"


def test_instructions_tolerance_from_the_rules_file_per_case(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('instructions_tolerance = "0.1%"\n\n[[rules]]\nmatch = "data/*"\ninstructions_tolerance = "5%"\n')
    policy = load_policy(str(path))
    assert policy.tolerance_for(KEY) == pytest.approx(0.001)
    assert policy.tolerance_for(OTHER) == pytest.approx(0.05)
    assert policy.threshold_for(OTHER) == pytest.approx(0.05)  # the time threshold is untouched
    up3 = [x * 1.003 for x in COUNTS]
    assert decide_on([counted(COUNTS)], [counted(up3)], policy).verdict == "regression"  # beyond 0.1%
    up2 = [x * 1.02 for x in COUNTS]
    assert decide_on([counted(COUNTS, OTHER)], [counted(up2, OTHER)], policy).verdict == "pass"  # within 5%


def test_jittery_instruction_counts_follow_the_noisy_policy():
    jittery = [8000.0, 8500.0, 8700.0]  # median +2.4%, but one repeat below the baseline's
    g = decide_on([counted(COUNTS)], [counted(jittery)])
    assert g.verdict == "inconclusive" and "overlap" in g.findings[0].why
    assert decide_on([counted(COUNTS)], [counted(jittery)], Policy(noisy="ignore")).verdict == "pass"


def test_a_time_baseline_against_instruction_counts_is_inconclusive():
    g = decide_on([result(KEY, STEADY, timing_method="perf_counter")], [counted(COUNTS)])
    assert g.verdict == "inconclusive" and "callgrind-instructions" in g.findings[0].why


# --- rounds, the canary, the minimum detectable effect ----------------------------------------------------
def _rounds_report(medians, loops, rng, side=None, seeds=None):
    from test_compare import rounds_result

    rep = make_report([rounds_result(KEY, medians, rng)])
    rep.rounds = [{"round": i, "seed": (seeds or list(range(len(medians))))[i],
                   "canary": {"python_loop_s": v, "torch_dispatch_s": 1e-6}} for i, v in enumerate(loops)]
    rep.side = {"name": side} if side else None
    return rep


def test_only_the_machine_changed_is_inconclusive_not_regression():
    """Same code, but the whole machine ran 30% slower during CURRENT (a busy neighbour): every timing
    moved, and so did the canary. The numbers alone say `slower`; the gate must not."""
    rng = np.random.default_rng(1)
    base = _rounds_report([1e-3] * 5, [5e-6] * 5, rng)
    cur = _rounds_report([1.3e-3] * 5, [6.5e-6] * 5, rng)
    for policy in (Policy(), Policy(noisy="ignore")):
        result = gate(base, cur, policy)
        (finding,) = result.findings
        assert finding.row.statistical == "slower"
        assert result.verdict == "inconclusive" and finding.cause == "machine"
    from benchbench.output.gate import markdown_summary, reason

    text = reason(finding, result)
    assert text.startswith("the machine itself was 30% slower in ") and "benchbench ab" in text
    assert "the machine itself was 30% slower" in markdown_summary(result)


def test_a_machine_that_sped_up_cannot_make_the_gate_pass_either():
    rng = np.random.default_rng(2)
    base = _rounds_report([1e-3] * 5, [5e-6] * 5, rng)
    cur = _rounds_report([0.7e-3] * 5, [3.5e-6] * 5, rng)
    assert gate(base, cur).verdict == "inconclusive"


def test_a_clock_that_steps_mid_run_hits_both_sides_of_paired_rounds():
    """ab: the machine slows down 40% from round 3 on, in the middle of the run, for both sides alike."""
    from test_compare import process_medians

    rng = np.random.default_rng(3)
    machine = [1.0, 1.0, 1.0, 1.4, 1.4]
    outcomes, unpaired = Counter(), Counter()
    for _ in range(50):
        base = _rounds_report(process_medians(rng, 5, 0.02, machine=machine), [5e-6] * 5, rng, "baseline")
        cur = _rounds_report(process_medians(rng, 5, 0.02, machine=machine), [5e-6] * 5, rng, "current")
        result = gate(base, cur)
        assert result.pair.paired  # recognised from the sides and the rounds' seeds
        outcomes[result.verdict] += 1
        unpaired[gate(base, cur, paired=False).verdict] += 1
    assert outcomes["regression"] == 0 and outcomes["pass"] >= 30, outcomes
    # the same data as two independent runs: the step makes the rounds disagree, nothing can be said
    assert unpaired["regression"] == 0 and unpaired["inconclusive"] >= 45, unpaired


def test_noisy_rounds_state_what_they_could_have_detected():
    from test_compare import process_medians

    from benchbench.output.gate import markdown_summary, reason, terminal_text

    rng = np.random.default_rng(4)
    base = _rounds_report(process_medians(rng, 3, 0.15), [5e-6] * 3, rng, "baseline")
    cur = _rounds_report(process_medians(rng, 3, 0.15, slowdown=0.05), [5e-6] * 3, rng, "current")
    result = gate(base, cur)
    (finding,) = result.findings
    assert result.verdict == "inconclusive" and finding.cause == "noisy" and finding.row.mde > 0.20
    text = reason(finding, result)
    assert "can detect >= " in text and "add rounds (--rounds) or use a quieter machine" in text
    assert "can detect" in markdown_summary(result) and "can detect >= " in terminal_text(result)
    assert markdown_summary(result).startswith("### benchbench ab: ")  # paired rounds: an ab run


def test_round_level_a_a_gate_false_regressions_stay_below_alpha_with_per_process_offsets():
    """Stored reports of back-to-back runs: each round a process with its own 8% offset."""
    from test_compare import process_medians

    regressions = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        base = _rounds_report(process_medians(rng, 5, 0.08), [5e-6] * 5, rng)
        cur = _rounds_report(process_medians(rng, 5, 0.08), [5e-6] * 5, rng)
        regressions += gate(base, cur).verdict == "regression"
    assert regressions <= 2  # at most 1%; the rule's own error rate at a 5% threshold is far smaller
