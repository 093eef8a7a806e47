"""The round loop (`session.measure`) with its workers faked: `Runner` is replaced by a script that answers
each case at once, and everything else, planning, side order, merging, ending cases, saving, is the real
code `run`, `gate --rerun` and `ab` use. Which side ran when, on which cases, in which order, is read
from the calls the loop made, not from the report it wrote."""

from __future__ import annotations

import json
import signal
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchbench.model.report import CaseKey, Result, load
from benchbench.run import session as sess
from benchbench.run.rounds import round_order, round_seed
from benchbench.run.runner import Interrupted, Side

SUITE = '''
import torch
from benchbench import Case, benchmark

@benchmark(params={"n": [1, 2, 3]})
def add(ctx, n):
    return Case(lambda: None)

@benchmark(rounds=1)
def costly(ctx):
    return Case(lambda: None)

@benchmark(backends=["cuda"])
def gpu_only(ctx):
    return Case(lambda: None)
'''


class ScriptedRunner:
    """Stands in for runner.Runner: every case 'takes' a value given by `answer`, without a worker.

    `answer(call, side, case) -> Result | BaseException` (call counts run_round calls from 0); an exception
    is raised from inside the round, as Ctrl-C would be while a worker runs."""

    calls: list[tuple[str, list[str]]]
    answer = None

    def __init__(self, budget, profile, progress=None, **options):
        self.closed = False
        self.args = (budget, profile, progress, options)
        self.labels: list[list[str]] = []  # the progress label of each case, per run_round call
        self.counters: list[tuple[int, int]] = []  # (cases done before the call, cases in all)
        ScriptedRunner.instances.append(self)

    def run_round(self, cases, side, label=None, counter=None):
        call = len(ScriptedRunner.calls)
        ScriptedRunner.calls.append((side.name, [c.key.label for c in cases]))
        self.labels.append([label(i, c) for i, c in enumerate(cases)])
        self.counters.append(counter)
        for case in cases:
            if case.skip:
                yield case, Result(key=case.key, status="skipped", reason=case.skip)
                continue
            out = ScriptedRunner.answer(call, side, case)
            if isinstance(out, BaseException):
                raise out
            yield case, out

    def close(self):
        self.closed = True


def ok(case, value: float = 1.0) -> Result:
    return Result(key=case.key, status="ok", samples=[value] * 5, loops_per_sample=1, timing_method="perf_counter",
                  definition_hash=case.bench.definition_hash)


@pytest.fixture
def scripted(monkeypatch):
    ScriptedRunner.calls, ScriptedRunner.instances = [], []
    ScriptedRunner.answer = staticmethod(lambda call, side, case: ok(case))
    monkeypatch.setattr(sess, "Runner", ScriptedRunner)
    return ScriptedRunner


@pytest.fixture
def session(write_suite):
    return sess.prepare(suite_paths=[str(write_suite(SUITE))], backends=["cpu"], profile="quick", rounds=4,
                        seed=7, environment=False)


def targets(session, *names, tmp_path=None):
    return [sess.Target(Side(name), sess.new_report(session, command=["test"]),
                        tmp_path / f"{name}.json" if tmp_path else None) for name in names]


def test_sides_alternate_abba_on_the_same_order_each_round(scripted, session):
    pair = targets(session, "baseline", "current")
    sess.measure(session, pair, canary=False)
    assert [side for side, _ in scripted.calls] == ["baseline", "current", "current", "baseline",
                                                    "baseline", "current", "current", "baseline"]
    once = {"costly", "gpu_only"}  # allowed one round; skipped in the first, which ends it
    for r in range(4):
        first, second = scripted.calls[2 * r][1], scripted.calls[2 * r + 1][1]
        assert first == second  # both sides visit the round's cases in the same order
        expected = [c.key.label for c in round_order(session.cases, session.seed, r)
                    if c.key.benchmark not in once or r == 0]
        assert first == expected
    assert len({tuple(labels) for _, labels in scripted.calls[2:]}) == 3  # each round its own shuffle
    assert {len(labels) for _, labels in scripted.calls[2:]} == {3}
    for t in pair:  # each report records its own side's rounds, seeds and start times
        assert [(rec["round"], rec["seed"], rec["side"]) for rec in t.report.rounds] == [
            (r, round_seed(7, r), t.side.name) for r in range(4)]
        assert all(rec["started_at"] <= rec["finished_at"] for rec in t.report.rounds)


