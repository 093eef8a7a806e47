"""memory.py: peak memory as a metric, its tolerance rule, in compare/gate/ab/history, and CUDA peaks through fakes."""

from dataclasses import replace

import numpy as np
import pytest
from fakes import FakeCudaAllocator
from test_compare import make_report

from benchbench import metrics
from benchbench.analysis.compare import compare
from benchbench.analysis.gate import gate, parse_rules
from benchbench.analysis.history import analyse
from benchbench.errors import UserError
from benchbench.metrics import memory
from benchbench.model.report import CaseKey, Report, Result
from benchbench.output.comparison import comparison_doc, comparison_text
from benchbench.output.gate import gate_doc, markdown_summary, terminal_text
from benchbench.output.history import history_text

KEY = CaseKey.make("ops", "matmul", {"n": 1024}, "cpu", "float32")
OTHER = CaseKey.make("ops", "add", {"n": 8}, "cpu", "float32")
MiB = 2**20


def peaked(key, peaks, kind="rss-peak", samples_per_round=5, time=1e-3, rng=None, created="2026-01-01"):
    """A timed result of len(peaks) rounds, round i peaking at peaks[i] bytes."""
    rng = rng or np.random.default_rng(0)
    rounds, samples = [], []
    for i, p in enumerate(peaks):
        xs = (time * np.exp(0.01 * rng.standard_normal(samples_per_round))).tolist()
        samples += xs
        rounds.append({"round": i, "n": len(xs), "loops": 1, "peak_memory_bytes": int(p)})
    return Result(key=key, status="ok", samples=samples, rounds=rounds, memory_kind=kind,
                  peak_memory_bytes=int(max(peaks)))


def jittered(rng, level, n=5, jitter=0.01):
    """Peaks of n rounds around `level`: a few pages' and allocator blocks' worth of jitter."""
    return (level * (1 + jitter * rng.standard_normal(n))).tolist()


# --- the rule ------------------------------------------------------------------------------------------
def test_within_the_tolerance_is_same_and_beyond_it_with_separate_rounds_is_worse():
    base = peaked(KEY, [1000 * MiB] * 3)
    assert memory.compare_results(KEY, base, peaked(KEY, [1040 * MiB] * 3)).verdict == "same"
    row = memory.compare_results(KEY, base, peaked(KEY, [1100 * MiB] * 3))
    assert row.verdict == "worse" and row.ratio == pytest.approx(1.1)
    assert "+100.0 MiB" in row.why and "50.0 MiB tolerance" in row.why
    assert memory.compare_results(KEY, base, peaked(KEY, [900 * MiB] * 3)).verdict == "better"


def test_the_absolute_floor_wins_for_small_peaks():
    base = peaked(KEY, [40 * MiB] * 3)
    assert memory.compare_results(KEY, base, peaked(KEY, [50 * MiB] * 3)).verdict == "same"  # +25%, but < 16 MiB
    assert memory.compare_results(KEY, base, peaked(KEY, [60 * MiB] * 3)).verdict == "worse"
    tight = {"memory_tolerance": 0.05, "memory_floor": 1 * MiB}
    assert memory.compare_results(KEY, base, peaked(KEY, [50 * MiB] * 3), tight).verdict == "worse"


def test_overlapping_rounds_beyond_the_tolerance_are_noisy():
    base = peaked(KEY, [1000 * MiB, 1000 * MiB, 1300 * MiB])
    assert memory.compare_results(KEY, base, peaked(KEY, [1200 * MiB, 1200 * MiB, 1200 * MiB])).verdict == "noisy"


def test_different_counters_or_one_side_only_are_incomparable_and_no_peaks_is_no_row():
    base = peaked(KEY, [1000 * MiB] * 2, kind="cuda-max-allocated")
    assert memory.compare_results(KEY, base, peaked(KEY, [1000 * MiB] * 2, kind="cuda-max-reserved")).verdict \
        == "incomparable"
    bare = Result(key=KEY, status="ok", samples=[1e-3])
    assert memory.compare_results(KEY, base, bare).verdict == "incomparable"
    assert memory.compare_results(KEY, bare, bare) is None


