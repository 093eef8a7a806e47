"""profile_diff: operator tables diffed per call of the case (plain data), the profile worker's trace and
table (real torch.profiler, in this process), and `ab --profile-regressions` end to end."""

import json
import math
from types import SimpleNamespace

import pytest

from benchbench.analysis.profile_diff import OpStat, Profile, diff, from_key_averages, top
from benchbench.model.report import CaseKey
from benchbench.output.profiles import fmt_us, profiles_html, profiles_markdown, profiles_text
from benchbench.run.profiling import CaseProfile, slug


def prof(iterations, *ops):
    return Profile(iterations, tuple(OpStat(*o) for o in ops))


def test_the_operator_that_gained_the_most_self_time_per_call_ranks_first():
    base = prof(10, ("aten::mm", 10, 500.0), ("aten::layer_norm", 10, 380.0), ("aten::add", 20, 100.0))
    cur = prof(10, ("aten::mm", 10, 510.0), ("aten::layer_norm", 20, 760.0), ("aten::add", 20, 90.0))
    rows = diff(base, cur)
    assert [r.name for r in rows] == ["aten::layer_norm", "aten::mm", "aten::add"]
    first = rows[0]
    assert first.delta_us == pytest.approx(38.0) and (first.base_calls, first.current_calls) == (1, 2)
    assert first.change == "more calls" and first.ratio == pytest.approx(2.0)
    assert rows[-1].change == "faster" and rows[-1].delta_us == pytest.approx(-1.0)


def test_sides_profiled_over_different_numbers_of_calls_compare_per_call():
    base = prof(10, ("aten::mm", 10, 1000.0))
    cur = prof(40, ("aten::mm", 40, 4000.0))  # 4x the calls, the same time per call
    (row,) = diff(base, cur)
    assert row.delta_us == pytest.approx(0.0) and row.change == "same" and row.base_calls == row.current_calls == 1


def test_new_and_gone_operators_and_device_rows_are_their_own_rows():
    base = prof(2, ("aten::relu", 2, 10.0), ("aten::mm", 2, 40.0, "cpu"), ("gemm_kernel", 2, 400.0, "device"))
    cur = prof(2, ("aten::gelu", 2, 30.0), ("aten::mm", 2, 40.0, "cpu"), ("gemm_kernel", 2, 600.0, "device"))
    rows = {(r.name, r.where): r for r in diff(base, cur)}
    assert rows[("aten::gelu", "cpu")].change == "new" and rows[("aten::relu", "cpu")].change == "gone"
    assert rows[("gemm_kernel", "device")].delta_us == pytest.approx(100.0)
    assert diff(base, cur)[0].name == "gemm_kernel"
    assert [r.name for r in top(diff(base, cur), 10)] == ["gemm_kernel", "aten::gelu", "aten::relu"]  # mm: unmoved


def test_the_same_operator_listed_twice_is_summed():
    base = prof(1, ("aten::add", 1, 5.0), ("aten::add", 2, 10.0))
    (row,) = diff(base, prof(1, ("aten::add", 3, 15.0)))
    assert row.base_calls == 3 and row.delta_us == 0


def test_profiles_round_trip_as_plain_data():
    p = prof(3, ("aten::mm", 3, 12.5), ("k", 3, 7.0, "device"))
    assert Profile.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(ValueError):
        Profile(0, ())


def test_key_averages_become_cpu_and_device_rows():
    events = [SimpleNamespace(key="aten::mm", count=4, self_cpu_time_total=80.0, self_device_time_total=0.0),
              SimpleNamespace(key="sgemm", count=4, self_cpu_time_total=0.0, self_device_time_total=300.0),
              SimpleNamespace(key="old", count=1, self_cpu_time_total=2.0, self_cuda_time_total=5.0)]
    assert from_key_averages(events) == (OpStat("aten::mm", 4, 80.0, "cpu"), OpStat("sgemm", 4, 300.0, "device"),
                                         OpStat("old", 1, 2.0, "cpu"), OpStat("old", 1, 5.0, "device"))


