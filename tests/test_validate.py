import json
import math
import random

import pytest
from conftest import run_cli

from benchbench.measure.validate import (
    TOLERANCE,
    RatioInterval,
    clock_resolution,
    judge,
    paired_ratio,
    plain_loop,
    summarize_op,
)


def _synthetic_groups(rng, true_ratio, processes=5, rounds=3, between=0.02, within=0.01):
    """Per-process lists of paired ratios: a per-process offset shared by its rounds, plus round noise."""
    groups = []
    for _ in range(processes):
        offset = rng.gauss(0, between)
        groups.append([true_ratio * math.exp(offset + rng.gauss(0, within)) for _ in range(rounds)])
    return groups


def test_paired_ratio_interval_covers_the_true_ratio_at_its_nominal_rate():
    rng = random.Random(7)
    trials = 400
    covered = sum(iv.low <= 0.97 <= iv.high for iv in (paired_ratio(_synthetic_groups(rng, 0.97))
                                                        for _ in range(trials)))
    assert 0.92 * trials <= covered <= 0.98 * trials  # 95% nominal


def test_rounds_of_one_process_are_not_independent_units():
    # Treating all 15 rounds as independent would ignore the per-process offsets: its interval
    # covers far less often than 95%. The process-level interval keeps its nominal rate.
    rng = random.Random(11)
    naive = proper = 0
    for _ in range(300):
        groups = _synthetic_groups(rng, 1.0, between=0.03, within=0.005)
        proper += paired_ratio(groups).low <= 1.0 <= paired_ratio(groups).high
        flat = paired_ratio([[r for g in groups for r in g]])  # one "process"
        naive += flat.low <= 1.0 <= flat.high
    assert proper >= 0.92 * 300
    assert naive < 0.75 * 300


def test_paired_ratio_is_the_geometric_mean_of_process_means():
    iv = paired_ratio([[1.0, 1.21], [1.1, 1.1]])  # process means in log space: log 1.1 both
    assert iv.ratio == pytest.approx(1.1)
    assert iv.units == 2 and iv.unit == "process"
    assert iv.low == pytest.approx(1.1) and iv.high == pytest.approx(1.1)  # processes agree exactly
    single = paired_ratio([[0.9, 1.1, 1.0]])
    assert single.unit == "round" and single.units == 3 and single.low < 1 < single.high
    lone = paired_ratio([[1.05]])
    assert lone.ratio == pytest.approx(1.05) and lone.high == math.inf
    with pytest.raises(ValueError):
        paired_ratio([[], [float("nan")]])


def _iv(ratio, half, spread=0.01):
    return RatioInterval(ratio, ratio - half, ratio + half, 5, "process", spread)


def test_judge_agrees_only_when_the_whole_interval_is_within_tolerance():
    assert TOLERANCE == 0.03
    assert judge("benchbench", _iv(1.01, 0.01), None, 1e-3, 0.001).status == "agrees"
    unclear = judge("torch", _iv(1.0, 0.05, spread=0.04), None, 1e-3, None)
    assert unclear.status == "unclear" and "holds 1" in unclear.text and "processes disagree by 4.0%" in unclear.text
    # significant but within tolerance in its estimate: not "off" either
    near = judge("torch", _iv(1.02, 0.015), None, 1e-3, None)
    assert near.status == "unclear" and "reads 2.0% above" in near.text


def test_judge_names_the_likely_reason_when_an_engine_is_off():
    tail = judge("benchbench", _iv(0.95, 0.01), _iv(0.995, 0.01), 1e-3, 0.001)
    assert tail.status == "off"
    assert tail.text.startswith("benchbench's engine reads 5.0% below the plain loop, beyond ±3%")
    assert "median" in tail.text and "slow tail" in tail.text
    short = judge("benchbench", _iv(1.08, 0.01), _iv(1.08, 0.01), 1e-3, 0.05)
    assert short.status == "off" and "timer's own cost" in short.text and "above" in short.text
    tiny = judge("torch", _iv(1.2, 0.02), _iv(1.2, 0.02), 2e-6, None)
    assert tiny.status == "off" and "2.00 us" in tiny.text and "torch.utils.benchmark" in tiny.text
    other = judge("torch", _iv(1.1, 0.02), _iv(1.1, 0.02), 1e-3, None)
    assert "do not explain" in other.text


class FakeDevice:
    """An asynchronous device: a call queues 1 ms of work; only synchronize() waits for it."""

    def __init__(self):
        self.now = 0.0
        self.pending = 0.0
        self.syncs = 0

    def clock(self):
        return self.now

    def call(self):
        self.now += 1e-6  # the launch itself
        self.pending += 1e-3

    def synchronize(self):
        self.syncs += 1
        self.now += self.pending
        self.pending = 0.0


def test_plain_loop_waits_for_the_device_and_divides_by_n():
    dev = FakeDevice()
    out = plain_loop(dev.call, dev.synchronize, seconds=0.2, clock=dev.clock)
    assert out["per_call_s"] == pytest.approx(1.001e-3)  # launch + queued work, not just the launch
    assert out["calls"] >= 190 and out["wall_s"] == pytest.approx(out["calls"] * 1.001e-3)
    assert dev.pending == 0.0


def _row(process, rnd, plain, ours, theirs, ours_mean=None):
    return {"process": process, "round": rnd, "plain": {"per_call_s": plain},
            "benchbench": {"median_s": ours, "mean_s": ours_mean or ours, "overhead_s": 1e-9, "block_s": 2e-3},
            "torch": {"median_s": theirs, "mean_s": theirs}}


