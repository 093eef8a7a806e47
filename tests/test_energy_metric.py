"""energy_metric.py: joules per call as a metric over rounds, in compare/gate/ab/history/HTML, and unavailable
energy said in one line."""

import numpy as np
import pytest
from test_compare import make_report

from benchbench import metrics
from benchbench.analysis.compare import compare
from benchbench.analysis.gate import gate, parse_rules
from benchbench.analysis.history import analyse
from benchbench.errors import UserError
from benchbench.measure import energy
from benchbench.metrics import energy as energy_metric
from benchbench.model.report import CaseKey, Result
from benchbench.output.comparison import comparison_doc, comparison_text
from benchbench.output.gate import terminal_text
from benchbench.output.history import history_text
from benchbench.output.units import fmt_value

KEY = CaseKey.make("training", "mlp", {"width": 64}, "cpu", "float32")
OTHER = CaseKey.make("ops", "add", {"n": 8}, "cpu", "float32")
RAPL = "rapl: package-0, dram-0"
NO_RAPL = ("unavailable: no RAPL counters: /sys/class/powercap is absent (no powercap driver, or a VM that hides "
           "it); no amd_energy counters: /sys/class/hwmon is absent")


def metered(key, joules, source=RAPL, rng=None, time=1e-3):
    """A timed result of len(joules) rounds, round i using joules[i] per call, read from `source`."""
    rng = rng or np.random.default_rng(0)
    rounds, samples = [], []
    for i, j in enumerate(joules):
        xs = (time * np.exp(0.01 * rng.standard_normal(5))).tolist()
        samples += xs
        rounds.append({"round": i, "n": len(xs), "loops": 1,
                       "metrics": {energy.J_PER_CALL: float(j), energy.WATTS: float(j) / time}})
    return Result(key=key, status="ok", samples=samples, rounds=rounds,
                  metrics={energy.SOURCE: source, energy.J_PER_CALL: float(np.median(joules)),
                           energy.WATTS: float(np.median(joules)) / time})


def unmetered(key, why=NO_RAPL, rounds=3):
    """A timed result on a machine without energy counters: every round says why."""
    samples = [1e-3] * (5 * rounds)
    return Result(key=key, status="ok", samples=samples, metrics={energy.SOURCE: why},
                  rounds=[{"round": i, "n": 5, "loops": 1, "metrics": {}} for i in range(rounds)])


def noisy_joules(rng, level, n=5, noise=0.03):
    """Joules per call of n rounds: a few percent of run-to-run noise (other work on the package counter)."""
    return (level * np.exp(noise * rng.standard_normal(n))).tolist()


# --- the rule ------------------------------------------------------------------------------------------
def test_the_rule_on_known_rounds():
    base = metered(KEY, [0.50, 0.51, 0.49, 0.50, 0.505])
    assert energy_metric.compare_results(KEY, base, metered(KEY, [0.50, 0.502, 0.498, 0.51, 0.49])).verdict == "same"
    worse = energy_metric.compare_results(KEY, base, metered(KEY, [0.60, 0.61, 0.59, 0.60, 0.605]))
    assert worse.verdict == "worse" and worse.ratio == pytest.approx(1.2, rel=0.01)
    assert "+20.0% joules per call" in worse.why
    assert energy_metric.compare_results(KEY, base, metered(KEY, [0.40, 0.41, 0.39, 0.40, 0.40])).verdict == "better"
    straddling = energy_metric.compare_results(KEY, base, metered(KEY, [0.45, 0.62, 0.52, 0.70, 0.48]))
    assert straddling.verdict == "noisy"
    # one round per side: the seconds alone never make it worse
    assert energy_metric.compare_results(KEY, metered(KEY, [0.5]), metered(KEY, [1.0])).verdict == "noisy"


