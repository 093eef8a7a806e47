"""Block-interleaved A/B, end to end in one process: fake workers on a fake machine whose speed drifts.

The workers answer the real protocol (prepare, block, finish) through the real `execute.prepare_case`,
timed by a fake timer on a shared fake clock, so the controller's turn order, shared loop counts, sequential
stopping, failure handling and reports are all the real code; only processes and hardware are fake.
"""

import math

import numpy as np
import pytest
from fakes import FakeBackend, FakeClock, FakeEvent, FakeTimer, fake_torch

from benchbench.analysis import blocks
from benchbench.analysis.gate import Policy, gate
from benchbench.analysis.sequential import Plan
from benchbench.measure.engine import Budget
from benchbench.model.report import CaseKey, load
from benchbench.run import interleave
from benchbench.run import session as sess
from benchbench.run.execute import Prepared, prepare_case
from benchbench.run.registry import load_source
from benchbench.run.runner import Interrupted, Side

SUITE = '''
from benchbench import Case, benchmark

@benchmark(params={"n": [1, 2, 3]})
def op(ctx, n):
    return Case(lambda: None)
'''


class Machine:
    """One fake machine shared by every fake worker: a clock, a speed that swings by +-`drift` over
    `period` seconds, a per-process speed factor (log-normal, sd `per_process`), and the turns taken."""

    def __init__(self, drift=0.5, period=0.5, per_process=0.0, seed=0):
        self.clock = FakeClock()
        self.drift, self.period, self.per_process = drift, period, per_process
        self.rng = np.random.default_rng(seed)
        self.turns: list[tuple[str, str]] = []  # (side, case label) per timed block
        self.started: list[dict] = []  # each worker's environment
        self.fail_block: tuple[str, int] | None = None  # (side, n-th block of that side) raises
        self.interrupt_after: int | None = None  # KeyboardInterrupt at this many blocks

    def speed(self) -> float:
        return 1.0 + self.drift * math.sin(2 * math.pi * self.clock.t / self.period)


class FakeWorker:
    machine: Machine | None = None

    def __init__(self, log_dir, env=None, python=None, cwd=None, command_prefix=(), start_timeout=0.0, wait=True):
        self.env = dict(env or {})
        self.side = self.env["FAKE_SIDE"]
        self.work = float(self.env.get("FAKE_WORK", "1"))
        m = self.machine
        m.started.append(self.env)
        self.factor = math.exp(m.rng.normal(0, m.per_process)) if m.per_process else 1.0
        self.held: Prepared | None = None
        self.blocks = 0

    def wait_ready(self):
        pass

    def _per_call(self, i):
        return 1e-3 * self.work * self.factor * self.machine.speed()

    def run(self, request, timeout, on_event):
        m = self.machine
        op = request["op"]
        if op == "prepare":
            bench = load_source(request["source"]).benchmark(request["benchmark"])
            key = CaseKey.from_dict(request["key"])
            backend = FakeBackend(timer=FakeTimer(m.clock, self._per_call))
            self.held = prepare_case(bench, key, backend, clock=m.clock)
            cal = self.held.calibrate(Budget(**request["budget"]))
            return {"event": "prepared", "self_timed": False, "loops": cal.loops, "per_call_s": cal.per_call_s}
        if op == "block":
            self.blocks += 1
            m.turns.append((self.side, self.held.key.label))
            if m.interrupt_after is not None and len(m.turns) >= m.interrupt_after:
                raise KeyboardInterrupt
            if m.fail_block == (self.side, self.blocks):
                m.fail_block = None  # once: the replacement worker is healthy
                return {"event": "error", "error": "RuntimeError: boom"}
            return {"event": "block", "s": self.held.block(int(request["loops"]))}
        if op == "finish":
            result, self.held = self.held.result(), None
            return {"event": "result", "result": result.to_dict()}
        raise AssertionError(op)

    def close(self, kill=False):
        pass

    def log_tail(self, lines=20):
        return ""


QUICKISH = Budget(warmup_calls=2, warmup_min_s=0.0, warmup_max_s=0.05, block_min_s=0.005, min_samples=3,
                  max_samples=10, max_time_s=0.1, target_rel_ci=0.05, timeout_s=60)


@pytest.fixture
def run_ab_fake(tmp_path, monkeypatch):
    suite = tmp_path / "fake_suite.py"
    suite.write_text(SUITE)

    def run(machine, work=1.0, plan=None, budget_s=None, side_env=(), paths=False, threshold=0.05):
        monkeypatch.setattr(FakeWorker, "machine", machine)
        monkeypatch.setattr(interleave, "Worker", FakeWorker)
        session = sess.prepare(suite_paths=[str(suite)], backends=["cpu"], profile="quick", seed=3,
                               environment=False)
        session.budget = QUICKISH
        sides = [Side(name="baseline", env=(("FAKE_SIDE", "baseline"), *side_env)),
                 Side(name="current", env=(("FAKE_SIDE", "current"), ("FAKE_WORK", str(work))))]
        targets = [sess.Target(s, sess.new_report(session, "t", ["test"], s),
                               tmp_path / f"{s.name}.json" if paths else None) for s in sides]
        runner = interleave.Interleaved(session, targets, plan or Plan(min_rounds=3, max_rounds=8),
                                        lambda key: threshold, budget_s, clock=machine.clock)
        outcome = runner.run()
        return outcome, targets, runner
    return run


