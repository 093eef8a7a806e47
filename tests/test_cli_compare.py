"""The compare, gate, show and export commands end to end: formats, exit codes, bad inputs, real runs on this CPU."""

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import run_cli

from benchbench.cli import main
from benchbench.commands import gate as gate_command

DATA = Path(__file__).parent / "data"
PB_BASE, PB_CURRENT, PB_NODATA = (str(DATA / f"pytest_benchmark_{n}.json") for n in ("base", "current", "nodata"))
GOLDEN = str(DATA / "report_v1.json")


def cli(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# --- compare ------------------------------------------------------------------------------------------------
def test_compare_table_of_three_reports(capsys):
    rc, out, err = cli(capsys, "compare", PB_BASE, PB_CURRENT, PB_NODATA)
    assert rc == 0, err
    header = out.splitlines()[0]
    for column in ("pytest_benchmark_base", "ratio (pytest_benchmark_current)", "verdict (pytest_benchmark_nodata)"):
        assert column in header
    assert "strings/test_join cpu" in out and "no-samples" in out
    assert "pytest_benchmark_nodata vs pytest_benchmark_base: geometric mean time ratio" in out


@pytest.mark.parametrize("fmt", ["markdown", "csv", "json"])
def test_compare_formats(capsys, fmt, tmp_path):
    rc, out, err = cli(capsys, "compare", PB_BASE, PB_CURRENT, "--format", fmt)
    assert rc == 0, err
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert len(rows) == 3 and {r["verdict"] for r in rows} <= {"faster", "slower", "same", "noisy"}
    elif fmt == "json":
        assert len(json.loads(out)["rows"]) == 3
    else:
        assert out.startswith("| case")
    rc, _, err = cli(capsys, "compare", PB_BASE, PB_CURRENT, "--format", fmt, "-o", str(tmp_path / "c.out"))
    assert rc == 0 and (tmp_path / "c.out").read_text().strip() == out.strip()


def test_compare_with_instruction_counts_names_where_time_and_counts_disagree(capsys, tmp_path):
    from test_compare import make_report, result

    from benchbench.model.report import CaseKey, save

    flat, more = CaseKey.make("s", "flat_time"), CaseKey.make("s", "agree")
    times = [1e-3 * (1 + 0.001 * (i % 5)) for i in range(30)]
    paths = {}
    for name, t_factor, c_value in (("base", 1.0, 1000.0), ("cur", 1.0, 1030.0)):
        save(make_report([result(flat, [t * t_factor for t in times], timing_method="perf_counter"),
                          result(more, times, timing_method="perf_counter")]), tmp_path / f"{name}.json")
        save(make_report([result(flat, [c_value] * 3, timing_method="callgrind-instructions"),
                          result(more, [1000.0] * 3, timing_method="callgrind-instructions")]),
             tmp_path / f"{name}-instr.json")
        paths[name] = (str(tmp_path / f"{name}.json"), str(tmp_path / f"{name}-instr.json"))
    args = ["compare", paths["base"][0], paths["cur"][0], "--instructions", paths["base"][1], paths["cur"][1]]
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    assert "time and instruction counts disagree:" in out
    (line,) = [x for x in out.splitlines() if "but time flat" in x]
    assert flat.label in line and "instructions up (+3.0%)" in line and more.label not in line
    rc, out, err = cli(capsys, *args, "--format", "json")
    doc = json.loads(out)
    assert [d["case"] for d in doc["disagreements"]] == [flat.label] and doc["disagreements"][0]["kind"] == \
        "instructions-only"
    assert len(doc["time"]["rows"]) == 2 and len(doc["instructions"]["rows"]) == 2
    assert cli(capsys, *args, "--format", "csv")[0] == 2  # one comparison per csv: a one-line error


# --- gate ---------------------------------------------------------------------------------------------------
def test_tests_never_write_to_the_ci_job_summary():
    """Under GitHub Actions GITHUB_STEP_SUMMARY is set: conftest clears it, so gates here cannot append to it."""
    import os

    assert "GITHUB_STEP_SUMMARY" not in os.environ


def test_gate_on_real_pytest_benchmark_files(capsys, tmp_path):
    summary = tmp_path / "summary.md"
    rc, out, err = cli(capsys, "gate", "--baseline", PB_BASE, PB_CURRENT, "--summary", str(summary))
    assert rc in (0, 1, 3), err
    verdict = {0: "PASS", 1: "REGRESSION", 3: "INCONCLUSIVE"}[rc]
    assert out.splitlines()[-1].startswith(f"gate: {verdict}:")
    assert summary.read_text().startswith("### benchbench gate: ") and verdict in summary.read_text().splitlines()[0]
    rc, out, _ = cli(capsys, "gate", "--baseline", PB_CURRENT, PB_CURRENT)
    assert rc == 0 and out.splitlines()[-1] == "gate: PASS: 0 regressions, 0 inconclusive, 3 ok (exit 0)"


def test_gate_json_and_rules_file(capsys, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('noisy = "ignore"\n[[rules]]\nmatch = "*"\nignore = true\nreason = "just looking"\n')
    rc, out, err = cli(capsys, "gate", "-b", PB_BASE, PB_NODATA, "--rules", str(rules), "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["gate"]["verdict"] == "pass"
    assert {c["outcome"] for c in doc["gate"]["cases"]} == {"ignored"}


def test_gate_without_raw_samples_never_claims_a_regression(capsys):
    rc, out, _ = cli(capsys, "gate", "--baseline", PB_BASE, PB_NODATA, "--json")
    cases = {c["case"]: c for c in json.loads(out)["gate"]["cases"]}
    join = cases["strings/test_join cpu"]
    assert join["verdict"] == "slower"  # about 2x by the imported statistics ...
    assert join["outcome"] == "inconclusive" and "--benchmark-save-data" in join["why"]  # ... but not proven
    assert rc == 3 and "regression" not in {c["outcome"] for c in cases.values()}


# --- show -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_show_reads_every_format_compare_reads(capsys, fmt):
    for path in (PB_BASE, PB_NODATA, GOLDEN):
        rc, out, err = cli(capsys, "show", path, "--format", fmt)
        assert rc == 0, err
    rc, out, _ = cli(capsys, "show", PB_BASE, "--format", fmt)
    assert "test_join" in out and "test_sum_squares" in out


# --- export -------------------------------------------------------------------------------------------------
def test_export_formats(capsys, tmp_path):
    rc, out, _ = cli(capsys, "export", GOLDEN, "--format", "csv")
    assert rc == 0 and out.startswith("suite,benchmark,params")
    rc, out, _ = cli(capsys, "export", GOLDEN, "--format", "markdown")
    assert rc == 0 and out.startswith("| case")
    rc, _, _ = cli(capsys, "export", PB_BASE, "--format", "benchbench", "-o", str(tmp_path / "bb.json"))
    assert rc == 0
    rc, out, _ = cli(capsys, "gate", "--baseline", PB_BASE, str(tmp_path / "bb.json"))
    assert rc == 0, out  # the converted report is the same data


def test_export_to_pytest_benchmark_and_gate_it_back(capsys, tmp_path):
    out_path = tmp_path / "pb.json"
    rc, _, err = cli(capsys, "export", PB_CURRENT, "--format", "pytest-benchmark", "-o", str(out_path))
    assert rc == 0, err
    rc, out, _ = cli(capsys, "compare", PB_CURRENT, str(out_path), "--format", "json")
    rows = json.loads(out)["rows"]
    assert rc == 0 and all(r["ratio"] == 1.0 and r["p_value"] == 1.0 for r in rows)


# --- bad inputs ---------------------------------------------------------------------------------------------
def bad_inputs(tmp_path):
    (tmp_path / "other.json").write_text('{"hello": "world"}')
    (tmp_path / "bad.toml").write_text("fail_on = [\n")
    (tmp_path / "typo.toml").write_text('treshold = "5%"\n')
    (tmp_path / "failed.json").write_text(json.dumps({**json.loads(Path(GOLDEN).read_text()), "results": []}))
    return [
        (["compare", PB_BASE, str(tmp_path / "nope.json")], "nope.json: no such file"),
        (["compare", PB_BASE, str(tmp_path / "other.json")], "neither a benchbench report"),
        (["compare", PB_BASE, GOLDEN], "no results in common"),
        (["compare", PB_BASE], "at least two reports"),
        (["compare", PB_BASE, PB_CURRENT, "--threshold", "5"], "--threshold '5': expected a percentage"),
        (["gate", "--baseline", PB_BASE, GOLDEN], "no results in common"),
        (["gate", "--baseline", str(tmp_path / "nope.json"), PB_BASE], "no such file"),
        (["gate", "--baseline", PB_BASE, PB_CURRENT, "--fail-on", "mean:5%"], "only the median"),
        (["gate", "--baseline", PB_BASE, PB_CURRENT, "--alpha", "x"], "--alpha 'x'"),
        (["gate", "--baseline", PB_BASE, PB_CURRENT, "--rules", str(tmp_path / "bad.toml")], "not valid TOML"),
        (["gate", "--baseline", PB_BASE, PB_CURRENT, "--rules", str(tmp_path / "typo.toml")], "unknown key 'treshold'"),
        (["gate", PB_CURRENT], "required: --baseline"),
        (["export", str(tmp_path / "failed.json"), "--format", "pytest-benchmark"], "no ok results"),
        (["export", PB_BASE, "--format", "xml"], "invalid choice"),
    ]


def test_bad_inputs_are_one_line_errors_with_exit_2(tmp_path, capsys):
    for args, message in bad_inputs(tmp_path):
        try:
            rc = main(args)
        except SystemExit as exc:  # argparse's own errors
            rc = exc.code
        _, err = capsys.readouterr()
        assert rc == 2, (args, err)
        assert message in err, (args, err)
        assert len(err.strip().splitlines()) == 1, (args, err)


def test_bad_input_through_the_real_entry_point(tmp_path):
    proc = run_cli("gate", "--baseline", str(tmp_path / "missing.json"), PB_CURRENT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"benchbench: error: {tmp_path / 'missing.json'}: no such file"]


def test_an_old_single_round_report_still_loads_and_compares_with_the_sample_rule(capsys):
    rc, out, err = cli(capsys, "gate", "--baseline", GOLDEN, GOLDEN, "--json")
    assert rc == 3, err  # a handful of widely spread samples: identical, yet too few to rule out +5%
    doc = json.loads(out)
    assert doc["gate"]["paired"] is False and {c["cause"] for c in doc["gate"]["cases"]} == {"noisy"}
    timed = [r for r in doc["rows"] if r["ratio"] is not None]
    assert timed and all(r["unit"] == "sample" and "single-round" in r["flags"] and r["mde"] > 0 for r in timed)
    rc, out, err = cli(capsys, "compare", GOLDEN, str(DATA / "report_v2.json"))
    assert rc == 0, err
    assert any(line.startswith("case") and "can detect" in line for line in out.splitlines())


# --- real runs on this CPU ----------------------------------------------------------------------------------
# A benchmark that sleeps: what it measures is the harness and the gate, not this (shared, noisy) machine's
# speed. The slowdown is injected through the environment, which worker processes inherit; the benchmark's
# source, hence its definition hash, is the same in every run.
NAP_SUITE = """
import os
import time

from benchbench import Case, benchmark

SUITE = "e2e"


@benchmark(params={"ms": [2]})
def nap(ctx, ms):
    seconds = ms / 1000 * float(os.environ.get("BENCHBENCH_E2E_SLOWDOWN", "1"))
    return Case(lambda: time.sleep(seconds))
"""


STEADY_CANARY = {"python_loop_s": 1e-5, "torch_dispatch_s": 1e-6}


def _run(capsys, suite, out, monkeypatch, slowdown=None):
    # A sleep does not slow down with the machine; the canary does, and on a busy machine it would
    # (rightly) make these verdicts inconclusive. This test is about the harness: pin the canary.
    monkeypatch.setattr("benchbench.run.session._canary", lambda: dict(STEADY_CANARY))
    if slowdown:
        monkeypatch.setenv("BENCHBENCH_E2E_SLOWDOWN", str(slowdown))
    else:
        monkeypatch.delenv("BENCHBENCH_E2E_SLOWDOWN", raising=False)
    rc = main(["run", "--suite-path", str(suite), "--profile", "quick", "--backend", "cpu", "-q", "-o", str(out)])
    capsys.readouterr()
    assert rc == 0


@pytest.mark.slow
def test_run_twice_gate_passes_then_an_injected_slowdown_regresses_and_rerun_clears_it(write_suite, tmp_path, capsys, monkeypatch):
    suite = write_suite(NAP_SUITE, "nap.py")
    for name, slowdown in (("base", None), ("again", None), ("slow", 4)):
        _run(capsys, suite, tmp_path / f"{name}.json", monkeypatch, slowdown)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # Threshold 50%: a sleep's wake-up jitter on a loaded machine must not decide this test; 4x must.
    rc, out, err = cli(capsys, "gate", "--baseline", str(tmp_path / "base.json"), str(tmp_path / "again.json"),
                       "--fail-on", "median:50%")
    assert rc == 0, out + err
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    rc, out, err = cli(capsys, "gate", "--baseline", str(tmp_path / "base.json"), str(tmp_path / "slow.json"),
                       "--fail-on", "median:50%", "--summary", str(tmp_path / "summary.md"))
    assert rc == 1, out + err
    assert "e2e/nap[ms=2] cpu" in out and out.splitlines()[-1].startswith("gate: REGRESSION: 1 regression")
    md = (tmp_path / "summary.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "### benchbench gate: ❌ REGRESSION: 1 regression, 0 inconclusive, 0 ok"
    row = next(line for line in lines if line.startswith("| ❌"))
    assert "e2e/nap[ms=2] cpu" in row and "slower" in row and "ms ±" in row
    assert "`base`" in md and "`slow`" in md and "geometric mean time ratio" in md
    assert step.read_text().strip() == md.strip()
    # --rerun: the slowdown was transient (gone now). Re-measuring adds rounds to the suspect instead of
    # replacing its samples, so half its rounds are slow and half are not: no longer a regression.
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    monkeypatch.delenv("BENCHBENCH_E2E_SLOWDOWN", raising=False)
    args = ["gate", "--baseline", str(tmp_path / "base.json"), str(tmp_path / "slow.json"), "--fail-on", "median:50%"]
    rc, out, err = cli(capsys, *args, "--rerun", "--suite-path", str(suite), "-q")
    assert rc in (0, 3), out + err
    assert "measured 1 suspected regression in 3 more rounds" in err
    rerun = json.loads((tmp_path / "slow.rerun.json").read_text())
    assert len(rerun["results"]) == 1 and not rerun["partial"] and "--rerun" in rerun["command"]
    rounds = rerun["results"][0]["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2, 3, 4, 5]  # the slow rounds are kept, three more added
    assert len(rerun["rounds"]) == 6
    rc2, _, _ = cli(capsys, "gate", "--baseline", str(tmp_path / "base.json"), str(tmp_path / "slow.rerun.json"),
                    "--fail-on", "median:50%")
    assert rc2 == rc  # the written report is what the gate decided on


def test_gate_summary_is_written_and_appended_to_github_step_summary(tmp_path, monkeypatch):
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    written = gate_command.write_summary("## one", tmp_path / "out" / "summary.md")
    gate_command.write_summary("## two", None)
    assert (tmp_path / "out" / "summary.md").read_text() == "## one"
    assert step.read_text() == "earlier step\n## one\n## two\n"
    assert written == [tmp_path / "out" / "summary.md", step]
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    assert gate_command.write_summary("x", None) == []


@pytest.mark.parametrize("argv", [
    ["compare", "{a}", "{b}", "-o", "{b}"],
    ["compare", "{a}", "{b}", "--output", "{dir}/../{dirname}/b.json"],
    ["export", "{b}", "--format", "benchbench", "-o", "{b}"],
    ["report", "{a}", "{b}", "--html", "{a}"],
    ["gate", "{b}", "--baseline", "{a}", "--summary", "{a}"],
])
def test_an_output_never_overwrites_an_input(capsys, tmp_path, argv):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(Path(PB_BASE).read_text())
    b.write_text(Path(PB_CURRENT).read_text())
    before = (a.read_bytes(), b.read_bytes())
    fill = {"a": str(a), "b": str(b), "dir": str(tmp_path), "dirname": tmp_path.name}
    rc, out, err = cli(capsys, *(x.format(**fill) for x in argv))
    assert rc == 2 and "is one of the inputs" in err and len(err.strip().splitlines()) == 1, err
    assert (a.read_bytes(), b.read_bytes()) == before


def test_history_output_into_its_own_folder_is_refused(capsys, tmp_path):
    (tmp_path / "r.json").write_text(Path(GOLDEN).read_text())
    rc, _, err = cli(capsys, "history", str(tmp_path), "-o", str(tmp_path / "r.json"))
    assert rc == 2 and "is one of the inputs" in err
