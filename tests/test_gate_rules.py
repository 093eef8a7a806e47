"""gate.py, case by case: the messages a user reads, the edges of every setting, each rule branch of `judge`.

Written against the mutants the fast tests let through (docs/mutation.md): each test pins behaviour a user
sees (the one-line errors, the why of each finding, the exit verdict) on small synthetic reports.
"""

import pytest
from test_compare import make_report, result

from benchbench.analysis.compare import Change, Row
from benchbench.analysis.gate import (
    Policy,
    Rule,
    gate,
    judge,
    load_policy,
    parse_alpha,
    parse_rules,
    parse_threshold,
    parse_tolerance,
)
from benchbench.errors import UserError
from benchbench.model.report import CaseKey

KEY = CaseKey.make("ops", "matmul", {"n": 1024}, "cpu", "float32")
STEADY = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01]


# --- the settings' messages and edges ---------------------------------------------------------------------
def _message(fn, *args):
    with pytest.raises(UserError) as exc:
        fn(*args)
    return str(exc.value)


def test_threshold_errors_name_the_option_and_say_what_is_expected():
    assert _message(parse_threshold, "5") == "--fail-on '5': expected a percentage such as median:5%"
    assert _message(parse_threshold, "mean:5%") == ("--fail-on 'mean:5%': only the median can be gated (benchbench "
                                                    "tests the ratio of medians on the raw samples); use median:N%")
    assert _message(parse_threshold, "0%", "rules.toml: fail_on").startswith("rules.toml: fail_on '0%': ")


def test_the_threshold_stops_just_below_a_thousand_percent():
    assert parse_threshold("median:999%") == pytest.approx(9.99)
    assert _message(parse_threshold, "median:1000%") == ("--fail-on 'median:1000%': the threshold must be above "
                                                         "0% and below 1000%")
    assert _message(parse_threshold, "median:1050%").endswith("below 1000%")


def test_tolerance_and_alpha_errors_name_their_setting():
    assert _message(parse_tolerance, "half") == "instructions_tolerance 'half': expected a percentage such as 0.5%"
    assert _message(parse_tolerance, "median:1%").startswith("instructions_tolerance 'median:1%'")
    assert parse_tolerance("2%") == pytest.approx(0.02)
    assert _message(parse_alpha, "x") == "--alpha 'x': expected a number such as 0.05"
    assert _message(parse_alpha, None) == "--alpha None: expected a number such as 0.05"
    assert _message(parse_alpha, 0.5) == "--alpha 0.5: must be between 0 and 0.5"
    assert _message(parse_alpha, 0) == "--alpha 0: must be between 0 and 0.5"
    assert parse_alpha("0.49") == 0.49 and parse_alpha(1e-6) == 1e-6


# --- rules: globs, dtype and mode -------------------------------------------------------------------------
def test_a_question_mark_matches_exactly_one_character():
    assert Rule(match="ops/m?tmul[n=1024]", threshold=0.1).applies(KEY)
    assert not Rule(match="ops/m?atmul[n=1024]", threshold=0.1).applies(KEY)
    assert not Rule(match="ops/matmul?n=1024]", threshold=0.1).applies(CaseKey.make("ops", "matmul", {}, "cpu"))


def test_dtype_and_mode_rules_match_cases_with_and_without_them():
    train = CaseKey.make("training", "resnet", {}, "cpu", "float32", "train")
    plain = CaseKey.make("ops", "add")
    assert Rule(mode="train", threshold=0.1).applies(train)
    assert not Rule(mode="eval", threshold=0.1).applies(train)
    assert not Rule(mode="train", threshold=0.1).applies(plain)
    assert Rule(mode="", threshold=0.1).applies(plain)  # an empty glob: the cases that have no mode
    assert Rule(dtype="", threshold=0.1).applies(plain) and not Rule(dtype="", threshold=0.1).applies(KEY)
    assert Rule(mode="*", dtype="*", threshold=0.1).applies(plain)