def test_summarize_op_pairs_each_engine_with_the_plain_loop_of_its_own_round():
    rng = random.Random(3)
    rows = []
    for p in range(6):
        speed = 1 + 0.5 * rng.random()  # processes differ by up to 50%: pairing removes it
        for r in range(3):
            plain = 1e-3 * speed * (1 + 0.002 * rng.gauss(0, 1))
            rows.append(_row(p, r, plain, plain * 0.93, plain * 1.002, ours_mean=plain * 1.001))
    out = summarize_op("cpu", "op", rows)
    assert out["held"] and out["processes"] == 6 and out["rounds"] == 18
    ours, theirs = out["engines"]["benchbench"], out["engines"]["torch"]
    assert ours["ratio"]["ratio"] == pytest.approx(0.93, rel=0.003)
    assert ours["status"] == "off" and "slow tail" in ours["verdict"]
    assert theirs["status"] == "agrees" and theirs["ratio"]["low"] > 0.99
    assert not out["agrees"]


def test_validate_text_shows_both_intervals_the_verdicts_and_a_busy_machine():
    from benchbench.output.validate import validate_text

    rows = [_row(p, 0, 1e-3, 0.93e-3 * (1 + p / 1000), 1e-3 * (1 + p / 1000), ours_mean=1e-3) for p in range(5)]
    result = {"clock": {"declared_s": 1e-9, "observed_step_s": 2e-7},
              "backends": [{"backend": "cpu", "timing_method": "perf_counter", "timer_resolution_s": 1e-9,
                            "sync_cost_s": 2e-7}],
              "machine": {"cpus": 2, "torch_threads": 2, "load_start": 6.5, "load_end": 1.0},
              "processes": 5, "rounds": 1, "profile": "quick", "tolerance": TOLERANCE, "held_above_s": 10e-6,
              "ops": [summarize_op("cpu", "op A", rows)], "errors": [], "all_agree": False}
    text = validate_text(result)
    assert "load average 6.5 at the start, 1.0 at the end (busy" in text
    assert "0.932 [0.930, 0.934]" in text and "benchbench off, torch agrees" in text
    assert "- cpu op A: benchbench's engine reads 6.8% below the plain loop" in text
    assert "not every engine agrees" in text


def test_clock_resolution_is_observed():
    res = clock_resolution(samples=2000)
    assert res["declared_s"] > 0 and res["observed_step_s"] > 0


def test_validate_bad_arguments_are_one_line_errors():
    bad = run_cli("validate", "--ops", "no-such-op")
    assert bad.returncode == 2 and "no reference op matches" in bad.stderr and "Traceback" not in bad.stderr
    assert run_cli("validate", "--processes", "0").returncode == 2


@pytest.mark.slow
def test_validate_pairs_both_engines_with_the_loop_in_every_process():
    proc = run_cli("validate", "--json", "--processes", "2", "--rounds", "1", "--ops", "tiny", "--seed", "5",
                   "--backend", "cpu", check_rc=0)
    data = json.loads(proc.stdout)
    assert [b["backend"] for b in data["backends"]] == ["cpu"]
    assert data["backends"][0]["sync_cost_s"] > 0
    assert data["seed"] == 5 and data["errors"] == []
    assert data["machine"]["cpus"] >= 1 and data["machine"]["torch_threads"] >= 1
    assert sorted(r["process"] for r in data["samples"]) == [0, 1]
    (op,) = data["ops"]
    assert op["op"] == "tiny op (1-element add)" and op["processes"] == 2
    for engine in ("benchbench", "torch"):
        e = op["engines"][engine]
        assert e["median_s"] > 0 and e["status"] in ("agrees", "off", "unclear") and e["verdict"]
        ratios = [r[engine]["median_s"] / r["plain"]["per_call_s"] for r in data["samples"]]
        assert e["ratio"]["ratio"] == pytest.approx(math.exp(sum(map(math.log, ratios)) / 2))
    for row in data["samples"]:
        assert sorted(row["order"]) == ["benchbench", "plain", "torch"]
        assert row["plain"]["calls"] * row["plain"]["per_call_s"] == pytest.approx(row["plain"]["wall_s"])
    text = run_cli("validate", "--processes", "1", "--rounds", "1", "--ops", "tiny", check_rc=0).stdout
    assert "ratio [95% CI]" in text and "tiny op (1-element add)" in text


def test_a_hung_validation_worker_is_killed_at_the_timeout(monkeypatch):
    """The timeout bounds the whole wait: the worker prints a line and hangs with its output open."""
    import sys
    import time

    import psutil

    from benchbench.measure import validate

    pid_file = []
    code = "import os, time; print(os.getpid(), flush=True); time.sleep(120)"
    monkeypatch.setattr(validate, "_worker_command", lambda config: [sys.executable, "-c", code])
    monkeypatch.setattr(validate, "WORKER_TIMEOUT_S", 2)
    start = time.monotonic()
    error = validate._run_worker({}, pid_file.append)
    assert error == "validation worker timed out"
    assert time.monotonic() - start < 30  # the old reader waited for the end of its output: 120 s
    assert not pid_file  # a line that is not a row is not one
    hung = [p for p in psutil.Process().children() if "time.sleep(120)" in " ".join(p.cmdline())]
    assert not hung
