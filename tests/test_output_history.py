import json
import re

import pytest
from test_history import CONV, MATMUL, RUNS, make_report, planted

from benchbench.analysis import history as hs
from benchbench.output import history as oh


@pytest.fixture(scope="module")
def history():
    return hs.analyse([planted(i) for i in range(1, RUNS + 1)], folder="ci")


def test_text_names_each_change_point_its_run_and_cause(history):
    text = oh.history_text(history)
    assert text.startswith(f"{RUNS} runs, 3 series, 2 change points")
    line = next(ln for ln in text.splitlines() if ln.startswith("tensor_ops/matmul") and "run 5 " in ln)
    assert "main-5" in line and "x1.10" in line and "10.0% slower" in line and "code or unknown" in line
    assert f"commits {'04' * 5}..{'05' * 5}" in line  # the range to bisect
    line = next(ln for ln in text.splitlines() if ln.startswith("tensor_ops/add") and "run 10 " in ln)
    assert "environment change (torch)" in line and "torch: 2.14.1 -> 2.15.0" in line
    assert "12/14 (1 failed, 1 skipped)" in text and "13/14 (1 missing)" in text


def test_a_code_slowdown_between_two_commits_offers_the_bisect_command_line(history):
    text = oh.history_text(history)
    (line,) = [ln for ln in text.splitlines() if "benchbench bisect" in ln]
    assert line.strip().startswith("tensor_ops/matmul[n=256] cpu float32")
    assert f"benchbench bisect {'04' * 6} {'05' * 6} --suite tensor_ops --backend cpu --filter " in line
    assert "'^tensor_ops/matmul\\[n=256\\]\\ cpu\\ float32$'" in line
    assert "### Find the commit" in oh.history_text(history, "github")
    # the environment change (torch upgraded) is not a commit to look for
    assert not any("bisect" in ln for ln in text.splitlines() if ln.strip().startswith("tensor_ops/add"))


def test_markdown_is_tables(history):
    md = oh.history_text(history, "github")
    assert md.startswith("## History of ci")
    assert "### Change points" in md and "| tensor_ops/matmul[n=256] cpu float32 |" in md


def test_json_is_the_history_document(history):
    doc = json.loads(oh.history_json(history))
    bisect = doc.pop("bisect")
    assert doc == json.loads(json.dumps(history.to_dict()))
    assert [b["benchmark"] for b in bisect] == ["tensor_ops/matmul[n=256] cpu float32"]
    assert [c["run"]["run_id"] for s in doc["series"] for c in s["changes"]] == ["run10", "run05"]


def test_html_page_has_one_chart_per_series_with_change_points_and_nothing_external(history):
    page = oh.history_html(history)
    assert page.count("<svg") == len(history.series) == 3
    assert "x1.100" in page and "x1.204 env" in page  # the change points are marked on the charts
    assert ">failed<" in page and ">skipped<" in page and ">missing<" in page  # legend entries
    assert not re.search(r'(src|href)="(https?:)?//', page)
    data = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S)[1]
    assert json.loads(data)["history"]["series"][0]["key"]["benchmark"] == "add"


def test_single_report_and_no_change_points_render(history):
    one = hs.analyse([make_report(1)], folder="x")
    assert "change points:\nnone" in oh.history_text(one)
    assert oh.history_html(one).count("<svg") == 3
    only_failed = hs.analyse([make_report(3, conv="failed")], patterns=[CONV.label])
    assert "0/1 (1 failed)" in oh.history_text(only_failed)
    assert "<svg" in oh.history_html(only_failed)
    assert MATMUL.label not in oh.history_text(only_failed)