# --- the rules file ---------------------------------------------------------------------------------------
def test_rules_errors_name_the_file_the_rule_and_the_known_keys():
    assert _message(parse_rules, {"treshold": "5%"}) == (
        "rules: unknown key 'treshold' (known: alpha, compile_threshold, energy_threshold, fail_on, incomparable, "
        "instructions_tolerance, latency_threshold, memory_floor, memory_tolerance, missing, noisy, p99_threshold, "
        "rules, tokens_threshold)")
    assert _message(parse_rules, {"fail_on": "5"}, "ci.toml") == (
        "ci.toml: fail_on '5': expected a percentage such as median:5%")
    assert _message(parse_rules, {"alpha": "x"}, "ci.toml") == "ci.toml: alpha 'x': expected a number such as 0.05"
    rules = [{"match": "a", "threshold": "5%"}, {"match": "b", "thresold": "5%", "zzz": 1}]
    assert _message(parse_rules, {"rules": rules}, "ci.toml") == (
        "ci.toml: rule 2: unknown key 'thresold' (known: backend, compile_threshold, dtype, energy_threshold, ignore, "
        "instructions_tolerance, latency_threshold, match, memory_floor, memory_tolerance, mode, p99_threshold, "
        "reason, threshold, tokens_threshold)")
    assert _message(parse_rules, {"rules": [{"match": "a"}]}, "ci.toml") == (
        "ci.toml: rule 1: sets neither threshold, instructions_tolerance nor ignore (nor a metric's setting: "
        "memory_tolerance, memory_floor, compile_threshold, energy_threshold, tokens_threshold, latency_threshold, "
        "p99_threshold)")
    assert _message(parse_rules, {"rules": [{"match": "a", "threshold": "0%"}]}, "ci.toml").startswith(
        "ci.toml: rule 1: threshold '0%'")
    assert _message(parse_rules, {"rules": [{"match": "a", "instructions_tolerance": "x"}]}, "ci.toml").startswith(
        "ci.toml: rule 1: instructions_tolerance 'x'")


@pytest.mark.parametrize("name", ["match", "backend", "dtype", "mode", "reason"])
def test_every_glob_and_the_reason_must_be_strings(name):
    doc = {"rules": [{name: 3, "threshold": "5%"}]}
    assert _message(parse_rules, doc, "ci.toml") == f"ci.toml: rule 1: {name} must be a string"


@pytest.mark.parametrize("setting", [{"threshold": "5%"}, {"ignore": True}, {"instructions_tolerance": "1%"},
                                     {"memory_tolerance": "10%"}])
def test_a_rule_needs_only_one_setting(setting):
    (rule,) = parse_rules({"rules": [setting]}).rules
    assert rule.match == "*"  # the default glob: every case


def test_a_rule_keeps_every_field_it_was_given():
    (rule,) = parse_rules({"rules": [{"match": "ops/*", "backend": "cu*", "dtype": "bf16", "mode": "eval",
                                      "ignore": False, "reason": "why not", "threshold": "7%",
                                      "instructions_tolerance": "2%", "memory_tolerance": "20%"}]}).rules
    assert (rule.match, rule.backend, rule.dtype, rule.mode, rule.ignore, rule.reason) == (
        "ops/*", "cu*", "bf16", "eval", False, "why not")
    assert rule.threshold == pytest.approx(0.07) and rule.instructions_tolerance == pytest.approx(0.02)
    assert dict(rule.settings)["memory_tolerance"] == pytest.approx(0.20)
    (bare,) = parse_rules({"rules": [{"ignore": True}]}).rules
    assert (bare.match, bare.backend, bare.dtype, bare.mode, bare.reason, bare.threshold,
            bare.instructions_tolerance, bare.settings) == ("*", None, None, None, None, None, None, ())


def test_the_policy_remembers_its_rules_file(tmp_path):
    assert parse_rules({}, "ci.toml").source == "ci.toml" and parse_rules({}).source == "rules"
    path = tmp_path / "gate.toml"
    path.write_text('fail_on = "7"\n')
    assert _message(load_policy, str(path)) == f"{path}: fail_on '7': expected a percentage such as median:5%"
    path.write_text('noisy = "ignore"\n')
    assert load_policy(str(path)).source == str(path) and load_policy().source is None