def test_positions_are_each_rounds_place_of_the_case(scripted, session):
    (t,) = targets(session, "current")
    sess.measure(session, [t], canary=False)
    add1 = next(r for r in t.report.results if r.key.label == next(
        c.key.label for c in session.cases if c.key.params_dict == {"n": 1}))
    assert [rec["round"] for rec in add1.rounds] == [0, 1, 2, 3]
    assert [rec["position"] for rec in add1.rounds] == [
        [c.key for c in round_order(session.cases, 7, r)].index(add1.key) for r in range(4)]
    assert add1.n_rounds == 4 and len(add1.samples) == 20
    costly = next(r for r in t.report.results if r.key.benchmark == "costly")
    assert costly.ok and costly.n_rounds == 1  # its benchmark allows one round


def test_a_case_that_ends_is_never_run_again_and_keeps_its_earlier_rounds(scripted, session):
    victim = next(c for c in session.cases if c.key.params_dict == {"n": 2})

    def answer(call, side, case):
        if case.key == victim.key and call == 1:
            return Result(key=case.key, status="failed", reason="worker died (signal SIGSEGV)")
        return ok(case)

    scripted.answer = staticmethod(answer)
    (t,) = targets(session, "current")
    sess.measure(session, [t], canary=False)
    ran = [victim.key.label in labels for _, labels in scripted.calls]
    assert ran == [True, True, False, False]
    result = next(r for r in t.report.results if r.key == victim.key)
    assert result.status == "failed" and result.reason == "round 2: worker died (signal SIGSEGV)"
    assert len(result.samples) == 5  # round 1's samples kept
    skipped = next(r for r in t.report.results if r.key.benchmark == "gpu_only")
    assert skipped.status == "skipped"
    assert [victim.key.label in labels for _, labels in scripted.calls] == ran
    assert sum("gpu_only" in " ".join(labels) for _, labels in scripted.calls) == 1  # skipped once, then ended


def test_partial_is_cleared_on_completion(scripted, session, tmp_path):
    (t,) = targets(session, "current", tmp_path=tmp_path)
    seen = []
    sess.measure(session, [t], canary=False, on_result=lambda target, r: seen.append(load(target.path).partial))
    assert seen and all(seen)  # saved after every case, marked partial while running
    assert t.report.partial is False and load(t.path).partial is False
    assert load(t.path).finished_at is not None
    assert scripted.instances[0].closed


def test_an_interrupt_keeps_partial_and_the_rounds_before_it(scripted, session, tmp_path):
    def answer(call, side, case):
        return KeyboardInterrupt() if call == 2 else ok(case)

    scripted.answer = staticmethod(answer)
    pair = targets(session, "baseline", "current", tmp_path=tmp_path)
    with pytest.raises(Interrupted) as info:
        sess.measure(session, pair, canary=False)
    assert info.value.report_paths == [t.path for t in pair]
    for t in pair:
        saved = json.loads(t.path.read_text())
        assert saved["partial"] is True and saved["finished_at"] is not None
        add = [r for r in load(t.path).results if r.key.benchmark == "add"]
        assert len(add) == 3 and all(r.ok for r in add)
    # round 2 was cut short in its first side ("current", ABBA), so that side holds 2 round records
    assert [len(load(t.path).rounds) for t in pair] == [1, 2]
    assert scripted.instances[0].closed


def test_more_rounds_for_an_existing_report_continue_its_round_numbers(scripted, session, tmp_path):
    """gate --rerun: rounds are added to a report that already holds results."""
    victim = next(c for c in session.cases if c.key.params_dict == {"n": 3})
    (t,) = targets(session, "current", tmp_path=tmp_path)
    scripted.answer = staticmethod(lambda call, side, case: Result(key=case.key, status="timeout", reason="hung")
                                   if case.key == victim.key else ok(case))
    sess.measure(session, [t], rounds=1, canary=False)
    scripted.calls.clear()
    scripted.answer = staticmethod(lambda call, side, case: ok(case, 2.0))
    sess.measure(session, [t], rounds=2, canary=False)
    assert [rec["round"] for rec in t.report.rounds] == [0, 1, 2]
    assert all(victim.key.label not in labels for _, labels in scripted.calls)  # the timed-out case stays ended
    add1 = next(r for r in t.report.results if r.key.params_dict == {"n": 1})
    assert [rec["round"] for rec in add1.rounds] == [0, 1, 2] and add1.samples == [1.0] * 5 + [2.0] * 10
    assert next(r for r in t.report.results if r.key == victim.key).status == "timeout"
    assert load(t.path).partial is False


