"""output/charts.py: bars, lines and forest plots as inline SVG, with what was not measured kept visible."""

import re

from benchbench.output.charts import Bar, bars, forest, lines


def texts(svg):
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_bars_write_a_status_where_a_bar_is_missing_and_draw_whiskers():
    svg = bars(["a", "b", "c"], [("r1", [Bar(10, 9, 11), "failed", Bar(3, note="3.00x")]),
                                 ("r2", [Bar(12, 11, 13), Bar(5), "missing"])], "GFLOP/s")
    t = texts(svg)
    assert {"a", "b", "c", "failed", "missing", "3.00x", "r1", "r2", "GFLOP/s"} <= set(t)
    assert svg.count("<path") > 6  # bars, whiskers, legend patches


def test_bars_on_a_log_axis_label_ticks_as_plain_numbers():
    t = texts(bars(["x", "y"], [("only", [Bar(2.0), Bar(2000.0)])], "ops/s", log=True))
    assert "1000" in t and not any("10^" in x or "$" in x for x in t)


def test_lines_mark_and_label_points():
    svg = lines([("in_memory", [(0, 100, 90, 110), (1, 180, 170, 190), (2, 250, None, None)])],
                [(1, 180, "recommended: num_workers=1")], "num_workers", "images/s")
    t = texts(svg)
    assert "recommended: num_workers=1" in t and "num_workers" in t and "images/s" in t
    assert {"0", "1", "2"} <= set(t)  # a short sweep ticks every value


def test_forest_marks_one_and_the_threshold():
    t = texts(forest([("slow", 1.3, 1.25, 1.35, "regression"), ("same", 1.0, 0.98, 1.02, "ok")], 0.05,
                     "ratio"))
    assert {"slow", "same", "1", "1.05", "0.95", "1.25", "ratio"} <= set(t)
