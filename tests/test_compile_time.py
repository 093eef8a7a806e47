"""compile_time.py: compile time as a metric over rounds, graph breaks and recompiles as regressions of their own."""

import numpy as np
import pytest
from test_compare import make_report

from benchbench import metrics
from benchbench.analysis.gate import gate, parse_rules
from benchbench.errors import UserError
from benchbench.metrics import compile_time
from benchbench.model.report import CaseKey, Result
from benchbench.output.gate import terminal_text

KEY = CaseKey.make("training", "mlp", {"width": 64}, "cpu", "float32", "compile")
EAGER = CaseKey.make("training", "mlp", {"width": 64}, "cpu", "float32", "eager")


def compiled(key, compile_s, graph_breaks=0, recompiles=0, reasons=(), rng=None):
    """A compiled case of len(compile_s) rounds, each round compiling cold in its own process."""
    rng = rng or np.random.default_rng(0)
    rounds, samples = [], []
    for i, c in enumerate(compile_s):
        xs = (1e-3 * np.exp(0.01 * rng.standard_normal(4))).tolist()
        samples += xs
        rounds.append({"round": i, "n": len(xs), "loops": 1,
                       "metrics": {"compile_s": float(c), "graph_breaks": graph_breaks, "recompiles": recompiles}})
    return Result(key=key, status="ok", samples=samples, rounds=rounds,
                  metrics={"compile_s": float(np.median(compile_s)), "graph_breaks": graph_breaks,
                           "recompiles": recompiles, "graph_break_reasons": list(reasons)})


def noisy_compiles(rng, seconds, n=5, noise=0.05):
    """Cold compile times of n rounds: a few percent of noise at the scale of seconds."""
    return (seconds * np.exp(noise * rng.standard_normal(n))).tolist()


def test_the_rule_on_known_rounds():
    base = compiled(KEY, [20.0, 20.4, 19.8, 20.1, 20.2])
    assert compile_time.compare_results(KEY, base, compiled(KEY, [20.1, 20.3, 19.9, 20.0, 20.2])).verdict == "same"
    worse = compile_time.compare_results(KEY, base, compiled(KEY, [30.0, 30.5, 29.7, 30.1, 30.3]))
    assert worse.verdict == "worse" and worse.ratio == pytest.approx(1.5, rel=0.02)
    better = compile_time.compare_results(KEY, base, compiled(KEY, [10.0, 10.1, 9.9, 10.0, 10.2]))
    assert better.verdict == "better"
    straddling = compile_time.compare_results(KEY, base, compiled(KEY, [18.0, 26.0, 21.0, 30.0, 19.0]))
    assert straddling.verdict == "noisy"


def test_one_round_per_side_is_never_worse_by_the_seconds_alone():
    base = compiled(KEY, [20.0])
    assert compile_time.compare_results(KEY, base, compiled(KEY, [40.0])).verdict == "noisy"
    assert compile_time.compare_results(KEY, base, compiled(KEY, [20.5])).verdict == "same"


def test_a_new_graph_break_is_a_regression_and_named_whatever_the_seconds_say():
    base = compiled(KEY, [20.0, 20.1, 19.9])
    cur = compiled(KEY, [19.0, 19.1, 18.9], graph_breaks=1,
                   reasons=["Unsupported: builtin: print [<class 'ConstantVariable'>] False"])
    row = compile_time.compare_results(KEY, base, cur)
    assert row.verdict == "worse"
    assert "graph breaks 0 -> 1" in row.why and "builtin: print" in row.why
    result = gate(make_report([base]), make_report([cur]))
    assert result.verdict == "regression"
    assert "graph breaks 0 -> 1" in terminal_text(result)


def test_a_new_recompile_is_a_regression():
    row = compile_time.compare_results(KEY, compiled(KEY, [5.0, 5.1]), compiled(KEY, [5.0, 5.1], recompiles=2))
    assert row.verdict == "worse" and "recompiles 0 -> 2" in row.why


def test_eager_cases_have_no_compile_row():
    eager = Result(key=EAGER, status="ok", samples=[1e-3, 1.1e-3])
    assert compile_time.compare_results(EAGER, eager, eager) is None