def test_renderers_show_the_top_rows_with_counts_and_link_the_traces(tmp_path):
    key = CaseKey("s", "work", (("n", 4),), "cpu")
    cp = CaseProfile(key, "regression", {"baseline": str(tmp_path / "baseline-x.trace.json"),
                                         "current": str(tmp_path / "current-x.trace.json")},
                     {"baseline": prof(1, ("aten::layer_norm", 1, 12.0)),
                      "current": prof(1, ("aten::layer_norm", 2, 50.0))})
    text = profiles_text([cp])
    assert "aten::layer_norm" in text and "+38 us" in text and "1 → 2" in text and "current trace:" in text
    md = profiles_markdown([cp])
    assert "| aten::layer_norm" in md and "+38 us" in md
    page = profiles_html([cp], tmp_path)
    assert "href='baseline-x.trace.json'" in page and "aten::layer_norm" in page and "<script" not in page
    failed = CaseProfile(key, "inconclusive", errors={"current": "RuntimeError: <b>boom</b>"})
    assert "&lt;b&gt;" in profiles_html([failed], tmp_path) and "no diff: current: RuntimeError" in profiles_text([failed])
    assert slug(key) == "s_work_n=4_cpu" or "/" not in slug(key)
    assert fmt_us(1500) == "1.5 ms" and fmt_us(-2.5e6, signed=True) == "-2.5 s"


# --- real profiles ---------------------------------------------------------------------------------------
LIB_V1 = """
import torch

A = torch.randn(64, 64)
B = torch.randn(200_000)


def work():
    return A @ A
"""
LIB_V2 = LIB_V1.replace("    return A @ A", "    torch.sort(B)\n    return A @ A")  # the planted change
SUITE = """
from benchbench import Case, benchmark

import plantedlib

SUITE = "planted"


@benchmark
def work(ctx):
    return Case(plantedlib.work)
"""


def check_chrome_trace(path):
    """The Chrome trace event format as Perfetto reads it: an object with a traceEvents list; every event
    has a phase and a name; complete events ("X") have numeric ts and dur, and pid and tid."""
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    complete = 0
    for ev in doc["traceEvents"]:
        assert isinstance(ev, dict) and isinstance(ev.get("ph"), str) and "name" in ev
        if ev["ph"] == "X":
            complete += 1
            assert isinstance(ev["ts"], (int, float)) and isinstance(ev["dur"], (int, float)) and ev["dur"] >= 0
            assert "pid" in ev and "tid" in ev and isinstance(ev["name"], str)
            assert math.isfinite(ev["ts"])
    return doc, complete


def planted(tmp_path, version):
    import importlib
    import sys

    lib = tmp_path / version
    lib.mkdir()
    (lib / "plantedlib.py").write_text(LIB_V1 if version == "v1" else LIB_V2)
    (lib / "suite.py").write_text(SUITE)
    sys.modules.pop("plantedlib", None)
    sys.path.insert(0, str(lib))
    importlib.invalidate_caches()
    return lib


