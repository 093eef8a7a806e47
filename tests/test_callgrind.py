"""Callgrind: the output parser on a golden file, the toggled-region measurement with a fake Callgrind,
whether Valgrind is usable, how a run is planned, and one real run under Valgrind (slow)."""

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_cli

from benchbench.errors import UserError
from benchbench.measure import callgrind as cg
from benchbench.model.report import CaseKey, load

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "callgrind.out.golden"


# --- the parser ------------------------------------------------------------------------------------------
def by_name(profile):
    return {f.name: f for f in profile.functions}


def test_golden_file_totals_and_costs_per_function():
    p = cg.parse_file(GOLDEN)
    assert p.total == 900
    assert p.events == ("Ir",)
    assert p.command == "/usr/bin/python3.11 -m benchbench.worker"
    fns = by_name(p)
    assert set(fns) == {"_PyEval_EvalFrameDefault", "at::add(at::Tensor const&, at::Tensor const&)", "at::empty(long)"}
    ev = fns["_PyEval_EvalFrameDefault"]
    # its own lines (inlined Include/object.h code included), and a recursive call not counted twice
    assert (ev.self, ev.inclusive) == (200, 900)
    assert (ev.file, ev.object) == ("Python/ceval.c", "libpython3.11.so.1.0")
    add = fns["at::add(at::Tensor const&, at::Tensor const&)"]
    assert (add.self, add.inclusive, add.object) == (500, 700, "libtorch_cpu.so")  # compressed names resolved
    assert (fns["at::empty(long)"].self, fns["at::empty(long)"].inclusive) == (200, 200)
    assert sum(f.self for f in p.functions) == p.total
    assert [f.name for f in p.top(2)] == ["at::add(at::Tensor const&, at::Tensor const&)", "_PyEval_EvalFrameDefault"]
    assert p.top(1, by="inclusive")[0].name == "_PyEval_EvalFrameDefault"


def _annotate_self(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--show-percs=no", str(path)],
                         capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"^\s*([0-9,]+)\s+PROGRAM TOTALS", out, re.M).group(1).replace(",", ""))
    per_fn = {}
    for m in re.finditer(r"^\s*([0-9,]+)\s+[^:\s]*:(.+?)(?: \[.*\])?$", out.split("file:function", 1)[1], re.M):
        per_fn[m.group(2)] = per_fn.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return total, per_fn


@pytest.mark.skipif(shutil.which("callgrind_annotate") is None, reason="callgrind_annotate (valgrind) not installed")
def test_parser_agrees_with_callgrind_annotate():
    total, per_fn = _annotate_self(GOLDEN)
    p = cg.parse_file(GOLDEN)
    assert p.total == total
    assert {f.name: f.self for f in p.functions} == per_fn


def test_header_totals_win_and_missing_events_are_an_error(tmp_path):
    text = GOLDEN.read_text().replace("totals: 900", "totals: 901")
    assert cg.parse(text).total == 901
    with pytest.raises(cg.CallgrindFormatError, match="no events"):
        cg.parse("version: 1\nfn=main\n")
    with pytest.raises(cg.CallgrindFormatError, match="no Ir event"):
        cg.parse("events: Dr Dw\n")
    with pytest.raises(cg.CallgrindFormatError, match="unrecognised line"):
        cg.parse("events: Ir\nfn=main\nthis is not callgrind\n")


def test_several_events_and_line_only_positions():
    text = "positions: line\nevents: Dr Ir\nfn=(1) f\n10 5 7\n+1 3\ncfn=(2) g\ncalls=1 20\n* 0 11\nfn=(2)\n20 0 11\n"
    p = cg.parse(text)
    fns = by_name(p)
    assert (fns["f"].self, fns["f"].inclusive) == (7, 18)  # "+1 3": Dr only, Ir missing counts 0
    assert fns["g"].self == 11 and p.total == 18


def test_breakdown_is_per_call_and_sorted_by_own_cost():
    one = cg.Profile(1000, [cg.FunctionCost("f", "a.c", "lib.so", 600, 1000), cg.FunctionCost("g", "b.c", "lib.so", 400, 400)])
    two = cg.Profile(1900, [cg.FunctionCost("f", "a.c", "lib.so", 1000, 1900), cg.FunctionCost("g", "b.c", "lib.so", 800, 800),
                            cg.FunctionCost("h", "c.c", "lib.so", 100, 100)])
    rows = cg.breakdown(one, two, calls=10)
    assert [(r["function"], r["self"], r["inclusive"]) for r in rows] == [("f", 40.0, 90.0), ("g", 40.0, 40.0),
                                                                         ("h", 10.0, 10.0)]
    assert len(cg.breakdown(one, two, calls=10, n=1)) == 1