def test_thirty_percent_more_compile_time_is_caught_in_nine_of_ten_tries_and_a_a_never_regresses():
    caught = false = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        base = compiled(KEY, noisy_compiles(rng, 20.0), rng=rng)
        slower = compiled(KEY, noisy_compiles(rng, 26.0), rng=rng)
        same = compiled(KEY, noisy_compiles(rng, 20.0), rng=rng)
        caught += compile_time.compare_results(KEY, base, slower).verdict == "worse"
        false += compile_time.compare_results(KEY, base, same).verdict == "worse"
    assert caught >= 45, caught
    assert false == 0, false


def test_the_threshold_is_set_per_case_in_the_rules():
    base = make_report([compiled(KEY, [20.0, 20.2, 19.9, 20.1])])
    cur = make_report([compiled(KEY, [26.0, 26.2, 25.9, 26.1])])
    assert gate(base, cur).verdict == "regression"
    assert gate(base, cur, parse_rules({"rules": [{"match": "training/*", "compile_threshold": "50%"}]})).verdict \
        == "pass"
    with pytest.raises(UserError, match="compile_threshold 'fast': expected a percentage"):
        parse_rules({"compile_threshold": "fast"})


def test_phases_split_dynamo_tracing_from_the_backend_compiler():
    before = {"_compile.compile_inner": [1.0], "OutputGraph.call_user_compiler": [0.5]}
    table = {"_compile.compile_inner": [1.0, 10.0, 2.0], "OutputGraph.call_user_compiler": [0.5, 7.0, 1.0]}
    assert compile_time.phases(before, table) == {"dynamo_s": 4.0, "inductor_s": 8.0}
    assert compile_time.phases(None, {}) == {}


def test_graph_break_reasons_are_new_ones_in_one_line():
    msg = ("Failed to trace builtin operator\n  Explanation: Dynamo does not know how to trace builtin operator "
           "`print` with argument types ['str']\n  Hint: Avoid calling builtin `print`.")
    assert compile_time.graph_break_reasons({"old": 1}, {"old": 1, msg: 2}) == [
        "Failed to trace builtin operator: Dynamo does not know how to trace builtin operator `print` with argument "
        "types ['str']"]
    assert compile_time.graph_break_reasons({msg: 1}, {msg: 1}) == []


def test_compile_time_is_a_registered_metric():
    m = metrics.get("compile")
    assert m is compile_time.COMPILE_TIME and m.rule == "rounds" and m in metrics.BESIDE_TIME


@pytest.mark.slow
def test_a_graph_break_added_to_a_test_model_is_named():
    """Real Dynamo (the eager backend: tracing without Inductor's minutes): the same model with a print
    added in its forward compiles into two graphs, and the comparison names that break."""
    import time

    import torch

    class Net(torch.nn.Module):
        def __init__(self, chatty: bool) -> None:
            super().__init__()
            self.a, self.b, self.chatty = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8), chatty

        def forward(self, x):
            x = torch.relu(self.a(x))
            if self.chatty:
                print("activations ready")  # the graph break under test
            return self.b(x)

    def measure(chatty: bool) -> Result:
        torch._dynamo.reset()
        breaks = compile_time.break_counts()
        t0 = time.perf_counter()
        torch.compile(Net(chatty), backend="eager")(torch.randn(4, 8))
        seconds = time.perf_counter() - t0
        now = compile_time.break_counts()
        count = sum(n - breaks.get(r, 0) for r, n in now.items())
        return compiled(KEY, [seconds, seconds * 1.01], graph_breaks=count,
                        reasons=compile_time.graph_break_reasons(breaks, now))

    base, cur = measure(False), measure(True)
    assert base.metrics["graph_breaks"] == 0 and cur.metrics["graph_breaks"] >= 1
    row = compile_time.compare_results(KEY, base, cur)
    assert row.verdict == "worse"
    assert "graph breaks 0 -> " in row.why and "print" in row.why


