"""Helpers of the scripts under benchmarks/: the doc-marker writer they share, and the table of
benchmarks/profile_regressions_check.py from synthetic records with known counts."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    for name in ("doc_markers", "ab_calibration", "profile_regressions_check"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib


def test_the_table_replaces_only_what_lies_between_its_markers(scripts, tmp_path):
    dm = scripts.import_module("doc_markers")
    doc = tmp_path / "page.md"
    begin, end = dm.markers("t")
    doc.write_text(f"# Page\nbefore\n{begin}\nold table\n{end}\nafter\n")
    dm.write_between(doc, begin, end, "| new |")
    assert doc.read_text() == f"# Page\nbefore\n{begin}\n| new |\n{end}\nafter\n"
    dm.write_between(doc, begin, end, "| newer |")
    assert doc.read_text().count(begin) == 1 and "| new |" not in doc.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["page.md"]  # no temporary file left


def test_missing_markers_stop_the_script_unless_asked_to_create_them(scripts, tmp_path):
    dm = scripts.import_module("doc_markers")
    doc = tmp_path / "page.md"
    doc.write_text("# Page\nno markers")
    with pytest.raises(SystemExit, match="the markers .* are missing"):
        dm.write_between(doc, *dm.markers("t"), "x")
    assert doc.read_text() == "# Page\nno markers"
    dm.write_between(doc, *dm.markers("t"), "x", create=True)
    assert doc.read_text() == "# Page\nno markers\n<!-- t:begin -->\nx\n<!-- t:end -->\n"
    dm.write_between(tmp_path / "new.md", *dm.markers("u"), "y", create=True)
    assert (tmp_path / "new.md").read_text() == "<!-- u:begin -->\ny\n<!-- u:end -->\n"


def _record(kind, repeat, flag, outcome, profiled=False, top=None):
    return {"kind": kind, "repeat": repeat, "profiled": flag, "profile": "default", "outcome": outcome,
            "case_profiled": profiled, "profile_sides": ["baseline", "current"] if profiled else [],
            "profile_errors": {}, "top_operator": top, "wall_s": 40.0 + repeat, "load_before": 1.0,
            "load_after": 2.5}


def test_profile_check_table_counts_verdicts_per_setting_and_tests_them(scripts):
    m = scripts.import_module("profile_regressions_check")
    recs = [_record("aa@5%", r, flag, "ok") for r in range(4) for flag in (False, True) for _ in range(6)]
    recs[0]["outcome"] = "inconclusive"
    recs += [_record("+10%@5%", r, flag, "regression", profiled=flag, top="aten::add" if flag else None)
             for r in range(4) for flag in (False, True) for _ in range(6)]
    text = m.table(recs)
    assert "| aa@5% | off | 24 | 0 | 1 | 23 | 23/24 | 0 (0) | 42 s |" in text
    assert "| aa@5% | on | 24 | 0 | 0 | 24 | 24/24 | 0 (0) | 42 s |" in text
    assert "| +10%@5% | on | 24 | 24 | 0 | 0 | 24/24 | 24 (24) | 42 s |" in text
    assert "aa@5%: regression p = 1.00, inconclusive p = 1.00, ok p = 1.00" in text
    assert "`aten::add` in 24 of 24" in text and "1.0-2.5" in text
