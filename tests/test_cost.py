"""Cost per result across machines, against numbers worked out by hand."""

from __future__ import annotations

import json

import pytest
from test_compare import make_report, result

from benchbench.analysis.compare import compare
from benchbench.analysis.cost import case_cost, comparison_costs, cost_per_million, parse_prices
from benchbench.cli import main
from benchbench.errors import UserError
from benchbench.model.report import CaseKey, save
from benchbench.output.cost import cost_text, fmt_money

IMG = CaseKey.make("training", "resnet", {"batch": 32}, "cuda", "float32")
TOK = CaseKey.make("inference", "llm", {"seq": 128}, "cuda", "bfloat16")
NOWORK = CaseKey.make("tensor_ops", "layout", {}, "cuda", "float32")


def res(key, seconds_per_call, items, unit, j_per_call=None, watts=None):
    metrics = {"energy": "nvml: GPU"} if j_per_call else {"energy": "unavailable: nvidia-ml-py is not installed"}
    if j_per_call:
        metrics.update(energy_j_per_call=j_per_call, power_w=watts)
    work = {"items": float(items), "items_unit": unit} if items else {}
    return result(key, [seconds_per_call] * 5, work=work, metrics=metrics)


def reports():
    # machine A, $2.88/h: 32 images in 10 ms (3200 images/s), 0.5 J per call; 128 tokens in 4 ms (32000/s)
    a = make_report([res(IMG, 0.010, 32, "images", 0.5, 50.0), res(TOK, 0.004, 128, "tokens", 0.2, 50.0),
                     res(NOWORK, 0.001, None, None)], label="a100", run_id="a")
    # machine B, $7.20/h: 32 images in 5 ms (6400/s), 1.6 J; 128 tokens in 1 ms (128000/s), energy unread
    b = make_report([res(IMG, 0.005, 32, "images", 1.6, 320.0), res(TOK, 0.001, 128, "tokens"),
                     res(NOWORK, 0.001, None, None)], label="h100", run_id="b")
    return a, b


def test_cost_per_million_is_the_hours_a_million_take_times_the_price():
    assert cost_per_million(1000.0, 3.6) == pytest.approx(1.0)  # 1e6 items: 1000 s = 1/3.6 h; x $3.6
    assert cost_per_million(1e6 / 3600, 2.0) == pytest.approx(2.0)  # a million items take one hour


def test_case_cost_by_hand():
    a, b = reports()
    c = case_cost(a.result(IMG), 2.88)
    # 3200 images/s: 1e6 images take 312.5 s = 0.0868 h; x 2.88 = 0.25. 32 images / 0.5 J = 64 images/J
    assert c.items_per_s == pytest.approx(3200.0)
    assert c.cost_per_million == pytest.approx(0.25)
    assert c.items_per_joule == pytest.approx(64.0) and c.items_unit == "images"
    assert case_cost(b.result(TOK), 7.2).items_per_joule is None  # energy unavailable: never made up
    assert case_cost(a.result(NOWORK), 2.88) is None
    assert case_cost(a.result(IMG), None).cost_per_million is None


def test_comparison_cost_table_by_hand():
    a, b = reports()
    table = comparison_costs(compare([a, b], ["a", "b"]), [2.88, 7.2])
    rows = {r.key: r for r in table.rows}
    assert set(rows) == {IMG, TOK} and table.without_items == 1
    img, tok = rows[IMG], rows[TOK]
    # B: 6400 images/s at $7.20/h: 156.25 s per million = 0.3125 (dearer than A's 0.25); 20 images/J
    assert img.costs[1].cost_per_million == pytest.approx(0.3125)
    assert img.costs[1].items_per_joule == pytest.approx(20.0)
    assert img.cheapest == 0
    # tokens: A 32000/s at 2.88 -> 0.025; B 128000/s at 7.20 -> 0.015625
    assert tok.costs[0].cost_per_million == pytest.approx(0.025)
    assert tok.costs[1].cost_per_million == pytest.approx(0.015625)
    assert tok.cheapest == 1
    # B over A: sqrt(1.25 * 0.625) = 0.8839 over 2 cases
    ratio, n = table.relative_cost(1)
    assert ratio == pytest.approx((1.25 * 0.625) ** 0.5) and n == 2
    assert table.energy_reasons == (None, None)  # each measured energy in some case


def test_cost_text_shows_cost_next_to_speed():
    a, b = reports()
    text = cost_text(comparison_costs(compare([a, b], ["a", "b"]), [2.88, 7.2]))
    line = next(x for x in text.splitlines() if x.startswith("training/resnet"))
    for cell in ("3.2 kimages/s", "0.250", "64 images", "6.4 kimages/s", "0.312", "20 images"):
        assert cell in line, (cell, line)
    assert line.split()[-1] == "a"  # cheapest
    assert "b vs a: cost per result x0.884 (1.13x cheaper), geometric mean over 2 cases" in text


def test_fmt_money_keeps_three_digits_without_exponents():
    assert [fmt_money(x) for x in (8.99e-05, 0.25, 12.345, 1234.5, None)] == \
        ["0.0000899", "0.250", "12.35", "1,234.50", "-"]


def test_parse_prices_by_name_label_host_or_order():
    a, b = reports()
    a.environment["fingerprint"]["hostname"] = "box-a"
    names = ["base", "cur"]
    assert parse_prices("base=2.5,cur=$4", names, [a, b]) == [2.5, 4.0]
    assert parse_prices("h100=4", names, [a, b]) == [None, 4.0]  # a report's label
    assert parse_prices("box-a=1.5", names, [a, b]) == [1.5, None]  # its host name
    assert parse_prices("1, 2", names, [a, b]) == [1.0, 2.0]
    for bad, said in (("nope=1", "no report named 'nope'"), ("base=x", "not a price"), ("base=-1", "positive"),
                      ("1", "1 prices for 2 reports"), ("base=1,base=2", "priced twice"), ("base=1,2", "mix"),
                      ("base=nan", "positive"), (",", "give NAME=PRICE")):
        with pytest.raises(UserError, match=said):
            parse_prices(bad, names, [a, b])


def test_compare_cli_with_prices(capsys, tmp_path):
    a, b = reports()
    save(a, tmp_path / "a.json")
    save(b, tmp_path / "b.json")
    pa, pb = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    assert main(["compare", pa, pb, "--price-per-hour", "a=2.88,b=7.2"]) == 0
    out = capsys.readouterr().out
    assert "Cost per result:" in out and "0.0156" in out and "a 2.88/h, b 7.20/h" in out
    assert main(["compare", pa, pb, "--price-per-hour", "2.88,7.2", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] and doc["cost"]["prices_per_hour"] == {"a": 2.88, "b": 7.2}
    tok = next(r for r in doc["cost"]["rows"] if r["benchmark"] == "llm")
    assert tok["reports"]["b"]["cost_per_million"] == pytest.approx(0.015625) and tok["cheapest"] == "b"
    assert main(["compare", pa, pb, "--price-per-hour", "a=2.88,c=1"]) == 2
    assert "no report named 'c'" in capsys.readouterr().err
    assert main(["compare", pa, pb, "--price-per-hour", "1,1", "--format", "csv"]) == 2