# --- several cold compiles per round (benchbench/measure/cold_compile.py) ------------------------------------------
def repeated(key, rounds, graph_breaks=0):
    """A compiled case whose rounds each compiled several times: `rounds` is a list of each round's compiles."""
    result = compiled(key, [float(np.exp(np.mean(np.log(r)))) for r in rounds], graph_breaks=graph_breaks)
    for record, runs in zip(result.rounds, rounds, strict=True):
        record["metrics"]["compile_runs_s"] = [float(v) for v in runs]
    return result


def two_level(rng, seconds, rounds=3, repeats=3, process=0.015, within=0.05):
    """Cold compiles in `rounds` processes of `repeats` each: a process effect shared by a round's compiles,
    and noise of its own on each compile (the sizes measured on this project's CPU: docs/metrics.md)."""
    return [(seconds * np.exp(process * rng.standard_normal() + within * rng.standard_normal(repeats))).tolist()
            for _ in range(rounds)]


def test_a_round_is_the_geometric_mean_of_its_compiles_and_the_row_counts_them():
    base = repeated(KEY, [[10.0, 10.0 * 1.21], [11.0, 11.0], [12.1, 10.0]])
    assert compile_time.round_compiles(base) == [[10.0, 12.1], [11.0, 11.0], [12.1, 10.0]]
    assert compile_time.round_means(compile_time.round_compiles(base)) == pytest.approx([11.0, 11.0, 11.0])
    row = compile_time.compare_results(KEY, base, repeated(KEY, [[14.3, 14.3], [14.3, 14.3], [14.3, 14.3]]))
    # every round of the base is 11 s (geometric means), the other's 14.3 s: the ratio is 1.3 exactly, and with
    # no spread between rounds the interval is that point
    assert row.verdict == "worse" and row.ratio == pytest.approx(1.3)
    assert row.details["compiles"] == [6, 6] and row.details["rounds"] == [3, 3]


def test_results_with_one_compile_per_round_compare_as_before():
    base, cur = compiled(KEY, [20.0, 20.4, 19.8]), repeated(KEY, [[26.0], [26.4], [25.8]])
    assert compile_time.round_compiles(base) == [[20.0], [20.4], [19.8]]
    assert compile_time.compare_results(KEY, base, cur).verdict == "worse"


def test_repeats_catch_thirty_percent_at_three_rounds_where_one_compile_per_round_does_not():
    """+30% compile time, 3 rounds a side, the noise measured here (5% a compile, 1.5% a process): three cold
    compiles per round catch it in at least 90% of tries; one per round (the rule before) misses it often."""
    caught = {1: 0, 3: 0}
    for seed in range(100):
        for repeats in caught:
            rng = np.random.default_rng([seed, repeats])
            base = repeated(KEY, two_level(rng, 5.0, repeats=repeats))
            slower = repeated(KEY, two_level(rng, 6.5, repeats=repeats))
            caught[repeats] += compile_time.compare_results(KEY, base, slower).verdict == "worse"
    assert caught[3] >= 90, caught
    assert caught[1] < 80, caught


def test_the_process_is_the_unit_so_a_process_effect_gives_no_false_regressions():
    """A/A with a large process effect (8%, e.g. memory placement) and many compiles per round: compiles of one
    process are not independent, so the rule keeps to the rounds and stays quiet; a rule over all compiles as
    if independent would call some of these A/A pairs worse."""
    false = naive = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        a, b = two_level(rng, 5.0, repeats=8, process=0.08), two_level(rng, 5.0, repeats=8, process=0.08)
        false += compile_time.compare_results(KEY, repeated(KEY, a), repeated(KEY, b)).verdict == "worse"
        _, low, _ = compile_time.interval([v for r in a for v in r], [v for r in b for v in r])
        naive += low > 1.10
    assert false == 0, false
    assert naive > 0, naive


def test_a_a_with_three_compiles_per_round_never_regresses():
    false = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        row = compile_time.compare_results(KEY, repeated(KEY, two_level(rng, 5.0)), repeated(KEY, two_level(rng, 5.0)))
        false += row.verdict == "worse"
    assert false == 0, false


