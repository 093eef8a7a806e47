"""frame.py: pandas views of reports and comparisons."""

from pathlib import Path

import pytest
from test_compare import make_report
from test_output_comparison import pb_comparison

from benchbench.frame import compare_frame, comparison_frame, report_frame, samples_frame
from benchbench.model.formats import load_any
from benchbench.model.report import load, save

DATA = Path(__file__).parent / "data"
PB_BASE, PB_NODATA = DATA / "pytest_benchmark_base.json", DATA / "pytest_benchmark_nodata.json"
GOLDEN = DATA / "report_v1.json"


def test_report_frame_from_the_golden_report():
    rep = load(GOLDEN)
    df = report_frame(rep)
    assert len(df) == len(rep.results)
    ok = [r for r in sorted(rep.results, key=lambda r: r.key.sort_key())]
    assert list(df["median_s"]) == pytest.approx([r.stats.median for r in ok])
    assert "param_n" in df.columns or "param_numel" in df.columns
    assert df["median_s"].dtype.kind == "f"


def test_report_frame_uses_imported_statistics_and_samples_frame_is_long():
    rep = load_any(PB_NODATA)
    df = report_frame(rep)
    assert df["median_s"].notna().all() and (df["n"] > 0).all()
    assert samples_frame(rep).empty
    base = load_any(PB_BASE)
    assert len(samples_frame(base)) == sum(len(r.samples) for r in base.results)
    assert list(report_frame(make_report([])).columns)[:3] == ["suite", "benchmark", "params"]


def test_comparison_frame_matches_the_comparison(tmp_path):
    comp = pb_comparison()
    df = comparison_frame(comp)
    assert len(df) == 6
    current = df[df["other"] == "current"].set_index("benchmark")
    row = next(r for r in comp.pairs[0].rows if r.key.benchmark == "test_join")
    assert current.loc["test_join", "ratio"] == pytest.approx(row.change.ratio)
    assert current.loc["test_join", "verdict"] == row.verdict
    save(load(GOLDEN), tmp_path / "g.json")
    df2 = compare_frame(tmp_path / "g.json", GOLDEN)
    assert (df2["ratio"] == 1.0).all() and (df2["p_value"] == 1.0).all()
