"""output/gate.py: the gate's headline, Markdown summary, terminal text and JSON."""

import json
import statistics

import numpy as np
import pytest
from test_compare import make_report, result, timings
from test_gate import KEY, OTHER, STEADY, decide_on

from benchbench.analysis.gate import Policy, gate
from benchbench.model.report import CaseKey
from benchbench.output.gate import gate_json, markdown_summary, terminal_text


def regression_result():
    rng = np.random.default_rng(4)
    base = make_report([result(KEY, timings(rng, 30, 1e-3, 0.01)), result(OTHER, timings(rng, 30, 2e-3, 0.01))],
                       label="main")
    cur = make_report([result(KEY, timings(rng, 30, 1.3e-3, 0.01)), result(OTHER, timings(rng, 30, 2e-3, 0.01))],
                      label="pr-42")
    return gate(base, cur, Policy())


def test_markdown_summary_puts_the_verdict_and_the_regressions_first():
    md = markdown_summary(regression_result())
    lines = md.splitlines()
    assert lines[0].startswith("### benchbench gate: ❌ REGRESSION: 1 regression, 0 inconclusive, 1 ok")
    assert "`main`" in md and "`pr-42`" in md
    table = [line for line in lines if line.startswith("| ❌")]
    assert len(table) == 1 and "ops/matmul[n=1024] cpu float32" in table[0] and "slower" in table[0]
    assert "+30" in table[0] or "+29" in table[0] or "+31" in table[0]  # the change, in percent
    assert "<details>" in md and "data/load[workers=2]" in md.split("<details>")[1]
    assert "geometric mean" in md and "Mann-Whitney" in md


def test_markdown_summary_stays_comment_sized():
    keys = [CaseKey.make("ops", "k", {"i": i}) for i in range(250)]
    res = decide_on([result(k, STEADY) for k in keys], [result(k, STEADY) for k in keys])
    md = markdown_summary(res)
    assert res.verdict == "pass" and "…and 50 more" in md and len(md) < 65536


def test_terminal_text_ends_with_the_verdict_and_json_carries_it():
    res = regression_result()
    assert terminal_text(res).splitlines()[-1] == "gate: REGRESSION: 1 regression, 0 inconclusive, 1 ok (exit 1)"
    doc = json.loads(gate_json(res))
    assert doc["gate"]["verdict"] == "regression" and doc["gate"]["exit_code"] == 1
    assert {c["outcome"] for c in doc["gate"]["cases"]} == {"regression", "ok"}


def test_ab_output_with_both_metrics_shows_each_gate_and_the_disagreement():
    from benchbench.metrics.instructions import disagreements
    from benchbench.output.gate import ab_json, ab_markdown, ab_text
    from benchbench.run.ab import AbResult

    key = CaseKey.make("s", "b", {}, "cpu")
    rng = np.random.default_rng(0)
    t_base, t_cur = (make_report([result(key, timings(rng, 30, 1e-3, 0.01), timing_method="perf_counter")])
                     for _ in range(2))
    i_base, i_cur = (make_report([result(key, [v, v], timing_method="callgrind-instructions")]) for v in (1000, 1030))
    time_part = AbResult(t_base, t_cur, gate(t_base, t_cur, Policy()))
    counts = AbResult(i_base, i_cur, gate(i_base, i_cur, Policy()), metric="instructions")
    both = AbResult(t_base, t_cur, time_part.gate, instructions=counts,
                    disagreements=disagreements(time_part.gate.pair.rows, counts.gate.pair.rows))
    assert both.verdict == "regression" and both.exit_code == 1
    text = ab_text(both)
    assert "== wall time ==" in text and "== instruction counts (Callgrind) ==" in text
    assert "time and instruction counts disagree:" in text and "instructions up (+3.0%) but time flat" in text
    assert text.rstrip().endswith("ab: REGRESSION (exit 1; the worse of the two gates)")
    md = ab_markdown(both)
    assert "**Time and instruction counts disagree**" in md and md.count("benchbench gate") == 2
    doc = json.loads(ab_json(both))
    assert doc["verdict"] == "regression" and doc["exit_code"] == 1
    assert doc["time"]["gate"]["verdict"] == "pass" and doc["instructions"]["gate"]["verdict"] == "regression"
    # one round each side: the time ratio is the ratio of the two sides' sample medians
    time_ratio = statistics.median(t_cur.results[0].samples) / statistics.median(t_base.results[0].samples)
    assert doc["disagreements"] == [{"case": key.label, "kind": "instructions-only", "time": "flat",
                                     "instructions": "up", "time_ratio": pytest.approx(time_ratio, rel=1e-9),
                                     "instructions_ratio": 1.03}]
    assert time_ratio != 1.0
    # one metric: exactly the gate's own output
    assert ab_text(counts) == terminal_text(counts.gate) and ab_json(counts) == gate_json(counts.gate)