def test_a_ten_percent_slowdown_under_a_swinging_machine_is_decided_slower(run_ab_fake):
    """The machine's speed swings by +-50% within half a second; blocks taken in turns still see the
    current side's 10% more work, and the sequential rule calls every case slower, then stops."""
    outcome, targets, _ = run_ab_fake(Machine(drift=0.5, per_process=0.005, seed=1), work=1.10)
    assert outcome.stopped == "decided" and outcome.rounds < 8  # it stopped before the last look
    assert {lk.decision for lk in outcome.looks.values()} == {"slower"}
    assert all(1.07 < lk.ratio < 1.13 for lk in outcome.looks.values())
    result = gate(targets[0].report, targets[1].report, Policy(threshold=0.05), paired=True)
    assert result.verdict == "regression" and len(result.by_outcome("regression")) == 3


def test_a_a_is_decided_not_slower_and_the_gate_agrees_from_the_stored_reports(run_ab_fake, tmp_path):
    outcome, targets, _ = run_ab_fake(Machine(drift=0.5, per_process=0.005, seed=2), paths=True)
    assert outcome.stopped == "decided"
    assert {lk.decision for lk in outcome.looks.values()} == {"not-slower"}
    base, cur = load(tmp_path / "baseline.json"), load(tmp_path / "current.json")
    assert not base.partial and not cur.partial and cur.sequential == Plan(min_rounds=3, max_rounds=8).to_dict()
    result = gate(base, cur, Policy(threshold=0.05), paired=True)
    assert result.verdict == "pass"
    for row in result.pair.rows:  # the stored reports give the interval ab decided on
        lk = outcome.looks[row.key]
        assert (row.change.ci_low, row.change.ci_high) == pytest.approx((lk.low, lk.high))


def test_sides_take_turns_abba_with_the_first_side_alternating_by_round(run_ab_fake):
    machine = Machine(drift=0.0)
    outcome, targets, runner = run_ab_fake(machine, plan=Plan.fixed(2))
    assert outcome.rounds == 2
    per_case: dict[str, list[str]] = {}
    for side, label in machine.turns:
        per_case.setdefault(label, []).append(side)
    names = ["baseline", "current"]
    for st in runner.states:
        turns = per_case[st.case.key.label]
        per_round = len(turns) // 2
        for r in range(2):
            expected = [names[i] for i in blocks.turn_order(st.blocks, r % 2)] * st.windows
            assert turns[r * per_round:(r + 1) * per_round] == expected
    # the loop count is shared: both sides' samples of a case come from blocks of the same size
    for a, b in zip(targets[0].report.results, targets[1].report.results, strict=True):
        assert a.loops_per_sample == b.loops_per_sample and len(a.samples) == len(b.samples)
        assert [r["windows"] for r in a.rounds] == [runner.states[0].windows] * 2


class StarvedFirstPair(Machine):
    """A machine 40 times slower while the first process pair runs (another job had the cores)."""

    def speed(self):
        return 40.0 if len(self.started) <= 2 else 1.0


def test_a_first_round_starved_by_the_machine_leaves_no_thin_layout_behind(run_ab_fake):
    machine = StarvedFirstPair(drift=0.0)
    _, targets, runner = run_ab_fake(machine, plan=Plan.fixed(2))
    turns_per_round = {}
    for st in runner.states:
        label = st.case.key.label
        mine = sum(1 for _, lab in machine.turns if lab == label)
        # round 1 saw 40 ms calls: 6 windows x 2 blocks per side fit the quick profile's 1 s; round 2
        # saw 1 ms calls and got the full 6 x 8 with five calls per block
        turns_per_round[label] = mine
        assert (st.windows, st.blocks, st.loops) == (6, 8, 5)
        assert st.per_call_s == pytest.approx(1e-3)
    assert set(turns_per_round.values()) == {6 * 2 * 2 + 6 * 8 * 2}
    for result in targets[0].report.results:
        assert [r["loops"] for r in result.rounds] == [1, 5]


def test_calibration_keeps_the_largest_loop_count_and_the_quickest_round():
    st = interleave.CaseState(case=None)
    layout = interleave.Layout(windows=6, blocks=8, case_round_s=1.0)
    st.calibrate(layout, [1, 2], [0.040, 0.030])
    assert (st.loops, st.per_call_s, st.windows, st.blocks) == (2, 0.040, 3, 2)  # 80 ms blocks: 3 x 2 fit 1 s
    st.calibrate(layout, [4, 5], [0.002, 0.001])
    assert (st.loops, st.per_call_s, st.windows, st.blocks) == (5, 0.002, 6, 8)  # 10 ms blocks fit 6 x 8
    st.calibrate(layout, [1, 1], [0.050, 0.050])  # a slow round later: the quickest layout is kept
    assert (st.loops, st.per_call_s, st.windows, st.blocks) == (5, 0.002, 6, 8)