def test_run_measures_the_suites_into_one_report_saved_where_asked(scripted, write_suite, tmp_path):
    out = tmp_path / "r.json"
    report = sess.run(suite_paths=[str(write_suite(SUITE))], backends=["cpu"], profile="quick", rounds=2, seed=3,
                      label="mine", output=out, command=["bb", "run"], pattern="add")
    assert [side for side, _ in scripted.calls] == ["current", "current"]
    assert {r.key.benchmark for r in report.results} == {"add"} and len(report.results) == 3
    assert report.label == "mine" and report.command == ["bb", "run"] and report.profile == "quick"
    assert [rec["seed"] for rec in report.rounds] == [round_seed(3, 0), round_seed(3, 1)]
    saved = load(out)
    assert saved.run_id == report.run_id and not saved.partial and len(saved.results) == 3
    assert sess.run(suite_paths=[str(write_suite(SUITE))], backends=["cpu"], profile="quick", rounds=1,
                    pattern="costly").results[0].key.benchmark == "costly"  # no output: nothing saved


def test_default_path_names_the_time_host_and_label(monkeypatch, tmp_path):
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "box 1/é.lab")
    path = sess.default_path("my run/1", 1_700_000_000.25, str(tmp_path))
    assert path == tmp_path / "20231114T221320.250Z_box-1-é.lab_my-run-1.json"
    assert sess.default_path(None, 1_700_000_000.0, str(tmp_path)).name == "20231114T221320.000Z_box-1-é.lab.json"
    assert sess.default_path("a.b_c-d", 1_700_000_000.0, str(tmp_path)).name.endswith("_a.b_c-d.json")
    monkeypatch.setattr(socket, "gethostname", lambda: "h" * 50)
    assert sess.default_path(None, 1_700_000_000.0, str(tmp_path)).name == f"20231114T221320.000Z_{'h' * 40}.json"
    monkeypatch.setattr(socket, "gethostname", lambda: "")
    assert sess.default_path(None, 1_700_000_000.0, str(tmp_path)).name == "20231114T221320.000Z_host.json"
    # a name taken by a report or by ab's folder gets a counter, the first free one
    taken = tmp_path / "20231114T221320.000Z_host.json"
    taken.write_text("{}")
    (tmp_path / "20231114T221320.000Z_host-2").mkdir()
    assert sess.default_path(None, 1_700_000_000.0, str(tmp_path)).name == "20231114T221320.000Z_host-3.json"
    monkeypatch.chdir(tmp_path)
    assert sess.default_path(None, 1_700_000_000.0) == Path("reports") / "20231114T221320.000Z_host.json"


def test_each_suites_derive_hook_gets_that_suites_results_only(write_suite):
    hooked = write_suite('''
from benchbench import Case, benchmark

SEEN = []

@benchmark(params={"n": [1, 2]})
def one(ctx, n):
    return Case(lambda: None)

def derive(results):
    SEEN.append(sorted(r.key.label for r in results))
''', name="hooked.py")
    plain = write_suite(SUITE, name="plain.py")
    session = sess.prepare(suite_paths=[str(hooked), str(plain)], backends=["cpu"], profile="quick", rounds=1,
                           environment=False)
    results = [Result(key=c.key, status="ok", samples=[1.0]) for c in session.cases]
    results.append(Result(key=CaseKey.make("elsewhere", "x"), status="ok", samples=[1.0]))  # no such suite here
    session.derive(results)
    module = next(s for s in session.suites if s.name == "hooked").module
    assert module.SEEN == [sorted(c.key.label for c in session.cases if c.key.suite == "hooked")]
    assert len(module.SEEN[0]) == 2