def test_memory_is_a_registered_metric_that_compares_beside_the_time():
    m = metrics.get("memory")
    assert m is memory.PEAK_MEMORY and m.rule == "tolerance" and m.unit == "bytes" and not m.runnable
    assert m in metrics.BESIDE_TIME
    with pytest.raises(UserError, match="unknown metric 'memroy'"):
        metrics.get("memroy")
    with pytest.raises(UserError, match="known: time, instructions"):
        metrics.runnable("memory")  # recorded by every timed run, not a run of its own


@pytest.mark.parametrize("text, expected", [("16MiB", 16 * MiB), ("512 KiB", 512 * 1024), ("1GiB", 2**30),
                                            (4096, 4096), ("0", 0)])
def test_floor_sizes(text, expected):
    assert memory.parse_floor(text) == expected


@pytest.mark.parametrize("text", ["lots", "-1MiB", "16 MB", True])
def test_bad_floor_sizes_are_one_line_errors(text):
    with pytest.raises(UserError, match="memory_floor"):
        memory.parse_floor(text)


# --- compare and gate ---------------------------------------------------------------------------------
def test_compare_shows_memory_rows_and_json_next_to_the_time():
    base = make_report([peaked(KEY, [1000 * MiB] * 3), peaked(OTHER, [100 * MiB] * 3)])
    cur = make_report([peaked(KEY, [1200 * MiB] * 3), peaked(OTHER, [100 * MiB] * 3)])
    comp = compare([base, cur], ["base", "cur"])
    rows = {r.key: r for r in comp.pairs[0].metric_rows}
    assert rows[KEY].verdict == "worse" and rows[OTHER].verdict == "same"
    text = comparison_text(comp)
    assert "cur peak memory: 1 worse, 1 same" in text
    assert "1000.0 MiB" in text and "1.2 GiB" in text
    doc = comparison_doc(comp)
    assert sorted(r["verdict"] for r in doc["metrics"]["cur"]) == ["same", "worse"]


def test_twenty_percent_more_memory_in_one_case_is_a_regression_every_time():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        base = make_report([peaked(KEY, jittered(rng, 800 * MiB), rng=rng), peaked(OTHER, jittered(rng, 80 * MiB),
                                                                                    rng=rng)])
        cur = make_report([peaked(KEY, jittered(rng, 960 * MiB), rng=rng), peaked(OTHER, jittered(rng, 80 * MiB),
                                                                                   rng=rng)])
        for paired in (False, True):  # gate on stored reports; ab's decision on its paired rounds
            result = gate(base, cur, paired=paired)
            assert result.verdict == "regression", (seed, paired)
            [bad] = [f for f in result.metric_findings if f.outcome == "regression"]
            assert bad.row.key == KEY and bad.row.metric == "memory"


def test_a_a_memory_decisions_give_no_false_regression_in_a_hundred():
    regressions = 0
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        level = rng.uniform(50, 2000) * MiB
        base = make_report([peaked(KEY, jittered(rng, level), rng=rng)])
        cur = make_report([peaked(KEY, jittered(rng, level), rng=rng)])
        regressions += sum(f.outcome == "regression" for f in gate(base, cur).metric_findings)
    assert regressions == 0


def test_gate_output_names_the_memory_regression():
    base = make_report([peaked(KEY, [1000 * MiB] * 3)])
    cur = make_report([peaked(KEY, [1300 * MiB] * 3)])
    result = gate(base, cur, names=("base", "cur"))
    assert result.verdict == "regression" and result.exit_code == 1
    assert "peak memory: 1 regression" in terminal_text(result)
    md = markdown_summary(result)
    assert "peak memory" in md and "+300.0 MiB" in md
    assert gate_doc(result)["gate"]["metric_cases"][0]["outcome"] == "regression"


def test_rules_set_the_memory_tolerance_per_case():
    base = make_report([peaked(KEY, [1000 * MiB] * 3), peaked(OTHER, [1000 * MiB] * 3)])
    cur = make_report([peaked(KEY, [1100 * MiB] * 3), peaked(OTHER, [1100 * MiB] * 3)])
    policy = parse_rules({"rules": [{"match": "ops/matmul*", "memory_tolerance": "20%"}]})
    result = gate(base, cur, policy)
    outcome = {f.row.key: f.outcome for f in result.metric_findings}
    assert outcome == {KEY: "ok", OTHER: "regression"}
    top = parse_rules({"memory_tolerance": "15%", "memory_floor": "1MiB"})
    assert gate(base, cur, top).verdict == "pass"