def test_calls_per_region_come_from_a_fixed_ladder():
    assert cg.pick_calls(8_000, target=2e7) == 2000
    assert cg.pick_calls(8_100, target=2e7) == 2000  # a little jitter lands on the same step
    assert cg.pick_calls(5e7, target=2e7) == 1
    assert cg.pick_calls(0, target=2e7) == cg.CALL_LADDER[-1]


# --- measuring with a fake Callgrind ---------------------------------------------------------------------
class FakeCallgrind:
    """Counts fn's calls between the toggles and writes a dump of `overhead + calls * per_call` Ir."""

    def __init__(self, out_file: Path, per_call: int, overhead: int = 5000, jitter=lambda i: 0):
        self.out_file, self.per_call, self.overhead, self.jitter = out_file, per_call, overhead, jitter
        self.on = False
        self.calls = 0
        self.dumps = 0
        self.toggles = []

    def fn(self):
        if self.on:
            self.calls += 1

    def toggle(self):
        self.on = True
        self.calls = 0
        self.toggles.append("on")

    def toggle_and_dump(self):
        self.on = False
        self.toggles.append("off+dump")
        self.dumps += 1
        ir = self.overhead + self.calls * self.per_call + self.jitter(self.dumps)
        Path(f"{self.out_file}.{self.dumps}").write_text(
            f"positions: instr line\nevents: Ir\nfn=(1) region\n0x1 0 {self.overhead}\ncfn=(2) fn\ncalls={self.calls} 0x2 0\n"
            f"* * {ir - self.overhead}\nfn=(2)\n0x2 0 {ir - self.overhead}\ntotals: {ir}\n")


def test_collector_counts_instructions_per_call_without_the_toggle_overhead(tmp_path):
    fake = FakeCallgrind(tmp_path / "callgrind.out", per_call=8300)
    uncounted = []
    fn = lambda: fake.fn() if fake.on else uncounted.append(1)  # noqa: E731
    collector = cg.Collector(fake.out_file, fake.toggle, fake.toggle_and_dump, repeats=3, target=2e7,
                             warmup_regions=2)
    phases = []
    m, metrics = collector.measure(fn, on_phase=phases.append)
    assert m.samples == [8300.0, 8300.0, 8300.0]
    calls = cg.pick_calls(5000 + 8300, 2e7)
    assert m.loops == calls and m.stopped == "repeats"
    assert len(uncounted) == 2 * calls and m.warmup_calls == 1 + 2 * calls  # warmed up, uncounted, before counting
    info = metrics["instructions"]
    assert info["calls_per_region"] == calls and info["regions"] == 3 and info["toggle_overhead"] == 5000
    assert info["top_functions"][0]["function"] == "fn" and info["top_functions"][0]["self"] == 8300.0
    assert phases == ["calibrate", "count"]
    assert fake.toggles == ["on", "off+dump"] * 5  # calibration, the empty region, 3 counted regions
    assert list(tmp_path.iterdir()) == []  # every dump read and removed


def test_collector_keeps_jitter_in_the_samples(tmp_path):
    # dumps: 1 calibration, 2 the empty region, 3.. the counted regions
    fake = FakeCallgrind(tmp_path / "cg.out", per_call=1000, jitter=lambda i: 50 if i == 4 else 0)
    m, _ = cg.Collector(fake.out_file, fake.toggle, fake.toggle_and_dump, repeats=3, target=1e4).measure(fake.fn)
    calls = m.loops
    assert m.samples == [1000.0, 1000 + 50 / calls, 1000.0]


class FakeHeap(FakeCallgrind):
    """As FakeCallgrind, plus glibc's _int_free in each dump, whose cost wanders with the region."""

    def __init__(self, out_file, per_call, heap):
        super().__init__(out_file, per_call)
        self.heap = heap  # dump number -> instructions inside the allocator

    def toggle_and_dump(self):
        self.on = False
        self.dumps += 1
        code, heap = self.overhead + self.calls * self.per_call, self.heap(self.dumps)
        Path(f"{self.out_file}.{self.dumps}").write_text(
            f"positions: line\nevents: Ir\nob=(1) libc.so.6\nfn=(1) _int_free\n0 {heap}\n"
            f"ob=(2) libpython3.11.so\nfn=(2) work\n0 {code}\ntotals: {code + heap}\n")


