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