def test_unreadable_rules_files_say_why(tmp_path):
    assert _message(load_policy, str(tmp_path)).startswith(f"{tmp_path}: cannot read: ")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'fail_on = "5%" # caf\xe9\n')
    assert _message(load_policy, str(latin)) == (f"{latin}: not valid TOML: not UTF-8 text (invalid continuation "
                                                 "byte at byte 20)")
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert _message(load_policy, str(deep)) == f"{deep}: not valid TOML: nested too deeply"


# --- judge: each branch and what it says ------------------------------------------------------------------
def _change(ratio, low, high, p=0.001, unit="sample"):
    return Change(ratio, low, high, 0.95, p, 0.01, 30, 30, unit)


def _row(verdict, change=None, base=True, other=True, flags=(), **kw):
    return Row(KEY, result(KEY, STEADY) if base else None, result(KEY, STEADY) if other else None, verdict,
               change, flags=list(flags), **kw)


def test_an_ignored_case_says_which_rule_ignored_it():
    policy = parse_rules({"rules": [{"match": "ops/*", "ignore": True}]})
    row = _row("slower", _change(1.5, 1.4, 1.6))
    finding = judge(row, policy)
    assert (finding.row, finding.outcome, finding.why) == (row, "ignored", "ignored by rule match='ops/*'")


def test_a_slower_case_states_the_limit_it_crossed():
    row = _row("slower", _change(1.5, 1.4, 1.6))
    finding = judge(row, Policy())
    assert (finding.row, finding.outcome, finding.why, finding.cause) == (
        row, "regression", "significantly slower, beyond +5% and beyond the noise", None)
    assert judge(row, Policy(threshold=0.125)).why == "significantly slower, beyond +12.5% and beyond the noise"
    assert judge(row, Policy(threshold=2.0)).why == "significantly slower, beyond +200% and beyond the noise"
    unsure = judge(_row("slower", _change(1.5, 1.4, 1.6, p=None)), Policy(threshold=0.1))
    assert (unsure.outcome, unsure.why) == ("inconclusive", "slower than +10% by the statistics, but without raw "
                                            "samples no significance test is possible (pytest-benchmark: "
                                            "--benchmark-save-data)")


def test_a_broken_case_says_how_it_ended_now():
    row = Row(KEY, result(KEY, STEADY), result(KEY, status="timeout"), "broke")
    assert (judge(row, Policy()).outcome, judge(row, Policy()).why) == ("regression", "ok in the baseline, timeout now")
    row = Row(KEY, result(KEY, STEADY), result(KEY, status="failed"), "broke")
    assert judge(row, Policy()).why == "ok in the baseline, failed now"


def test_a_machine_that_moved_is_said_plainly():
    finding = judge(_row("slower", _change(1.5, 1.4, 1.6), machine=[("between", 1.3)]), Policy())
    assert (finding.outcome, finding.why, finding.cause) == ("inconclusive", "the machine's own speed changed",
                                                            "machine")
    broke = Row(KEY, result(KEY, STEADY), result(KEY, status="failed"), "broke", machine=[("between", 1.3)])
    assert judge(broke, Policy()).outcome == "regression"  # a failure is not a timing


def test_noisy_but_entirely_below_the_limit_passes_and_the_limit_is_strict():
    below = judge(_row("noisy", _change(0.97, 0.90, 1.049)), Policy())
    assert (below.outcome, below.why) == ("ok", "noisy, but confidently not slower than +5%")
    at = judge(_row("noisy", _change(0.97, 0.90, 1.05)), Policy(threshold=0.05))
    assert (at.outcome, at.why, at.cause) == ("inconclusive", "cannot tell whether it is slower than +5%", "noisy")
    few = judge(_row("noisy", _change(0.97, 0.90, 1.02), flags=["few-samples"]), Policy())
    assert (few.outcome, few.why, few.cause) == ("inconclusive", "too few samples to tell (fewer than 5)", "noisy")
    ignored = judge(_row("noisy", _change(1.0, 0.9, 1.2)), Policy(noisy="ignore"))
    assert (ignored.outcome, ignored.why, ignored.cause) == (
        "ok", "cannot tell whether it is slower than +5% (noisy = ignore)", "noisy")
    strict = judge(_row("noisy", _change(1.0, 0.9, 1.2)), Policy(noisy="regression"))
    assert (strict.outcome, strict.why) == ("regression", "cannot tell whether it is slower than +5%")