def test_the_runner_gets_the_sessions_budget_profile_progress_and_worker_options(scripted, session):
    session.worker_env = {"OMP_NUM_THREADS": "1"}
    progress = object()
    sess.measure(session, targets(session, "current"), progress=progress, rounds=1, canary=False)
    (runner,) = scripted.instances
    assert runner.args == (session.budget, "quick", progress, {"worker_env": {"OMP_NUM_THREADS": "1"}})


def test_progress_labels_and_counts_cover_every_case_of_every_round_and_side(scripted, session):
    (t,) = targets(session, "current")
    sess.measure(session, [t], canary=False)
    (runner,) = scripted.instances
    n = len(session.cases)  # 3 add, costly (one round), gpu_only (skipped on the CPU, then ended)
    # before each call: every case of the earlier rounds, plus the ended ones this round leaves out
    assert runner.counters == [(0, 4 * n), (n + 2, 4 * n), (2 * n + 2, 4 * n), (3 * n + 2, 4 * n)]
    for r, (labels, (_, cases)) in enumerate(zip(runner.labels, scripted.calls, strict=True)):
        assert labels == [f"{label}  (round {r + 1}/4)" for label in cases]  # one side: no side named
    scripted.calls.clear()
    pair = targets(session, "baseline", "current")
    sess.measure(session, pair, rounds=2, canary=False)
    runner = scripted.instances[-1]
    assert runner.counters == [(0, 2 * 2 * n), (n, 2 * 2 * n), (2 * n + 2, 2 * 2 * n), (3 * n + 2, 2 * 2 * n)]
    assert [labels[0].split("  ")[1] for labels in runner.labels] == [
        "(round 1/2 baseline)", "(round 1/2 current)", "(round 2/2 current)", "(round 2/2 baseline)"]


def test_results_keep_the_plans_order_and_the_callback_sees_each_merged_result(scripted, session):
    (t,) = targets(session, "current")
    seen = []
    sess.measure(session, [t], rounds=2, canary=False, on_result=lambda target, r: seen.append((target, r)))
    assert [r.key for r in t.report.results] == [c.key for c in session.cases]  # not a round's shuffled order
    assert all(target is t for target, _ in seen) and len(seen) == len(session.cases) + 3
    last = {r.key: r for _, r in seen}
    assert [last[r.key] for r in t.report.results] == t.report.results  # the merged result, both rounds
    assert all(r.n_rounds == 2 for r in t.report.results if r.key.benchmark == "add")


def test_an_earlier_reports_results_come_first_and_stay(scripted, session):
    (t,) = targets(session, "current")
    elsewhere = Result(key=CaseKey.make("other", "kept"), status="ok", samples=[3.0])
    t.report.results = [elsewhere]  # measured before, in a case this session does not plan
    sess.measure(session, [t], rounds=1, canary=False)
    assert t.report.results[0] == elsewhere
    assert [r.key for r in t.report.results[1:]] == [c.key for c in session.cases]
    assert all("kept" not in " ".join(labels) for _, labels in scripted.calls)


def test_a_saved_report_is_written_before_the_first_case_and_after_each_round(scripted, session, tmp_path):
    (t,) = targets(session, "current", tmp_path=tmp_path)
    seen = []

    def answer(call, side, case):
        saved = load(t.path)
        seen.append((call, saved.partial, len(saved.rounds), "finished_at" in (saved.rounds or [{}])[-1]))
        return ok(case)

    scripted.answer = staticmethod(answer)
    sess.measure(session, [t], rounds=3, canary=False)
    firsts = {}
    for call, partial, n_rounds, finished in seen:
        firsts.setdefault(call, (partial, n_rounds, finished))
    # the first case of each call reads the file as the round before it left it: partial, that round closed
    assert firsts[0] == (True, 0, False)
    assert firsts[1] == (True, 1, True) and firsts[2] == (True, 2, True)