@pytest.mark.parametrize("doc, message", [
    ({"memory_tolerance": "lots"}, "memory_tolerance 'lots': expected a percentage"),
    ({"rules": [{"match": "x", "memory_floor": "big"}]}, "rule 1: memory_floor 'big'"),
    ({"memory_tolerance": "2000%"}, "below 1000%"),
])
def test_bad_memory_settings_are_one_line_user_errors(doc, message):
    with pytest.raises(UserError, match=message):
        parse_rules(doc, "rules.toml")


def test_a_definition_change_makes_memory_incomparable_too():
    base = make_report([peaked(KEY, [1000 * MiB] * 3)])
    cur = make_report([peaked(KEY, [1500 * MiB] * 3)])
    base.results[0].definition_hash, cur.results[0].definition_hash = "a", "b"
    result = gate(base, cur)
    [row] = result.comparison.pairs[0].metric_rows
    assert row.verdict == "incomparable" and "definition" in row.why
    assert all(f.outcome != "regression" for f in result.metric_findings)


# --- CUDA peaks through a fake allocator that resets and reads like torch.cuda --------------------------
def test_cuda_peak_tracking_resets_and_reads_like_the_real_api():
    alloc = FakeCudaAllocator()
    alloc.alloc(500 * MiB)  # setup: a model's weights, before the case's peak is reset
    alloc.alloc(300 * MiB)
    alloc.free(300 * MiB)
    alloc.reset_peak_memory_stats()
    assert alloc.max_memory_allocated() == 500 * MiB  # reset to what is live now, not to zero
    alloc.alloc(100 * MiB)
    alloc.free(100 * MiB)
    assert alloc.max_memory_allocated() == 600 * MiB
    assert alloc.max_memory_reserved() >= alloc.max_memory_allocated()


def test_a_case_that_allocates_twenty_percent_more_on_cuda_regresses():
    """End to end through the CUDA backend's reset/read and the gate, on the fake allocator."""
    from fakes import fake_torch

    from benchbench.measure import backends as bk

    def run_case(extra: float) -> Result:
        torch_mod, _ = fake_torch()
        backend = bk._probe_cuda(torch_mod)
        alloc = torch_mod.cuda.allocator
        peaks = []
        for _ in range(3):  # three rounds, each a fresh process: the allocator starts empty
            alloc.__init__()
            alloc.alloc(200 * MiB)  # setup (weights): before the reset, yet live during the case
            alloc.alloc(300 * MiB)
            alloc.free(300 * MiB)  # a setup temporary: its cached block must not count
            backend.reset_peak_memory()
            activations = int(400 * MiB * (1 + extra))
            alloc.alloc(activations)
            alloc.free(activations)
            peaks.append(backend.peak_memory()[0])
        return peaked(KEY, peaks, kind="cuda-max-allocated")

    base, cur = run_case(0.0), run_case(0.2)
    assert memory.round_peaks(base) == [600 * MiB] * 3
    assert memory.compare_results(KEY, base, run_case(0.0)).verdict == "same"
    assert gate(make_report([base]), make_report([cur])).verdict == "regression"


# --- history: a planted step in peak memory is a change point -------------------------------------------
def test_history_finds_a_planted_step_in_peak_memory():
    rng = np.random.default_rng(7)
    reports = []
    for i in range(24):
        level = (600 if i < 12 else 720) * MiB  # +20% from run 13 on; the time stays flat
        rep = make_report([peaked(KEY, jittered(rng, level, jitter=0.002), rng=rng)], run_id=f"run{i:02d}")
        rep.created_at = f"2026-01-{i + 1:02d}T00:00:00Z"
        reports.append(rep)
    hist = analyse(reports)
    by_metric = {s.metric: s for s in hist.series}
    assert set(by_metric) == {"time", "memory"}
    assert by_metric["time"].changes == ()
    [step] = by_metric["memory"].changes
    assert step.run.run_id == "run12" and step.ratio == pytest.approx(1.2, rel=0.01)
    assert "ops/matmul[n=1024] cpu float32 (peak memory)" in history_text(hist)