def test_missing_cases_say_whether_they_were_skipped_or_are_gone():
    skipped = Row(KEY, result(KEY, STEADY), result(KEY, status="skipped"), "missing")
    gone = Row(KEY, result(KEY, STEADY), None, "missing")
    assert (judge(skipped, Policy()).outcome, judge(skipped, Policy()).why) == (
        "inconclusive", "ok in the baseline, skipped now")
    assert judge(gone, Policy()).why == "ok in the baseline, absent now" and judge(gone, Policy()).cause is None
    assert (judge(gone, Policy(missing="ignore")).outcome, judge(gone, Policy(missing="ignore")).why) == (
        "ok", "ok in the baseline, absent now (missing = ignore)")
    never_ok = Row(KEY, result(KEY, status="failed"), None, "missing")
    finding = judge(never_ok, Policy(missing="regression"))
    assert (finding.row, finding.outcome, finding.why) == (never_ok, "ok", "missing, but not ok in the baseline either")
    assert judge(Row(KEY, None, None, "missing"), Policy(missing="regression")).outcome == "ok"


def test_incomparable_cases_list_every_reason():
    row = _row("incomparable", reasons=["benchmark definition changed"], env=["torch: 2.14 vs 2.15"])
    finding = judge(row, Policy())
    assert (finding.outcome, finding.why) == ("inconclusive", "benchmark definition changed; torch: 2.14 vs 2.15")
    assert judge(_row("incomparable"), Policy()).why == "not comparable"
    assert judge(_row("incomparable"), Policy(incomparable="ignore")).why == "not comparable (incomparable = ignore)"
    assert judge(_row("incomparable"), Policy(incomparable="regression")).outcome == "regression"


@pytest.mark.parametrize("verdict", ["same", "faster", "fixed", "new", "failed", "skipped"])
def test_the_other_verdicts_pass_and_say_what_they_were(verdict):
    row = _row(verdict, _change(1.0, 0.99, 1.01))
    finding = judge(row, Policy())
    assert (finding.row, finding.outcome, finding.why, finding.cause) == (row, "ok", verdict, None)


# --- instruction counts -----------------------------------------------------------------------------------
def _counts(samples):
    return result(KEY, samples, timing_method="callgrind-instructions")


def test_instruction_counts_state_the_change_and_the_tolerance():
    base, up = [8300.0, 8301.0, 8300.5], [8549.0, 8550.0, 8549.5]
    g = gate(make_report([_counts(base)]), make_report([_counts(up)]))
    (finding,) = g.findings
    assert finding.why == "+3.00% instructions per call, beyond the 0.5% tolerance"
    policy = parse_rules({"rules": [{"match": "ops/*", "instructions_tolerance": "1%"}]})
    assert gate(make_report([_counts(base)]), make_report([_counts(up)]), policy).findings[0].why == (
        "+3.00% instructions per call, beyond the 1% tolerance")
    jittery = [8000.0, 8500.0, 8700.0]
    (finding,) = gate(make_report([_counts(base)]), make_report([_counts(jittery)])).findings
    assert (finding.outcome, finding.why) == (
        "inconclusive", "+2.40% instructions per call, but the repeats of the two sides overlap (they vary by up to "
        "8.24%): not deterministic enough to call it")  # 8.24% = (8700 - 8000) / 8500
    (finding,) = gate(make_report([_counts(base)]), make_report([_counts(jittery)]), Policy(noisy="ignore")).findings
    assert finding.outcome == "ok" and finding.why.endswith("not deterministic enough to call it (noisy = ignore)")
    (finding,) = gate(make_report([_counts(base)]), make_report([_counts(jittery)]),
                      Policy(noisy="regression")).findings
    assert finding.outcome == "regression" and finding.why.endswith("to call it")


