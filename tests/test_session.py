"""The round loop (`session.measure`) with its workers faked: `Runner` is replaced by a script that answers
each case at once, and everything else, planning, side order, merging, ending cases, saving, is the real
code `run`, `gate --rerun` and `ab` use. Which side ran when, on which cases, in which order, is read
from the calls the loop made, not from the report it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchbench import session as sess
from benchbench.report import CaseKey, Result, load
from benchbench.rounds import round_order, round_seed
from benchbench.runner import Interrupted, Side

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
        ScriptedRunner.instances.append(self)

    def run_round(self, cases, side, label=None, counter=None):
        call = len(ScriptedRunner.calls)
        ScriptedRunner.calls.append((side.name, [c.key.label for c in cases]))
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
