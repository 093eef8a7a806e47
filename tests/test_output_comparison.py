"""output/comparison.py: comparisons as console, Markdown and CSV tables and as a JSON document."""

import csv
import io
import json
from pathlib import Path

from test_canary import slower
from test_compare import make_report, result

from benchbench.analysis.compare import compare
from benchbench.model.formats import load_any
from benchbench.model.report import CaseKey
from benchbench.output.comparison import comparison_csv, comparison_json, comparison_text, drift_lines

DATA = Path(__file__).parent / "data"
PB_BASE, PB_CURRENT, PB_NODATA = (DATA / f"pytest_benchmark_{n}.json" for n in ("base", "current", "nodata"))


def pb_comparison():
    return compare([load_any(PB_BASE), load_any(PB_CURRENT), load_any(PB_NODATA)], ["base", "current", "nodata"])


def test_comparison_csv_has_one_row_per_key_and_report():
    rows = list(csv.DictReader(io.StringIO(comparison_csv(pb_comparison()))))
    assert len(rows) == 6 and {r["other"] for r in rows} == {"current", "nodata"}
    nodata = [r for r in rows if r["other"] == "nodata"]
    assert all(r["p_value"] == "" and r["flags"] == "no-samples" for r in nodata)
    assert all(float(r["ratio_ci_low"]) <= float(r["ratio"]) <= float(r["ratio_ci_high"]) for r in rows)


def test_comparison_json_and_text():
    comp = pb_comparison()
    doc = json.loads(comparison_json(comp))
    assert doc["base"] == "base" and doc["others"] == ["current", "nodata"]
    assert set(doc["geomeans"]["current"]) == {"overall", "pytest-benchmark", "strings"}
    text = comparison_text(comp)
    assert "geometric mean time ratio" in text and "strings/test_join cpu" in text
    md = comparison_text(comp, "github").splitlines()
    assert md[0].startswith("| case") and md[1].startswith("|---")
    assert "- current vs base: geometric mean" in "\n".join(md) and "  - strings:" in "\n".join(md)


def test_environment_differences_are_listed_above_the_table():
    k = CaseKey.make("ops", "mm")
    a = make_report([result(k, [1.0] * 6)])
    b = make_report([result(k, [0.5] * 6)], {"torch": "2.14.1", "cpu": "Apple M3", "threads": 2, "hostname": "b"})
    text = comparison_text(compare([a, b], ["a", "b"]))
    first = text.splitlines()
    assert first[0] == "Environment differences:"
    assert "cpu: AMD EPYC (a) vs Apple M3 (b)" in first[1] and "incomparable" in first[1]
    assert "2.00x faster" in text


def _with_canaries(report, factors):
    report.rounds = [{"round": i, "seed": i, "canary": slower(f)} for i, f in enumerate(factors)]
    return report


def test_drift_lines_read_the_median_canary_over_rounds_and_name_a_slower_machine_or_a_drifting_run():
    k = CaseKey.make("ops", "mm")

    def lines(base_factors, other_factors):
        a = _with_canaries(make_report([result(k, [1.0] * 6)]), base_factors)
        b = _with_canaries(make_report([result(k, [1.0] * 6)]), other_factors)
        return drift_lines(compare([a, b], ["a", "b"]))

    assert lines([1, 1.01, 1], [1.03, 1.02, 1.0]) == []
    assert lines([1, 1, 1, 1, 1], [1.02, 3.0, 1.01, 1.0, 1.0]) == []  # one preempted canary is ignored
    (line,) = lines([1, 1, 1], [1.96, 1.95, 1.97])
    assert "1.96x as long in b as in a" in line
    (line,) = lines([1, 1, 1, 1, 1], [1.0, 1.0, 1.0, 1.5, 1.5])
    assert line.startswith("b: the machine's own speed moved by 50% during the run")
    assert drift_lines(compare([make_report([result(k, [1.0] * 6)])] * 2, ["a", "b"])) == []  # no canary


def test_disagreement_text_says_what_each_kind_means():
    from benchbench.metrics.instructions import Disagreement
    from benchbench.output.comparison import disagreement_lines, disagreement_text

    key = CaseKey.make("s", "b")
    instr_only = disagreement_text(Disagreement("flat", "up", 1.0, 1.02, key))
    assert instr_only.startswith("instructions up (+2.0%) but time flat (+0.0%)") and "more work" in instr_only
    time_only = disagreement_text(Disagreement("up", "flat", 1.10))
    assert time_only.startswith("time up (+10.0%) but instructions flat:")
    assert "memory bandwidth" in time_only and "GPU" in time_only
    assert "opposite directions" in disagreement_text(Disagreement("up", "down"))
    (line,) = disagreement_lines([Disagreement("flat", "down", 1.0, 0.97, key)])
    assert line.startswith(f"{key.label}: instructions down (-3.0%)") and "less work" in line and "\n" not in line


def test_instruction_reports_are_described_as_instruction_count_ratios():
    from benchbench.metrics.instructions import METHOD

    k = CaseKey.make("ops", "dispatch", {}, "cpu", "float32")
    counts = [make_report([result(k, [1000.0] * 5, timing_method=METHOD)], run_id=r) for r in ("a", "b")]
    counts[1].results[0].samples = [1020.0] * 5
    text = comparison_text(compare(counts, ["a", "b"]))
    assert "geometric mean instruction count ratio 1.020" in text and "ratio = instructions per call b / a" in text
    assert "0.5% tolerance" in text and "fastest sample" not in text
    assert "time ratio" not in text
    times = compare([make_report([result(k, [1e-3] * 9)], run_id=r) for r in ("a", "b")], ["a", "b"])
    assert "geometric mean time ratio" in comparison_text(times)