def test_unavailable_energy_is_incomparable_and_says_why_in_one_line():
    row = energy_metric.compare_results(KEY, unmetered(KEY), unmetered(KEY))
    assert row.verdict == "incomparable" and row.base is None and row.other is None
    assert row.why == "energy " + NO_RAPL and "\n" not in row.why
    one = energy_metric.compare_results(KEY, metered(KEY, [0.5, 0.5]), unmetered(KEY))
    assert one.verdict == "incomparable" and one.base == 0.5 and one.other is None
    assert one.why.startswith("other: energy unavailable: no RAPL counters")


def test_different_counters_are_incomparable_and_no_energy_asked_is_no_row():
    row = energy_metric.compare_results(KEY, metered(KEY, [0.5] * 3), metered(KEY, [0.5] * 3, source="nvml: H100"))
    assert row.verdict == "incomparable" and "different energy counters: rapl" in row.why
    package_only = metered(KEY, [0.4] * 3, source="rapl: package-0")
    assert energy_metric.compare_results(KEY, metered(KEY, [0.5] * 3), package_only).verdict == "incomparable"
    bare = Result(key=KEY, status="ok", samples=[1e-3])  # an older report: no energy field at all
    assert energy_metric.compare_results(KEY, bare, bare) is None
    assert energy_metric.compare_results(KEY, bare, metered(KEY, [0.5])).verdict == "incomparable"


def test_energy_is_a_registered_metric_in_joules():
    m = metrics.get("energy")
    assert m is energy_metric.ENERGY and m.rule == "rounds" and m.unit == "joules" and not m.runnable
    assert m in metrics.BESIDE_TIME and metrics.settings_defaults()["energy_threshold"] == 0.10
    assert fmt_value(0.0123, "joules") == "12.3 mJ"


# --- seeded synthetic rounds: +20% caught, A/A never a regression ---------------------------------------
def test_twenty_percent_more_energy_is_worse_nearly_every_time_and_a_hundred_a_a_decisions_never_are():
    caught = false = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        level = rng.uniform(0.001, 5.0)  # joules per call, from a small op to a training step
        base = metered(KEY, noisy_joules(rng, level), rng=rng)
        if seed < 50:
            caught += energy_metric.compare_results(KEY, base, metered(KEY, noisy_joules(rng, 1.2 * level),
                                                                       rng=rng)).verdict == "worse"
        false += energy_metric.compare_results(KEY, base, metered(KEY, noisy_joules(rng, level),
                                                                  rng=rng)).verdict == "worse"
    assert caught >= 47, caught  # 5 rounds a side at 3% noise: the interval clears +10% ~98% of the time
    assert false == 0, false


def test_the_gate_names_the_one_case_whose_energy_rose():
    rng = np.random.default_rng(3)
    base = make_report([metered(KEY, noisy_joules(rng, 0.5), rng=rng), metered(OTHER, noisy_joules(rng, 0.01),
                                                                                rng=rng)])
    cur = make_report([metered(KEY, noisy_joules(rng, 0.6), rng=rng), metered(OTHER, noisy_joules(rng, 0.01),
                                                                               rng=rng)])
    for paired in (False, True):  # gate on stored reports; ab's decision on its paired rounds
        found = [f for f in gate(base, cur, paired=paired).metric_findings if f.outcome == "regression"]
        assert [(f.row.metric, f.row.key) for f in found] == [("energy", KEY)]


def test_the_threshold_is_set_per_case_in_the_rules():
    base = make_report([metered(KEY, [0.50, 0.51, 0.49, 0.50])])
    cur = make_report([metered(KEY, [0.60, 0.61, 0.59, 0.60])])
    result = gate(base, cur)
    assert result.verdict == "regression" and "energy per call: 1 regression" in terminal_text(result)
    assert gate(base, cur, parse_rules({"rules": [{"match": "training/*", "energy_threshold": "30%"}]})).verdict \
        == "pass"
    assert gate(base, cur, parse_rules({"energy_threshold": "25%"})).verdict == "pass"
    with pytest.raises(UserError, match="energy_threshold 'lots': expected a percentage"):
        parse_rules({"energy_threshold": "lots"})