def test_a_time_row_is_never_judged_by_the_instruction_rule():
    row = Row(KEY, result(KEY, STEADY), result(KEY, STEADY), "slower", _change(1.5, 1.4, 1.6))
    assert judge(row, Policy()).why.startswith("significantly slower")
    counts = Row(KEY, _counts([1.0, 1.0, 1.0]), _counts([1.5, 1.5, 1.5]), "slower", _change(1.5, 1.5, 1.5, p=None))
    assert judge(counts, Policy()).why.startswith("+50.00% instructions per call")


# --- the metrics beside the time, and the verdict over all findings ---------------------------------------
def _metric_row(verdict, key=KEY):
    from benchbench.metrics.base import MetricRow

    return MetricRow("peak_memory", key, 100.0, 130.0, verdict, f"peak memory {verdict}", 1.3)


def test_a_metric_beside_the_time_is_judged_by_its_verdict_and_the_noisy_policy():
    from benchbench.analysis.gate import judge_metric

    worse = judge_metric(_metric_row("worse"), Policy())
    assert (worse.row.verdict, worse.outcome, worse.why) == ("worse", "regression", "peak memory worse")
    for action, outcome, suffix in (("inconclusive", "inconclusive", ""), ("ignore", "ok", " (noisy = ignore)"),
                                    ("regression", "regression", "")):
        got = judge_metric(_metric_row("noisy"), Policy(noisy=action))
        assert (got.outcome, got.why) == (outcome, "peak memory noisy" + suffix)
    for verdict in ("same", "better", "incomparable"):
        got = judge_metric(_metric_row(verdict), Policy(noisy="regression"))
        assert (got.outcome, got.why) == ("ok", f"peak memory {verdict}")
    policy = parse_rules({"rules": [{"match": "ops/*", "ignore": True}]})
    assert (judge_metric(_metric_row("worse"), policy).outcome, judge_metric(_metric_row("worse"), policy).why) == (
        "ignored", "ignored by rule match='ops/*'")
    policy = parse_rules({"rules": [{"match": "ops/*", "ignore": True, "reason": "shared runner"}]})
    assert judge_metric(_metric_row("worse"), policy).why == "shared runner"
    other = CaseKey.make("data", "load")
    assert judge_metric(_metric_row("worse", other), policy).outcome == "regression"


def test_the_verdict_is_the_worst_finding_including_the_metrics():
    from benchbench.analysis.gate import decide

    def comparison(time_verdict, metric_verdicts):
        from benchbench.analysis.compare import Comparison, Criteria, Pair

        row = _row(time_verdict, _change(1.0, 0.9, 1.2))
        pair = Pair("cur", make_report([]), [row], [], metric_rows=[_metric_row(v) for v in metric_verdicts])
        return Comparison("base", make_report([]), [pair], Criteria(), [KEY])

    assert decide(comparison("same", []), Policy()).verdict == "pass"
    assert decide(comparison("same", ["same"]), Policy()).verdict == "pass"
    res = decide(comparison("same", ["noisy", "same"]), Policy())
    assert res.verdict == "inconclusive" and res.exit_code == 3
    assert [f.outcome for f in res.metric_findings] == ["inconclusive", "ok"]
    res = decide(comparison("noisy", ["worse"]), Policy())
    assert (res.verdict, res.exit_code, res.findings[0].outcome) == ("regression", 1, "inconclusive")
    assert decide(comparison("missing", []), Policy()).verdict == "inconclusive"
    res = decide(comparison("same", []), Policy(threshold=0.2))
    assert res.policy.threshold == 0.2 and res.pair.name == "cur" and res.by_outcome("ok") == res.findings