def test_each_pair_starts_both_sides_with_an_idle_policy_that_does_not_spin(run_ab_fake):
    machine = Machine(drift=0.0)
    _, _, runner = run_ab_fake(machine, plan=Plan.fixed(2))
    assert len(machine.started) == runner.workers_started == 4  # one pair per round serves every case
    assert all(env["OMP_WAIT_POLICY"] == "PASSIVE" for env in machine.started)
    machine = Machine(drift=0.0)
    run_ab_fake(machine, plan=Plan.fixed(2), side_env=(("OMP_WAIT_POLICY", "ACTIVE"),))
    assert {env["FAKE_SIDE"]: env["OMP_WAIT_POLICY"] for env in machine.started} == \
        {"baseline": "ACTIVE", "current": "PASSIVE"}


def test_undecided_cases_get_rounds_until_the_last_look_and_say_what_they_could_detect(run_ab_fake):
    """Per-process luck of 8% (sd of log speed per worker) and a true ratio right at the limit: no look can
    decide, every case runs to the plan's last look, and the gate is inconclusive with a stated MDE."""
    outcome, targets, _ = run_ab_fake(Machine(drift=0.2, per_process=0.08, seed=5), work=1.05,
                                      plan=Plan(min_rounds=3, max_rounds=6))
    assert outcome.stopped == "max-rounds" and outcome.rounds == 6
    assert set(outcome.rounds_of.values()) == {6}
    result = gate(targets[0].report, targets[1].report, Policy(threshold=0.05), paired=True)
    assert result.verdict == "inconclusive"
    assert all(row.mde is not None and row.mde > 0.05 for row in result.pair.rows)


def test_the_budget_stops_adding_rounds_after_the_first_look(run_ab_fake):
    outcome, _, _ = run_ab_fake(Machine(drift=0.2, per_process=0.08, seed=5), work=1.05,
                                plan=Plan(min_rounds=3, max_rounds=12), budget_s=1e-6)
    assert outcome.stopped == "budget" and outcome.rounds == 3


def test_a_side_that_fails_mid_case_fails_that_case_only_and_the_gate_calls_it_broke(run_ab_fake):
    machine = Machine(drift=0.0)
    machine.fail_block = ("current", 5)
    outcome, targets, runner = run_ab_fake(machine, plan=Plan.fixed(3))
    assert runner.workers_started == 3 * 2 + 1  # a pair per round, and the failed side's replacement
    cur = {r.key.label: r for r in targets[1].report.results}
    failed = [r for r in cur.values() if r.status == "failed"]
    assert len(failed) == 1 and "boom" in failed[0].reason
    assert targets[0].report.result(failed[0].key).ok  # the baseline side went on alone
    result = gate(targets[0].report, targets[1].report, Policy(), paired=True)
    assert result.verdict == "regression" and [f.row.verdict for f in result.by_outcome("regression")] == ["broke"]
    assert sum(1 for r in cur.values() if r.ok) == 2


def test_an_interrupt_leaves_both_reports_partial_and_valid(run_ab_fake, tmp_path):
    machine = Machine(drift=0.0)
    machine.interrupt_after = 150
    with pytest.raises(Interrupted) as info:
        run_ab_fake(machine, plan=Plan.fixed(3), paths=True)
    assert sorted(p.name for p in info.value.report_paths) == ["baseline.json", "current.json"]
    for name in ("baseline", "current"):
        report = load(tmp_path / f"{name}.json")
        assert report.partial and report.results  # what was measured before the interrupt is kept


def test_blocks_on_cuda_are_timed_by_device_events_through_the_backend():
    """A prepared case on a (fake) CUDA device: every block drains the stream, records two events and
    waits for the end event; the sample is the events' elapsed time per call."""
    from benchbench import benchmark
    from benchbench.measure import backends as bk

    torch_mod, syncs = fake_torch()
    cuda = bk._probe_cuda(torch_mod)

    @benchmark()
    def kernel(ctx):
        from benchbench import Case

        return Case(lambda: None)

    key = CaseKey.make("t", "kernel", {}, "cuda", None)
    prepared = prepare_case(kernel, key, cuda)
    assert isinstance(prepared, Prepared)
    prepared.calibrate(Budget(warmup_calls=1, warmup_min_s=0.0, warmup_max_s=0.0, block_min_s=0.0, min_samples=1,
                              max_samples=1, max_time_s=0.0, target_rel_ci=1.0, timeout_s=60))
    FakeEvent.log, syncs[:] = [], []
    assert prepared.block(5) == pytest.approx(2.5e-3 / 5)
    assert FakeEvent.log == ["record", "record", "event-sync"] and syncs == [("cuda", 0)]
    assert prepared.result().timing_method == "cuda-events"