def test_the_canary_is_timed_at_the_start_before_each_round_and_at_the_end(scripted, session, monkeypatch):
    import benchbench.measure.canary

    timings = iter(range(1, 100))
    monkeypatch.setattr(benchbench.measure.canary, "measure_canary", lambda: {"python_s": float(next(timings))})
    pair = targets(session, "baseline", "current")
    pair[1].report.environment["canary"] = {"start": {"python_s": 0.5}}  # gate --rerun: its first one stays
    sess.measure(session, pair, rounds=2)
    assert pair[0].report.environment["canary"] == {"start": {"python_s": 1.0}, "end": {"python_s": 4.0}}
    assert pair[1].report.environment["canary"] == {"start": {"python_s": 0.5}, "end": {"python_s": 4.0}}
    for t in pair:  # both sides of a round share the timing taken before it
        assert [rec["canary"] for rec in t.report.rounds] == [{"python_s": 2.0}, {"python_s": 3.0}]


def test_a_failing_canary_is_recorded_as_none_and_no_canary_times_nothing(scripted, session, monkeypatch):
    import benchbench.measure.canary

    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("no torch today")

    monkeypatch.setattr(benchbench.measure.canary, "measure_canary", broken)
    (t,) = targets(session, "current")
    sess.measure(session, [t], rounds=1)
    assert t.report.environment["canary"] == {"start": None, "end": None} and len(calls) == 3
    assert t.report.rounds[0]["canary"] is None and t.report.partial is False
    (t,) = targets(session, "current")
    sess.measure(session, [t], rounds=2, canary=False)
    assert len(calls) == 3 and t.report.environment["canary"] == {}
    assert [rec["canary"] for rec in t.report.rounds] == [None, None]


@pytest.fixture
def metric_workers(monkeypatch):
    """The metric's worker options as a context that records being entered and left."""
    events = []

    @contextmanager
    def workers(env):
        events.append(("enter", dict(env)))
        try:
            yield {"worker_env": {**env, "FROM_METRIC": "1"}, "slowdown": 3.0}
        finally:
            events.append(("exit",))

    monkeypatch.setattr(sess.metrics, "runnable", lambda name: SimpleNamespace(workers=workers))
    return events


def test_the_metrics_worker_options_reach_the_runner_and_are_closed_after(scripted, session, metric_workers):
    session.worker_env = {"A": "1"}
    sess.measure(session, targets(session, "current"), rounds=1, canary=False)
    assert metric_workers == [("enter", {"A": "1"}), ("exit",)]
    assert scripted.instances[0].args[3] == {"worker_env": {"A": "1", "FROM_METRIC": "1"}, "slowdown": 3.0}


def test_a_runner_that_cannot_start_closes_the_metrics_workers(scripted, session, metric_workers, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no room for a worker folder")

    monkeypatch.setattr(sess, "Runner", refuse)
    with pytest.raises(OSError, match="no room"):
        sess.measure(session, targets(session, "current"), rounds=1, canary=False)
    assert metric_workers[-1] == ("exit",)


def test_stop_signals_interrupt_only_while_measuring(scripted, session):
    from benchbench import interrupts

    before = signal.getsignal(signal.SIGTERM)
    during = []
    scripted.answer = staticmethod(lambda call, side, case: during.append(signal.getsignal(signal.SIGTERM)) or ok(case))
    sess.measure(session, targets(session, "current"), rounds=1, canary=False)
    assert during and all(h is interrupts._raise for h in during)
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_interrupt_stops_the_workers_before_saving_and_names_only_saved_reports(scripted, session, tmp_path,
                                                                                  monkeypatch, metric_workers):
    closed_when_saved = []
    real_save = sess.save

    def save(report, path):
        closed_when_saved.append(bool(scripted.instances) and scripted.instances[0].closed)
        return real_save(report, path)

    monkeypatch.setattr(sess, "save", save)
    scripted.answer = staticmethod(lambda call, side, case: KeyboardInterrupt() if call == 1 else ok(case))
    saved, unsaved = targets(session, "current", tmp_path=tmp_path)[0], targets(session, "baseline")[0]
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        sess.measure(session, [saved, unsaved], canary=False)
    assert info.value.report_paths == [saved.path]
    assert closed_when_saved[-1] is True and not any(closed_when_saved[:-1])  # the last save, after the stop
    assert load(saved.path).finished_at is not None and unsaved.report.finished_at is not None
    assert saved.report.partial is True and unsaved.report.partial is True
    assert metric_workers[-1] == ("exit",) and signal.getsignal(signal.SIGTERM) is before