def test_the_allocators_internals_stay_out_of_the_samples_and_are_reported_apart(tmp_path):
    # the heap's history moves _int_free from region to region; the code's own count does not move
    fake = FakeHeap(tmp_path / "cg.out", per_call=1000, heap=lambda i: 0 if i == 2 else 500 + 100 * i)
    m, metrics = cg.Collector(fake.out_file, fake.toggle, fake.toggle_and_dump, repeats=3, target=1e4).measure(fake.fn)
    calls = m.loops
    assert m.samples == [1000.0, 1000.0, 1000.0]
    info = metrics["instructions"]
    assert info["allocator"] == (500 + 100 * 4) / calls  # median of the three regions (dumps 3, 4, 5)
    assert info["with_allocator"] == 1000 + info["allocator"]
    assert info["allocator_functions"] == ["_int_free"]
    # without the exclusion the wandering cost is part of every sample
    fake = FakeHeap(tmp_path / "again.out", per_call=1000, heap=lambda i: 0 if i == 2 else 500 + 100 * i)
    m, _ = cg.Collector(fake.out_file, fake.toggle, fake.toggle_and_dump, repeats=3, target=1e4,
                        exclude=None).measure(fake.fn)
    assert m.samples == [1000 + (500 + 100 * i) / calls for i in (3, 4, 5)]


def test_the_allocator_pattern_names_glibc_and_pymalloc_internals_only():
    for name in ("_int_malloc", "_int_free", "malloc_consolidate", "unlink_chunk.constprop.0", "_int_memalign",
                 "_PyObject_Malloc", "_PyObject_Free"):
        assert cg.ALLOCATOR_FUNCTIONS.match(name), name
    for name in ("malloc", "free", "__libc_malloc", "c10::alloc_cpu(unsigned long)", "_PyEval_EvalFrameDefault",
                 "_int_malloc_wrapper"):
        assert not cg.ALLOCATOR_FUNCTIONS.match(name), name


def test_read_total_takes_the_header_and_falls_back_to_the_cost_lines(tmp_path):
    assert cg.read_total(GOLDEN) == 900
    bare = tmp_path / "bare.out"
    bare.write_text("events: Ir\nfn=(1) f\n1 40\n2 2\n")
    assert cg.read_total(bare) == 42


def test_collector_without_a_dump_says_it_is_not_under_callgrind(tmp_path):
    collector = cg.Collector(tmp_path / "cg.out", lambda: None, lambda: None)
    with pytest.raises(RuntimeError, match="not running under|no Callgrind dump"):
        collector.measure(lambda: None)


def test_collector_from_env_fills_in_the_pid(tmp_path, monkeypatch):
    assert cg.collector_from_env({}) is None
    monkeypatch.setattr(cg.os, "getpid", lambda: 4242)
    c = cg.collector_from_env({cg.OUT_ENV: str(tmp_path / "callgrind.%p.out")})
    assert c.out_file == tmp_path / "callgrind.4242.out"


# --- is Valgrind usable ---------------------------------------------------------------------------------------
def fake_run(stdout="valgrind-3.19.0\n", returncode=0):
    return lambda *a, **k: SimpleNamespace(stdout=stdout, stderr="", returncode=returncode)


def test_valgrind_status(monkeypatch):
    monkeypatch.setattr(cg.sys, "platform", "linux")
    ok = cg.valgrind_status(which=lambda name: "/usr/bin/valgrind", run=fake_run())
    assert ok.usable and ok.version == "3.19.0" and ok.path == "/usr/bin/valgrind" and ok.to_dict()["install"] is None
    missing = cg.valgrind_status(which=lambda name: None, run=fake_run())
    assert not missing.usable and "not installed" in missing.reason and "apt-get install valgrind" in missing.install
    broken = cg.valgrind_status(which=lambda name: "/usr/bin/valgrind", run=fake_run("", 1))
    assert not broken.usable and "failed" in broken.reason
    monkeypatch.setattr(cg.sys, "platform", "darwin")
    mac = cg.valgrind_status(which=lambda name: "/opt/homebrew/bin/valgrind", run=fake_run())
    assert not mac.usable and "Linux" in mac.reason and "Apple silicon" in mac.install


def test_require_is_a_one_line_user_error_saying_how_to_install():
    with pytest.raises(UserError) as err:
        cg.require(cg.ValgrindStatus(False, reason="valgrind is not installed (not on PATH)"))
    text = str(err.value)
    assert "\n" not in text and "apt-get install valgrind" in text and err.value.exit_code == 2
    status = cg.ValgrindStatus(True, "/usr/bin/valgrind", "3.19.0")
    assert cg.require(status) is status


