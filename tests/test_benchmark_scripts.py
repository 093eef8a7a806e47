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
    for name in ("doc_markers", "ab_calibration", "profile_regressions_check", "mutation"):
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
    return {"case": "calibration/add", "kind": kind, "repeat": repeat, "profiled": flag, "profile": "default", "outcome": outcome,
            "case_profiled": profiled, "profile_sides": ["baseline", "current"] if profiled else [],
            "profile_errors": {}, "top_operator": top, "wall_s": 40.0 + repeat, "load_before": 1.0,
            "load_after": 2.5, "threads": "1", "cpus": [0], "cpu_count": 2}


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
    assert "calibration/add: `aten::add` 24." in text and "1.0-2.5" in text


def test_validate_pairing_sees_a_shared_slow_moment_cancel_in_the_paired_ratio(scripts):
    import math
    import random

    m = scripts.import_module("validate_pairing")
    rng = random.Random(5)
    rows = []
    for p in range(6):
        proc = math.exp(rng.gauss(0, 0.10))  # each process its own speed
        for r in range(5):
            moment = math.exp(rng.gauss(0, 0.10))  # the machine's speed this round, shared by the round's three
            t = 1e-3 * proc * moment
            rows.append({"process": p, "round": r, "backend": "cpu", "op": "add",
                         "benchbench": {"median_s": t * math.exp(rng.gauss(0, 0.002))},
                         "torch": {"median_s": t * math.exp(rng.gauss(0, 0.002))},
                         "plain": {"per_call_s": t * math.exp(rng.gauss(0, 0.002))}})
    s = m.spreads(rows, "benchbench")
    assert s["rounds"] == 30
    assert s["paired"] < 0.006  # the 0.2% noise of two measurements, about 0.28%
    assert 0.10 < s["other_round"] < 0.20  # the round-to-round moment, twice: about 14%
    assert s["other_process"] > s["other_round"]  # the process speed on top
    text = m.table({"samples": rows, "processes": 6, "rounds": 5, "profile": "quick", "plain_loop_s": 0.25,
                    "seed": 1, "machine": {"cpus": 2, "torch_threads": 2, "load_start": 0.5, "load_end": 0.7}})
    assert "| cpu add | benchbench's engine | 30 |" in text and "Median over ops and engines" in text


def test_mutation_table_counts_timed_out_mutants_apart_from_the_killed(scripts, monkeypatch, tmp_path):
    m = scripts.import_module("mutation")
    monkeypatch.setattr(m, "EXPLAINED", {"p.x_f__mutmut_5": "equivalent"})
    rows = [(f"p.x_f__mutmut_{i}", "killed") for i in range(1, 4)] + [
        ("p.x_f__mutmut_4", "timeout"), ("p.x_f__mutmut_5", "survived"), ("p.x_g__mutmut_1", "survived"),
        ("p.x_g__mutmut_2", "not checked")]
    # 3 killed, 1 timed out, 2 survivors (1 explained), 1 not run: 3 killed of 5 non-equivalent
    assert m.table({"mod": rows}).splitlines()[2] == "| mod | 7 | 3 | 1 | 2 | 1 | 60% | 1 |"
    monkeypatch.setattr(m, "ROOT", tmp_path)
    text = m.write_doc({"mod": rows})
    before, timed_out = text.split("Timed out")
    assert "`p.x_f__mutmut_4` (mod)" in timed_out and "mutmut_4" not in before  # listed there, and only there
    assert "- mod: `g`: 1" in text  # the one survivor neither killed nor explained