def test_reports_without_peaks_add_no_memory_series():
    reports = [make_report([Result(key=KEY, status="ok", samples=[1e-3, 1.1e-3])], run_id=f"r{i}") for i in range(3)]
    assert [s.metric for s in analyse(reports).series] == ["time"]


def test_memory_rows_are_not_made_for_instruction_counts():
    counted = [Result(key=KEY, status="ok", samples=[1e6, 1e6], timing_method="callgrind-instructions",
                      peak_memory_bytes=10 * MiB)]
    grown = [Result(key=KEY, status="ok", samples=[1e6, 1e6], timing_method="callgrind-instructions",
                    peak_memory_bytes=90 * MiB)]
    comp = compare([make_report(counted), make_report(grown)])
    assert comp.pairs[0].metric_rows == []


@pytest.mark.parametrize("counts_first", [False, True])
def test_a_key_counted_in_instructions_on_one_side_has_no_memory_row(counts_first):
    """Peaks beside a time and beside instruction counts measure different runs (Valgrind's): whichever side
    was counted, the key gets no memory row."""
    timed = peaked(KEY, [100 * MiB] * 3)
    counts = replace(peaked(KEY, [300 * MiB] * 3), timing_method="callgrind-instructions")
    pair = (counts, timed) if counts_first else (timed, counts)
    comp = compare([make_report([pair[0], peaked(OTHER, [100 * MiB] * 3)]),
                    make_report([pair[1], peaked(OTHER, [100 * MiB] * 3)])])
    assert [(r.key, r.verdict) for r in comp.pairs[0].metric_rows] == [(OTHER, "same")]


@pytest.mark.parametrize("failed_side", [0, 1])
def test_a_case_that_failed_on_one_side_has_no_memory_row(failed_side):
    """A failed case (its time row says so) may still carry the peaks of the rounds it ran; they are not a
    measurement of the case, so no memory row is made from them."""
    pair = [peaked(KEY, [100 * MiB] * 3), peaked(KEY, [300 * MiB] * 3)]
    pair[failed_side] = replace(pair[failed_side], status="failed")
    comp = compare([make_report([pair[0], peaked(OTHER, [100 * MiB] * 3)]),
                    make_report([pair[1], peaked(OTHER, [100 * MiB] * 3)])])
    assert {r.key: r.verdict for r in comp.pairs[0].rows}[KEY] in ("broke", "fixed")
    assert [r.key for r in comp.pairs[0].metric_rows] == [OTHER]


def test_report_round_trip_keeps_the_round_peaks(tmp_path):
    from benchbench.model.report import load, save

    rep = make_report([peaked(KEY, [1 * MiB, 2 * MiB, 3 * MiB])])
    save(rep, tmp_path / "r.json")
    back: Report = load(tmp_path / "r.json")
    assert memory.round_peaks(back.results[0]) == [1 * MiB, 2 * MiB, 3 * MiB]


# --- the CPU: the growth over the case, not the whole process ------------------------------------------
def grown_result(key, peaks, baselines):
    r = peaked(key, peaks)
    for record, b in zip(r.rounds, baselines, strict=True):
        record["metrics"] = {"memory_baseline_bytes": b}
    r.metrics["memory_baseline_bytes"] = float(np.median(baselines))
    return r


def test_cpu_peaks_compare_as_the_growth_over_the_case():
    # processes that start 40 MiB apart (torch's own heap) but whose cases grow alike: same
    base = grown_result(KEY, [600 * MiB, 640 * MiB, 600 * MiB], [500 * MiB, 540 * MiB, 500 * MiB])
    cur = grown_result(KEY, [640 * MiB, 600 * MiB, 640 * MiB], [540 * MiB, 500 * MiB, 540 * MiB])
    row = memory.compare_results(KEY, base, cur)
    assert row.verdict == "same" and row.base == row.other == 100 * MiB
    bigger = grown_result(KEY, [660 * MiB] * 3, [540 * MiB] * 3)  # grows by 120 MiB: +20%
    assert memory.compare_results(KEY, base, bigger).verdict == "worse"
    assert memory.value(bigger) == 120 * MiB


def test_growth_against_a_whole_process_peak_is_incomparable():
    row = memory.compare_results(KEY, peaked(KEY, [600 * MiB] * 2), grown_result(KEY, [600 * MiB] * 2,
                                                                                  [500 * MiB] * 2))
    assert row.verdict == "incomparable" and "growth" in row.why