def test_a_graph_break_still_names_itself_with_repeats():
    row = compile_time.compare_results(KEY, repeated(KEY, [[5.0, 5.1]] * 2), repeated(KEY, [[5.0, 5.1]] * 2, 1))
    assert row.verdict == "worse" and "graph breaks 0 -> 1" in row.why


def drifting(rng, seconds, ratio, drift=0.3, rounds=3, repeats=3, within=0.05):
    """Both sides of `rounds` rounds measured together (`ab`) on a machine whose speed moves by `drift` (log sd)
    from round to round, hitting both sides of a round alike; the other side's compile work is `ratio` times."""
    base, other = [], []
    for _ in range(rounds):
        speed = np.exp(drift * rng.standard_normal())
        base.append((seconds * speed * np.exp(within * rng.standard_normal(repeats))).tolist())
        other.append((seconds * ratio * speed * np.exp(within * rng.standard_normal(repeats))).tolist())
    return repeated(KEY, base), repeated(KEY, other)


def test_rounds_measured_together_are_paired_so_the_machines_drift_cancels():
    """The load measured here moved compile times by 2x between rounds of one `ab`; paired by round, +30% is
    caught in at least 90 of 100 tries, where Welch's unpaired rule catches few; A/A stays quiet both ways."""
    caught = {True: 0, False: 0}
    false = {True: 0, False: 0}
    for seed in range(100):
        rng = np.random.default_rng(seed)
        slower, same = drifting(rng, 5.0, 1.3), drifting(rng, 5.0, 1.0)
        for paired in caught:
            caught[paired] += compile_time.compare_results(KEY, *slower, {"paired": paired}).verdict == "worse"
            false[paired] += compile_time.compare_results(KEY, *same, {"paired": paired}).verdict == "worse"
    assert caught[True] >= 90 and caught[False] < 50, caught
    assert false == {True: 0, False: 0}, false
    row = compile_time.compare_results(KEY, *drifting(np.random.default_rng(0), 5.0, 1.3), {"paired": True})
    assert row.details["paired"] == 3


def test_pairing_needs_two_rounds_with_the_same_index_on_both_sides():
    base = repeated(KEY, [[5.0, 5.1], [9.0, 9.2], [5.2, 5.0]])
    other = repeated(KEY, [[6.5, 6.6], [11.8, 11.9], [6.6, 6.5]])
    paired = compile_time.compare_results(KEY, base, other, {"paired": True})
    assert paired.verdict == "worse" and paired.details["paired"] == 3
    for i, record in enumerate(other.rounds):
        record["round"] = 10 + i  # no round in common: Welch's rule, as for two stored runs
    unpaired = compile_time.compare_results(KEY, base, other, {"paired": True})
    assert "paired" not in unpaired.details and unpaired.verdict == "noisy"


def test_the_comparison_tells_the_metric_whether_its_reports_were_measured_together():
    from benchbench.analysis.compare import compare

    slower = drifting(np.random.default_rng(1), 5.0, 1.3)
    reports = [make_report([r]) for r in slower]
    seeds = [{"round": i, "seed": 100 + i} for i in range(3)]
    for rep, side in zip(reports, ("baseline", "current"), strict=True):
        rep.side, rep.rounds = {"name": side}, seeds
    [row] = [r for r in compare(reports).pairs[0].metric_rows if r.metric == "compile"]
    assert row.details.get("paired") == 3


def test_metric_rows_called_alone_take_the_rounds_as_unpaired():
    """A notebook calling `metric_rows` on compared rows without saying how the reports were measured gets
    Welch's rule (two stored runs), not the pairing only `ab` earns."""
    from benchbench.analysis.compare import Criteria, compare_pair, metric_rows

    base, other = drifting(np.random.default_rng(1), 5.0, 1.3)
    rows = [compare_pair(KEY, base, other, Criteria())]
    [row] = [r for r in metric_rows(rows) if r.metric == "compile"]
    assert "paired" not in row.details
    [row] = [r for r in metric_rows(rows, paired=True) if r.metric == "compile"]
    assert row.details["paired"] == 3