@pytest.mark.slow  # torch.profiler in this process: seconds on a busy machine
def test_the_profile_diff_of_the_planted_change_ranks_the_changed_operator_first(tmp_path):
    pytest.importorskip("torch")
    import sys

    from benchbench.profile_worker import profile_case
    from benchbench.run import session

    profiles, traces = {}, {}
    for side, version in (("baseline", "v1"), ("current", "v2")):
        lib = planted(tmp_path, version)
        try:
            s = session.prepare(suite_paths=[str(lib / "suite.py")], backends=["cpu"], profile="quick",
                                environment=False)
            (case,) = s.cases
            trace = tmp_path / f"{side}.trace.json"
            answer = profile_case({"source": case.suite.source, "benchmark": case.bench.name,
                                   "key": case.key.to_dict(), "trace": str(trace), "seconds": 0.05})
        finally:
            sys.path.remove(str(lib))
            sys.modules.pop("plantedlib", None)
        assert answer["event"] == "profile", answer
        profiles[side], traces[side] = Profile.from_dict(answer), trace
        _, complete = check_chrome_trace(trace)
        assert complete > 0
        assert not list(tmp_path.glob(f".{side}.trace.json.*"))  # the temporary file was renamed
    rows = diff(profiles["baseline"], profiles["current"])
    assert rows[0].name == "aten::sort" and rows[0].change == "new" and rows[0].delta_us > 0
    mm = next(r for r in rows if r.name == "aten::mm")
    assert mm.base_calls == mm.current_calls == 1


@pytest.mark.slow
def test_ab_profile_regressions_writes_both_traces_and_the_diff(tmp_path):
    import subprocess

    from conftest import ROOT, run_cli

    root = tmp_path / "project"
    root.mkdir()
    (root / "plantedlib.py").write_text(LIB_V1)
    (root / "suite.py").write_text(SUITE)

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                       capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "fast")
    (root / "plantedlib.py").write_text(LIB_V2)
    git("commit", "-qam", "sorts too")
    out = tmp_path / "out"
    proc = run_cli("ab", "--suite-path", "suite.py", "--backend", "cpu", "--profile", "quick", "--rounds", "3",
                   "--fail-on", "median:50%", "--baseline-ref", "HEAD~1", "--profile-regressions", "--json", "-q",
                   "-o", str(out), cwd=root, env={"PYTHONPATH": f"{ROOT}:{root}"}, timeout=1200)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (case,) = json.loads(proc.stdout)["profiles"]
    assert case["outcome"] == "regression" and case["top"][0]["operator"] == "aten::sort"
    for side in ("baseline", "current"):
        path = out / f"{side}-{slug(CaseKey('planted', 'work', (), 'cpu'))}.trace.json"
        assert case["traces"][side] == str(path)
        check_chrome_trace(path)
    assert "aten::sort" in (out / "profiles.html").read_text()
    assert json.loads((out / "profiles.json").read_text())["profiles"][0]["case"] == case["case"]


# --- in ab: after the decision, and the decision unchanged --------------------------------------------------
@pytest.fixture
def fast_ab(monkeypatch):
    """run_ab without its slow parts: no interpreter check (a torch import), no environment collection,
    and the rounds filled by test_ab's fake."""
    from test_ab import FakeInterleaved

    from benchbench.run import ab, session

    prepare = session.prepare
    monkeypatch.setattr(session, "prepare", lambda *a, **k: prepare(*a, **{**k, "environment": False}))
    monkeypatch.setattr(ab, "check_side", lambda side, what: None)
    monkeypatch.setattr(FakeInterleaved, "calls", [])
    return FakeInterleaved


