"""output/gate.py: the gate's headline, Markdown summary, terminal text and JSON."""

import json

import numpy as np
from test_compare import make_report, result, timings
from test_gate import KEY, OTHER, STEADY, decide_on

from benchbench.gate import Policy, gate
from benchbench.output.gate import gate_json, markdown_summary, terminal_text
from benchbench.report import CaseKey


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
