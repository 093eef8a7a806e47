import random

import pytest
from fakes import FakeClock, FakeTimer

from benchbench.errors import UserError
from benchbench.measure.engine import PROFILES, Budget, budget_for, measure

BUDGET = Budget(warmup_calls=3, warmup_min_s=0.01, warmup_max_s=1.0, block_min_s=0.001, min_samples=10,
                max_samples=100, max_time_s=1.0, target_rel_ci=0.01, timeout_s=60)


def run(per_call, budget=BUDGET, overhead=0.0, resolution=1e-9):
    clock = FakeClock()
    timer = FakeTimer(clock, per_call, overhead=overhead, resolution=resolution)
    return measure(lambda: None, timer, budget, clock=clock), timer


def test_warmup_waits_until_slow_first_calls_are_behind():
    # early calls are up to 10x slower (caches, allocator, lazy init) and settle towards 1 ms
    m, timer = run(lambda i: 0.001 + 0.009 * 0.9**i)
    assert m.warmup_calls >= 30
    assert all(s == pytest.approx(0.001, rel=0.03) for s in m.samples)


def test_warmup_honours_minimum_calls_and_time():
    m, _ = run(lambda i: 1e-4)
    assert m.warmup_calls >= 100  # 0.01 s at 0.1 ms per call
    assert m.warmup_s >= BUDGET.warmup_min_s
    m, _ = run(lambda i: 0.5)  # slow calls: the minimum count still applies
    assert m.warmup_calls >= BUDGET.warmup_calls


def test_warmup_gives_up_at_its_maximum_time():
    budget = Budget(**{**BUDGET.to_dict(), "warmup_max_s": 0.03})
    m, _ = run(lambda i: 0.01 / (1 + i), budget=budget)  # still getting faster when time is up
    assert m.warmup_s == pytest.approx(0.03, abs=0.001)


def test_calibration_makes_blocks_long_against_resolution():
    m, timer = run(lambda i: 1e-6)
    assert m.loops == 1000  # 1 ms block / 1 us per call
    assert m.block_s >= BUDGET.block_min_s * 0.999
    # a coarse timer forces longer blocks: 1000 ticks of 10 us = 10 ms
    m, _ = run(lambda i: 1e-6, resolution=1e-5)
    assert m.loops == 10000


def test_calibration_accounts_for_sync_overhead():
    m, _ = run(lambda i: 1e-6, overhead=1e-4)  # 100 us per block to sync: blocks >= 100x that
    assert m.loops == 10000
    assert m.overhead_s == pytest.approx(1e-4)


def test_stops_early_when_precise():
    m, _ = run(lambda i: 0.001)
    assert m.stopped == "ci"
    assert len(m.samples) == BUDGET.min_samples


def test_noisy_case_runs_to_its_budget_and_keeps_every_sample():
    rng = random.Random(7)
    m, timer = run(lambda i: 0.001 * rng.lognormvariate(0, 0.5))
    assert m.stopped in ("budget", "max-samples")
    sampling_blocks = [b for b in timer.blocks if b == m.loops][-len(m.samples):]
    assert len(m.samples) == len(sampling_blocks)
    assert len(m.samples) > BUDGET.min_samples


def test_max_samples_bounds_a_fast_noisy_case():
    rng = random.Random(3)
    budget = Budget(**{**BUDGET.to_dict(), "max_time_s": 1e9})
    m, _ = run(lambda i: 1e-5 * rng.lognormvariate(0, 1.0), budget=budget)
    assert m.stopped == "max-samples"
    assert len(m.samples) == budget.max_samples


def test_profiles_are_ordered_and_unknown_is_a_user_error():
    q, d, f = PROFILES["quick"], PROFILES["default"], PROFILES["full"]
    assert q.budget.max_time_s < d.budget.max_time_s < f.budget.max_time_s
    assert q.budget.min_samples <= d.budget.min_samples <= f.budget.min_samples
    assert q.rounds < d.rounds < f.rounds
    assert (q.larger, d.larger, f.larger) == ("default", "full", None)
    with pytest.raises(UserError, match="unknown profile"):
        budget_for("fastest")