def test_ab_profiles_the_regressed_cases_after_the_decision_without_changing_it(fast_ab, monkeypatch, tmp_path):
    from benchbench.run import ab, profiling
    from benchbench.run.ab import run_ab

    events = []

    class Recording(fast_ab):
        def run(self):
            events.append("measured")
            return super().run()

    def fake_profile(side, case, trace, timeout, profile="default", worker_env=None, seconds=0.3):
        events.append(("profile", side.name, case.key.label))
        trace.write_text(json.dumps({"traceEvents": []}))
        extra = (("aten::sort", 1, 900.0),) if side.name == "current" else ()
        return prof(1, ("aten::mm", 1, 100.0), *extra)

    base = [1e-3 * (1 + 0.001 * i) for i in range(30)]
    monkeypatch.setattr(fast_ab, "times", {"baseline": base, "current": [1.3 * t for t in base]})
    monkeypatch.setattr(ab, "Interleaved", Recording)
    monkeypatch.setattr(profiling, "run_profile", fake_profile)
    kw = dict(backends=["cpu"], pattern="dispatch_overhead", profile="quick", command=["benchbench", "ab"])
    plain = run_ab(["tensor_ops"], output=tmp_path / "plain", **kw)
    assert plain.profiles == [] and events == ["measured"]
    events.clear()
    profiled = run_ab(["tensor_ops"], output=tmp_path / "ab", profile_regressions=True, **kw)
    assert profiled.gate.verdict == plain.gate.verdict == "regression"
    assert [f.outcome for f in profiled.gate.findings] == [f.outcome for f in plain.gate.findings]
    label = profiled.gate.findings[0].row.key.label
    assert events == ["measured", ("profile", "baseline", label), ("profile", "current", label)]
    (cp,) = profiled.profiles
    assert cp.rows[0].name == "aten::sort" and set(cp.traces) == {"baseline", "current"}
    assert json.loads((tmp_path / "ab" / "profiles.json").read_text())["profiles"][0]["case"] == label
    assert not (tmp_path / "plain" / "profiles.json").exists()

    # a passing ab profiles nothing
    monkeypatch.setattr(fast_ab, "times", {"baseline": base, "current": base})
    monkeypatch.setattr(profiling, "run_profile", lambda *a, **k: pytest.fail("profiled a passing case"))
    same = run_ab(["tensor_ops"], output=tmp_path / "same", profile_regressions=True, **kw)
    assert same.gate.verdict == "pass" and same.profiles == []


def test_the_profiler_records_the_device_where_the_case_runs_there():
    pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity

    from benchbench.profile_worker import activities

    assert activities("cpu") == [ProfilerActivity.CPU]
    assert activities("cuda") == [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    assert activities("mps") == [ProfilerActivity.CPU]


def test_under_instruction_counts_the_diff_is_by_function_from_the_callgrind_data():
    from benchbench.analysis.profile_diff import from_top_functions
    from benchbench.model.report import Result
    from benchbench.run.profiling import instruction_diffs

    key = CaseKey("s", "work", (), "cpu")

    def result(functions):
        return Result(key=key, status="ok", samples=[1.0], timing_method="callgrind-instructions",
                      metrics={"instructions": {"top_functions": functions}})

    base = result([{"function": "at::native::add_kernel", "self": 1200.0, "inclusive": 1500.0},
                   {"function": "PyEval_EvalFrame", "self": 800.0, "inclusive": 5000.0}])
    cur = result([{"function": "at::native::add_kernel", "self": 1200.0, "inclusive": 1500.0},
                  {"function": "PyEval_EvalFrame", "self": 820.0, "inclusive": 9000.0},
                  {"function": "at::native::sort_kernel", "self": 3000.0, "inclusive": 3100.0}])
    row = SimpleNamespace(key=key, base=base, other=cur)
    gate = SimpleNamespace(findings=[SimpleNamespace(row=row, outcome="regression"),
                                     SimpleNamespace(row=SimpleNamespace(key=key, base=base, other=base), outcome="ok")])
    (cp,) = instruction_diffs(gate)
    rows = cp.rows
    assert [r.name for r in rows[:2]] == ["at::native::sort_kernel", "PyEval_EvalFrame"]
    assert rows[0].change == "new" and rows[0].delta_us == 3000 and rows[1].change == "more"
    assert next(r for r in rows if r.name == "at::native::add_kernel").change == "same"
    text = profiles_text([cp])
    assert "functions by change in own instructions per call" in text and "+3k instr" in text
    assert from_top_functions([]).ops == ()
    no_table = SimpleNamespace(key=key, base=base, other=Result(key=key, status="ok", samples=[1.0]))
    (missing,) = instruction_diffs(SimpleNamespace(findings=[SimpleNamespace(row=no_table, outcome="inconclusive")]))
    assert "current" in missing.errors and missing.rows == []