# --- compare on a machine without counters: one line, no table of rows ------------------------------------
def test_compare_says_unavailable_once_per_reason_and_lists_no_rows():
    base = make_report([unmetered(KEY), unmetered(OTHER)])
    cur = make_report([unmetered(KEY), unmetered(OTHER)])
    comp = compare([base, cur], ["base", "cur"])
    assert [r.verdict for r in comp.pairs[0].metric_rows] == ["incomparable", "incomparable"]
    text = comparison_text(comp)
    assert f"cur energy per call: energy {NO_RAPL} (2 cases)" in text
    assert text.count("no RAPL counters") == 1
    assert all(r["why"] == "energy " + NO_RAPL for r in comparison_doc(comp)["metrics"]["cur"])
    result = gate(base, cur)
    assert result.verdict == "pass"  # unavailable energy never decides
    assert terminal_text(result).count("energy unavailable: no RAPL counters") == 1  # gate and ab say it too


def test_compare_lists_a_measured_energy_change():
    base = make_report([metered(KEY, [0.50, 0.51, 0.49])])
    cur = make_report([metered(KEY, [0.80, 0.81, 0.79])])
    text = comparison_text(compare([base, cur], ["base", "cur"]))
    assert "cur energy per call: 1 worse" in text and "500 mJ" in text and "800 mJ" in text


# --- history: a planted step in energy is a change point ------------------------------------------------
def test_history_finds_a_planted_step_in_energy_and_names_why_a_run_has_none():
    rng = np.random.default_rng(11)
    reports = []
    for i in range(24):
        level = 0.50 if i < 12 else 0.60  # +20% from run 13 on; the time stays flat
        result = metered(KEY, noisy_joules(rng, level, n=3, noise=0.005), rng=rng) if i != 5 else unmetered(KEY)
        rep = make_report([result], run_id=f"run{i:02d}")
        rep.created_at = f"2026-01-{i + 1:02d}T00:00:00Z"
        reports.append(rep)
    hist = analyse(reports)
    by_metric = {s.metric: s for s in hist.series}
    assert set(by_metric) == {"time", "energy"}
    assert by_metric["time"].changes == ()
    [step] = by_metric["energy"].changes
    assert step.run.run_id == "run12" and step.ratio == pytest.approx(1.2, rel=0.02)
    assert by_metric["energy"].points[5].status == "missing"
    assert by_metric["energy"].points[5].reason.startswith("energy unavailable: no RAPL counters")
    assert "training/mlp[width=64] cpu float32 (energy per call)" in history_text(hist)


def test_runs_without_energy_add_no_energy_series():
    reports = [make_report([unmetered(KEY)], run_id=f"r{i}") for i in range(3)]
    assert [s.metric for s in analyse(reports).series] == ["time"]


# --- the command line and the HTML page -------------------------------------------------------------------
def test_gate_and_report_commands_show_an_energy_regression(capsys, tmp_path):
    from benchbench.cli import main
    from benchbench.model.report import save

    save(make_report([metered(KEY, [0.50, 0.51, 0.49]), unmetered(OTHER)]), tmp_path / "base.json")
    save(make_report([metered(KEY, [0.70, 0.71, 0.69]), unmetered(OTHER)]), tmp_path / "cur.json")
    base, cur = str(tmp_path / "base.json"), str(tmp_path / "cur.json")
    assert main(["gate", "--baseline", base, cur]) == 1
    out = capsys.readouterr().out
    assert "energy per call: 1 regression" in out and "+40.0% joules per call" in out
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nmatch = "training/*"\nenergy_threshold = "50%"\n')
    assert main(["gate", "--baseline", base, cur, "--rules", str(rules)]) == 0
    capsys.readouterr()
    page = tmp_path / "page.html"
    assert main(["report", base, cur, "--html", str(page)]) == 0
    html = page.read_text()
    assert ">Energy per call<" in html and "Energy per call regresses when" in html  # the section and its rule
    assert "energy per call" in html and "+40.0% joules per call" in html
    assert "energy unavailable: no RAPL counters" in html