def test_the_cpu_backend_records_the_resident_set_at_the_reset():
    from benchbench.measure import backends as bk

    cpu = bk.CpuBackend.__new__(bk.CpuBackend)
    cpu.reset_peak_memory()
    baseline = cpu.memory_baseline()
    peak, kind = cpu.peak_memory()
    if kind != "rss-peak" or baseline is None:
        pytest.skip("no /proc/self/status here")
    block = bytearray(64 * MiB)  # touched: zero-filled pages are resident
    block[:: 4096] = b"x" * len(block[:: 4096])
    peak, _ = cpu.peak_memory()
    del block
    assert peak - baseline >= 60 * MiB


# --- the command line -----------------------------------------------------------------------------------
def test_gate_and_report_commands_show_a_memory_regression_and_its_rules(capsys, tmp_path):
    from benchbench.cli import main
    from benchbench.model.report import save

    save(make_report([peaked(KEY, [1000 * MiB] * 3), peaked(OTHER, [100 * MiB] * 3)]), tmp_path / "base.json")
    save(make_report([peaked(KEY, [1300 * MiB] * 3), peaked(OTHER, [100 * MiB] * 3)]), tmp_path / "cur.json")
    base, cur = str(tmp_path / "base.json"), str(tmp_path / "cur.json")
    assert main(["gate", "--baseline", base, cur]) == 1
    out = capsys.readouterr().out
    assert "peak memory: 1 regression" in out and "+300.0 MiB peak memory" in out
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nmatch = "ops/matmul*"\nmemory_tolerance = "40%"\n')
    assert main(["gate", "--baseline", base, cur, "--rules", str(rules)]) == 0
    capsys.readouterr()
    rules.write_text('memory_floor = "a lot"\n')
    assert main(["gate", "--baseline", base, cur, "--rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "memory_floor 'a lot'" in err and len(err.strip().splitlines()) == 1
    page = tmp_path / "page.html"
    assert main(["report", base, cur, "--html", str(page)]) == 0
    assert ">Peak memory<" in page.read_text() and "Peak memory regresses when" in page.read_text()


def test_the_cpu_backend_sees_temporaries_that_earlier_calls_left_in_the_heap():
    from benchbench.measure import backends as bk

    cpu = bk.CpuBackend.__new__(bk.CpuBackend)

    def call():
        block = bytearray(8 * MiB)  # zero-filled: every page touched
        return len(block)

    for _ in range(3):  # the first call and warm-up: the freed block stays in the heap, resident
        call()
    cpu.reset_peak_memory()
    baseline = cpu.memory_baseline()
    if baseline is None:
        pytest.skip("no /proc/self/status here")
    call()
    assert cpu.peak_memory()[0] - baseline >= 7 * MiB


def test_a_case_skipped_for_memory_rows_does_not_end_the_rows_after_it():
    """OTHER sorts before KEY and is new in the current report (no pair): KEY's memory row still comes."""
    base = make_report([peaked(KEY, [100 * MiB] * 3)])
    cur = make_report([peaked(OTHER, [100 * MiB] * 3), peaked(KEY, [150 * MiB] * 3)])
    comp = compare([base, cur])
    assert [r.key for r in comp.pairs[0].rows] == [OTHER, KEY]
    assert [(r.key, r.verdict) for r in comp.pairs[0].metric_rows] == [(KEY, "worse")]


def test_memory_rows_of_a_case_whose_time_is_incomparable_say_why():
    """The time's reasons become the memory row's, joined; a memory row incomparable on its own terms keeps
    its own reason."""
    base = peaked(KEY, [100 * MiB] * 3)
    changed = replace(peaked(KEY, [150 * MiB] * 3), definition_hash="sha256:new", world_size=4)
    base = replace(base, definition_hash="sha256:old", world_size=2)
    [row] = compare([make_report([base]), make_report([changed])]).pairs[0].metric_rows
    assert (row.verdict, row.why) == ("incomparable", "benchmark definition changed; world size 2 vs 4")
    other_counter = replace(changed, memory_kind="cuda-allocated")
    [row] = compare([make_report([base]), make_report([other_counter])]).pairs[0].metric_rows
    assert (row.verdict, row.why) == ("incomparable", "different memory counters: rss-peak vs cuda-allocated")