@pytest.mark.parametrize("command, output", [("run", "r.json"), ("ab", "ab")])
def test_without_valgrind_run_and_ab_stop_with_exit_2_and_the_install_hint(tmp_path, command, output):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = run_cli(command, "--metric", "instructions", "--suite", "tensor_ops", "--filter", "dispatch_overhead",
                   "-o", str(tmp_path / output), env={"PATH": str(empty)}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs Valgrind" in lines[0] and "apt-get install valgrind" in lines[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / output).exists()


# --- planning a run ----------------------------------------------------------------------------------------
def planned(backend="cpu", isolate=False, skip=None):
    from benchbench import Case, benchmark
    from benchbench.run.runner import PlannedCase

    bench = benchmark(lambda ctx: Case(lambda: None), name="b", isolate=isolate)
    return PlannedCase(suite=None, bench=bench, key=CaseKey.make("s", "b", {}, backend), skip=skip)


def test_plan_skips_what_callgrind_cannot_count():
    cpu, cuda, iso, skipped = cg.plan([planned(), planned("cuda"), planned(isolate=True), planned("mps", skip="no mps")])
    assert cpu.skip is None
    assert "CPU backend only" in cuda.skip
    assert "worker process of its own" in iso.skip
    assert skipped.skip == "no mps"


def test_runner_options_start_the_worker_under_callgrind(tmp_path):
    opts = cg.runner_options(tmp_path, cg.ValgrindStatus(True, "/usr/bin/valgrind", "3.19.0"))
    prefix = opts["command_prefix"]
    assert prefix[0] == "/usr/bin/valgrind" and "--tool=callgrind" in prefix and "--collect-atstart=no" in prefix
    assert f"--callgrind-out-file={tmp_path / 'callgrind.%p.out'}" in prefix
    env = opts["worker_env"]
    assert env[cg.OUT_ENV] == str(tmp_path / "callgrind.%p.out") and env["OMP_NUM_THREADS"] == "1"
    assert opts["slowdown"] > 1


# --- for real ------------------------------------------------------------------------------------------------
USER_SUITE = """
from benchbench import Case, benchmark

@benchmark
def pyloop(ctx):
    def fn():
        total = 0
        for i in range(200):
            total += i
        return total
    return Case(fn, check_output=False)
"""


@pytest.mark.slow
@pytest.mark.skipif(not cg.valgrind_status().usable, reason=f"Valgrind not usable: {cg.valgrind_status().reason}")
def test_real_run_under_valgrind_counts_instructions(tmp_path, write_suite):
    suite = write_suite(USER_SUITE)
    out = tmp_path / "r.json"
    proc = run_cli("run", "--metric", "instructions", "--suite-path", str(suite), "-o", str(out), "--quiet",
                   timeout=1800)
    assert proc.returncode == 0, proc.stderr
    (r,) = load(out).results
    assert r.status == "ok" and r.timing_method == "callgrind-instructions"
    counts = r.samples
    assert len(counts) == cg.REPEATS and min(counts) > 200  # a 200-step Python loop: hundreds of instructions
    assert (max(counts) - min(counts)) / min(counts) < 0.001  # the allocators' internals are counted apart
    assert r.metrics["instructions"]["allocator"] >= 0
    top = r.metrics["instructions"]["top_functions"]
    assert top and any("EvalFrame" in f["function"] for f in top)
    assert r.work == {} and "instr" in proc.stdout


def test_collector_can_keep_the_dumps_for_callgrind_annotate(tmp_path):
    fake = FakeCallgrind(tmp_path / "cg.out", per_call=1000)
    keep = tmp_path / "kept"
    m, _ = cg.Collector(fake.out_file, fake.toggle, fake.toggle_and_dump, repeats=1, target=1e4,
                        keep_dir=keep).measure(fake.fn)
    kept = sorted(p.name for p in keep.iterdir())
    assert kept == ["cg.out.1.n1", "cg.out.2.n0", f"cg.out.3.n{m.loops}"]  # calibration, empty, counted
    assert cg.collector_from_env({cg.OUT_ENV: str(fake.out_file), cg.KEEP_ENV: str(keep)}).keep_dir == keep


def test_a_session_for_instructions_plans_one_round_of_countable_cases(monkeypatch):
    from benchbench.run import session

    monkeypatch.setattr(cg, "valgrind_status", lambda: cg.ValgrindStatus(True, "/usr/bin/valgrind", "3.19.0"))
    s = session.prepare(["tensor_ops"], pattern="dispatch_overhead", backends=["cpu"], environment=False,
                        metric="instructions")
    assert s.metric == "instructions" and s.rounds == 1 and [c.skip for c in s.cases] == [None]
    assert session.prepare(["tensor_ops"], pattern="dispatch_overhead", backends=["cpu"], environment=False,
                           metric="instructions", rounds=2).rounds == 2
    with pytest.raises(UserError, match="unknown metric"):
        session.prepare(["tensor_ops"], environment=False, metric="cycles")
    monkeypatch.setattr(cg, "valgrind_status", lambda: cg.ValgrindStatus(False, reason="valgrind is not installed"))
    with pytest.raises(UserError, match="needs Valgrind"):
        session.prepare(["tensor_ops"], environment=False, metric="instructions")