def test_later_matching_rules_override_tolerances_thresholds_and_metric_settings():
    policy = parse_rules({"instructions_tolerance": "1%", "memory_tolerance": "10%", "fail_on": "3%", "rules": [
        {"match": "ops/*", "instructions_tolerance": "2%", "memory_tolerance": "20%", "threshold": "8%"},
        {"match": "ops/matmul*", "instructions_tolerance": "4%", "ignore": True},
        {"match": "data/*", "instructions_tolerance": "9%", "memory_tolerance": "90%", "threshold": "50%"},
        {"match": "ops/matmul*", "ignore": False}]})
    assert policy.tolerance_for(KEY) == pytest.approx(0.04)
    assert policy.metric_settings(KEY) == {"memory_tolerance": pytest.approx(0.20)}
    assert policy.settings_for(KEY) == (pytest.approx(0.08), None) and policy.threshold_for(KEY) == pytest.approx(0.08)
    plain = CaseKey.make("training", "x")
    assert policy.tolerance_for(plain) == pytest.approx(0.01) and policy.threshold_for(plain) == pytest.approx(0.03)
    assert policy.metric_settings(plain) == {"memory_tolerance": pytest.approx(0.10)}
    ignoring = parse_rules({"rules": [{"match": "ops/*", "ignore": True, "reason": "r"}]})
    threshold, rule = ignoring.settings_for(KEY)
    assert threshold == 0.05 and rule is not None and rule.reason == "r"
    assert ignoring.settings_for(CaseKey.make("data", "load")) == (0.05, None)


def test_on_python_3_10_without_tomli_the_rules_file_says_what_to_install(tmp_path, monkeypatch):
    import sys

    path = tmp_path / "rules.toml"
    path.write_text('fail_on = "5%"\n')
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    monkeypatch.setitem(sys.modules, "tomli", None)  # not installed: importing it raises ImportError
    assert _message(load_policy, str(path)) == f"{path}: reading a rules file on Python 3.10 needs `pip install tomli`"


def test_metric_setting_errors_name_the_file_and_the_rule():
    assert _message(parse_rules, {"memory_tolerance": "lots"}, "ci.toml").startswith("ci.toml: memory_tolerance 'lots'")
    doc = {"rules": [{"match": "a", "memory_tolerance": "lots"}]}
    assert _message(parse_rules, doc, "ci.toml").startswith("ci.toml: rule 1: memory_tolerance 'lots'")


@pytest.mark.parametrize("rules", [["ops/*"], [1], [{"threshold": "5%"}, "x"], "ops/*", {"threshold": "5%"}])
def test_rules_must_be_a_list_of_tables(rules):
    assert _message(parse_rules, {"rules": rules}, "ci.toml") == (
        "ci.toml: rules must be a list of tables ([[rules]] sections)")


def test_counts_against_a_side_without_a_timing_method_are_judged_as_counts():
    """Reports from before timing methods were recorded: the side that says callgrind decides the rule."""
    plain, up = result(KEY, [8300.0, 8301.0, 8300.5]), _counts([8549.0, 8550.0, 8549.5])
    for base, other in ((plain, up), (_counts(plain.samples), result(KEY, up.samples))):
        (finding,) = gate(make_report([base]), make_report([other])).findings
        assert finding.why == "+3.00% instructions per call, beyond the 0.5% tolerance"
        assert finding.row.base is base and finding.row.other is other


def test_findings_keep_their_rows():
    from benchbench.analysis.gate import judge_metric

    jittery = gate(make_report([_counts([8300.0, 8301.0, 8300.5])]), make_report([_counts([8000.0, 8500.0, 8700.0])]))
    assert jittery.findings[0].row is jittery.pair.rows[0]
    policy = parse_rules({"rules": [{"match": "ops/*", "ignore": True}]})
    for verdict, pol in (("worse", policy), ("noisy", Policy()), ("same", Policy())):
        row = _metric_row(verdict)
        assert judge_metric(row, pol).row is row


def test_the_gate_names_its_reports_and_applies_the_metric_settings_of_the_rules():
    import numpy as np
    from test_compare import rounds_result

    rng = np.random.default_rng(3)
    base, cur = rounds_result(KEY, [1e-3] * 3, rng), rounds_result(KEY, [1e-3] * 3, rng)
    for res, peak in ((base, 100e6), (cur, 130e6)):
        for meta in res.rounds:
            meta["peak_memory_bytes"] = peak
    strict = gate(make_report([base]), make_report([cur]), names=("main", "pr"))
    assert (strict.comparison.base_name, strict.pair.name) == ("main", "pr")
    assert strict.verdict == "regression" and [f.outcome for f in strict.metric_findings] == ["regression"]
    lenient = gate(make_report([base]), make_report([cur]), parse_rules({"memory_tolerance": "50%"}))
    assert lenient.verdict == "pass" and [f.outcome for f in lenient.metric_findings] == ["ok"]
