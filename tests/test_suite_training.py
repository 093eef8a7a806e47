"""The training suite: break-even arithmetic, the loss guard, compile failures, isolation, profiles.

Only one real torch.compile (a tiny MLP) runs here, in `test_compile_time_stays_out_of_samples`;
every other compiled case uses an injected stand-in for `compile_model`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from fakes import FakeClock, steady_backend

from benchbench import api
from benchbench.measure.backends import get as get_backend
from benchbench.measure.engine import Budget
from benchbench.model.report import CaseKey, Result
from benchbench.run import execute, registry
from benchbench.run.runner import plan

ROOT = Path(__file__).resolve().parent.parent
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
MLP = {"size": "small", "batch": 8, "optimizer": "adam"}
# A few calls of a tiny step are enough to exercise the harness; speed is never asserted.
TINY = Budget(warmup_calls=2, warmup_min_s=0.0, warmup_max_s=0.2, block_min_s=0.001, min_samples=3,
              max_samples=10, max_time_s=0.1, target_rel_ci=1.0, timeout_s=120)


@pytest.fixture(scope="module")
def suite():
    return registry.load_source({"path": str(ROOT / "suites" / "training.py")})


@pytest.fixture(scope="module")
def training(suite):
    return suite.module


@pytest.fixture(scope="module")
def cpu():
    return get_backend("cpu")


@pytest.fixture(autouse=True)
def _keep_cache_env(monkeypatch):
    """The suite sets the inductor cache dir while compiling; whatever it leaves behind is undone."""
    monkeypatch.delenv(CACHE_ENV, raising=False)


def key(bench: str = "mlp", params: dict | None = None, dtype: str = "float32", mode: str = "compile",
        backend: str = "cpu") -> CaseKey:
    return CaseKey.make("training", bench, MLP if params is None else params, backend, dtype, mode)


def mlp(suite, compile_repeats: int = 1) -> api.Benchmark:
    """The mlp benchmark with `compile_repeats` cold compiles per round (one: the tests that count a compile's
    calls; the repeats have a test of their own)."""
    return replace(suite.benchmark("mlp"), compile_repeats=compile_repeats)


def result(k: CaseKey, step_s: float, memory_kind: str | None = None, **metrics) -> Result:
    spread = [step_s * f for f in (0.99, 1.0, 1.01, 1.0, 0.995, 1.005, 1.0)]
    return Result(key=k, status="ok", samples=spread, metrics=dict(metrics), peak_memory_bytes=1000,
                  memory_kind=memory_kind)


# --- break-even arithmetic --------------------------------------------------------------------------
def test_payoff_speedup_and_break_even(training):
    speedup, steps = training.payoff(0.010, 0.004, 3.0)  # saves 6 ms a step: 3 s back after 500 steps
    assert speedup == pytest.approx(2.5)
    assert steps == 500


def test_payoff_rounds_a_partial_step_up(training):
    assert training.payoff(0.010, 0.007, 1.0) == (pytest.approx(10 / 7), 334)  # 333.3 steps are not enough


@pytest.mark.parametrize("compiled_s", [0.012, 0.010])
def test_payoff_never_when_compiled_is_slower_or_equal(training, compiled_s):
    speedup, steps = training.payoff(0.010, compiled_s, 20.0)
    assert speedup == pytest.approx(0.010 / compiled_s)
    assert steps is None


def test_payoff_without_a_compile_time_has_no_break_even(training):
    assert training.payoff(0.010, 0.005, None) == (pytest.approx(2.0), None)


def test_payoff_rejects_non_positive_times(training):
    with pytest.raises(ValueError):
        training.payoff(0.0, 0.001, 1.0)


def test_payoff_notes(training):
    assert training.payoff_note(1.8, 1200, 21.3) == "1.80x eager, compile 21 s, pays off after 1,200 steps"
    assert training.payoff_note(0.93, None, 4.2) == "0.93x eager, compile 4.2 s: never pays off"
    assert training.payoff_note(1.01, 90000, 4.0, within_noise=True) == (
        "1.01x eager (within noise), compile 4 s: no measurable pay-off")
    assert training.payoff_note(2.0, 10, 1.0, mismatch=True).startswith("LOSS MISMATCH")
    assert "pays off" not in training.payoff_note(2.0, 10, 1.0, mismatch=True)


# --- derive: pairing compiled with eager -------------------------------------------------------------
def test_derive_pairs_each_compiled_result_with_its_eager_twin(training):
    fast, slow = {**MLP, "size": "wide"}, MLP
    results = [
        result(key(params=fast, mode="eager"), 0.010),
        result(key(params=fast, mode="compile"), 0.005, compile_s=20.0, compile_warm_s=2.0),
        result(key(params=slow, mode="eager"), 0.010),
        result(key(params=slow, mode="compile"), 0.020, compile_s=20.0),
        result(key(params=slow, dtype="bfloat16", mode="compile"), 0.005, compile_s=20.0),  # no eager twin
    ]
    training.derive(results)
    eager, faster, slower, orphan = results[0], results[1], results[3], results[4]
    assert "speedup" not in eager.metrics and eager.note is None
    assert faster.metrics["speedup"] == pytest.approx(2.0)
    assert faster.metrics["break_even_steps"] == 4000  # 20 s / 5 ms saved per step
    assert faster.metrics["break_even_steps_warm"] == 400
    assert faster.metrics["speedup_within_noise"] is False
    assert faster.note == "2.00x eager, compile 20 s, pays off after 4,000 steps"
    assert faster.metrics["peak_memory_vs_eager"] == pytest.approx(1.0)
    assert slower.metrics["break_even_steps"] is None
    assert slower.note.endswith("never pays off")
    assert "speedup" not in orphan.metrics and "eager" in orphan.note
    before = [dict(r.metrics) for r in results]
    training.derive(results)  # called after every case: must not compound
    assert [r.metrics for r in results] == before


def test_derive_never_reports_a_speedup_behind_a_loss_mismatch(training):
    compiled = result(key(), 0.005, compile_s=20.0)
    compiled.flags.append("loss-mismatch")
    training.derive([result(key(mode="eager"), 0.010), compiled])
    assert compiled.note.startswith("LOSS MISMATCH vs eager")
    assert "pays off" not in compiled.note


def test_derive_marks_a_difference_within_noise(training):
    compiled = result(key(), 0.00999, compile_s=20.0)
    training.derive([result(key(mode="eager"), 0.010), compiled])
    assert compiled.metrics["speedup_within_noise"] is True
    assert "within noise" in compiled.note
    assert compiled.metrics["break_even_steps"] > 0  # a step count exists; the note does not claim it
    assert "pays off" not in compiled.note


# --- the loss guard -------------------------------------------------------------------------------
def test_loss_guard_accepts_compiled_runs_as_close_to_float64_as_eager(training):
    ref = [2.4984967, 2.4447596, 2.2223392]  # resnet18 on CPU: eager float32 drifts more than compiled
    eager = [2.4984961, 2.4445746, 2.2274954]
    assert training.loss_mismatch(ref, eager, [2.4984965, 2.4447598, 2.2221115], 1e-3) is None
    assert training.loss_mismatch(ref, eager, eager, 1e-3) is None


def test_loss_guard_flags_compiled_runs_far_from_float64(training):
    ref, eager = [2.0, 1.9, 1.8], [2.0, 1.9, 1.8]
    assert training.loss_mismatch(ref, eager, [2.0, 1.9005, 1.8], 1e-3) is None  # within the floor
    message = training.loss_mismatch(ref, eager, [2.0, 1.91, 1.8], 1e-3)
    assert message is not None and message.startswith("step 2:")
    assert training.loss_mismatch(ref, eager, [2.0, float("nan"), 1.8], 1e-3).startswith("step 2:")
    assert training.loss_mismatch(ref, eager, [2.0, 1.9], 1e-3) is not None


def test_loss_guard_ignores_steps_where_eager_is_not_finite_either(training):
    nan = float("nan")
    assert training.loss_mismatch([2.0, 1.9], [2.0, nan], [2.0, nan], 1e-3) is None


@pytest.mark.parametrize(("factor", "flagged"), [(1.0, False), (1.5, True)])
def test_a_wrong_compiled_step_is_flagged(training, suite, cpu, monkeypatch, factor, flagged):
    """An injected 'compiled' model whose loss is off by `factor`; the faithful one (1.0) passes."""
    made = []

    def fake_compile(module, mode):
        made.append(mode)
        return lambda x, y: module(x, y) * factor

    monkeypatch.setattr(training, "compile_model", fake_compile)
    monkeypatch.setattr(training, "warm_compile", lambda spec, cache_dir, timeout: {})
    r = execute.run_case(mlp(suite), key(), cpu, TINY)
    assert r.status == "ok", r.details
    assert made == ["compile"]
    assert ("loss-mismatch" in r.flags) is flagged
    assert ("loss_mismatch" in r.metrics) is flagged
    assert len(r.metrics["loss_float64"]) == len(r.metrics["loss_eager"]) == training.GUARD_STEPS
    assert len(r.metrics["loss_compiled"]) == training.GUARD_STEPS
    training.derive([result(key(mode="eager"), 1.0), r])
    assert r.note.startswith("LOSS MISMATCH") is flagged


# --- compile time with CUDA graphs ---------------------------------------------------------------------
class FakeCudagraphTree:
    """torch.compile(mode="reduce-overhead") as a clock sees it (cudagraph trees): the first call compiles
    and runs eagerly as a warm-up, the second records the CUDA graphs, later calls replay them."""

    ONE_OFF = (5.0, 2.0)  # seconds: compile + warm-up, then recording
    STEP = 0.01

    def __init__(self, module, clock):
        self.module, self.clock, self.calls = module, clock, 0

    def __call__(self, x, y):
        self.calls += 1
        self.clock.t += self.ONE_OFF[self.calls - 1] if self.calls <= len(self.ONE_OFF) else self.STEP
        return self.module(x, y)


def test_compile_time_includes_the_cuda_graph_recording_step(training, suite, cpu, monkeypatch):
    clock = FakeClock()

    def time_once(self, fn):
        t0 = clock.t
        out = fn()
        return clock.t - t0, out

    monkeypatch.setattr(api.Context, "time_once", time_once)
    monkeypatch.setattr(training, "compile_model", lambda module, mode: FakeCudagraphTree(module, clock))
    monkeypatch.setattr(training, "warm_compile", lambda spec, cache_dir, timeout: {})
    r = execute.run_case(mlp(suite), key(), cpu, TINY)
    assert r.status == "ok", r.details
    # three guard steps (compile, record, replay): what they took beyond three steady steps
    assert r.metrics["compile_s"] == pytest.approx(5.0 + 2.0 + 0.01 - 3 * 0.01)
    assert r.metrics["guard_steps_s"] == pytest.approx([5.0, 2.0, 0.01])
    assert r.metrics["steady_steps_s"] == pytest.approx([0.01] * training.STEADY_STEPS)


def test_each_round_compiles_cold_compile_repeats_times_and_times_the_last(training, suite, cpu, monkeypatch):
    """Three compiles, each after a Dynamo reset, costing 4, 5 and 6 s: every one is recorded, `compile_s` is
    their geometric mean, and the harness times the last compiled step (the earlier ones only their own)."""
    clock, made, resets = FakeClock(), [], []

    def time_once(self, fn):
        t0 = clock.t
        out = fn()
        return clock.t - t0, out

    def fake_compile(module, mode):
        tree = FakeCudagraphTree(module, clock)
        tree.ONE_OFF = (4.0 + len(made) + tree.STEP,)  # the first call: the compile and a step
        made.append(tree)
        return tree

    real_reset = torch.compiler.reset
    monkeypatch.setattr(torch.compiler, "reset", lambda: (resets.append(len(made)), real_reset()))
    monkeypatch.setattr(api.Context, "time_once", time_once)
    monkeypatch.setattr(training, "compile_model", fake_compile)
    monkeypatch.setattr(training, "warm_compile", lambda spec, cache_dir, timeout: {})
    r = execute.run_case(mlp(suite, 3), key(), cpu, TINY)
    assert r.status == "ok", r.details
    assert r.metrics["compile_runs_s"] == pytest.approx([4.0, 5.0, 6.0])
    assert r.metrics["compile_s"] == pytest.approx(120 ** (1 / 3))
    assert resets[:3] == [0, 1, 2]  # a cold start before each compile
    steps = training.GUARD_STEPS + training.STEADY_STEPS
    assert [t.calls for t in made[:2]] == [steps, steps] and made[2].calls > steps  # the last one is timed
    assert r.metrics["guard_steps_s"][0] == pytest.approx(6.0 + FakeCudagraphTree.STEP)


def test_one_off_seconds_subtracts_the_median_steady_step(training):
    assert training.one_off_seconds([3.0, 1.0, 0.1], [0.1, 0.1, 0.1]) == pytest.approx(3.8)
    # an autotuner asked for a second warm-up run: the recording came in the first "steady" step
    assert training.one_off_seconds([3.0, 0.1, 1.0], [0.5, 0.1, 0.1]) == pytest.approx(4.2)
    assert training.one_off_seconds([0.1], [0.2]) == 0.0  # noise never makes a negative compile time
    with pytest.raises(ValueError):
        training.one_off_seconds([1.0], [])


# --- peak memory: the counter that sees CUDA-graph pools ----------------------------------------------------
@pytest.mark.parametrize("mode", ["eager", "compile", "reduce-overhead", "max-autotune"])
def test_cuda_training_cases_read_the_reserved_counter(training, suite, monkeypatch, mode):
    """CUDA-graph replays use a private pool only the reserved counter sees; eager reads the same counter."""
    monkeypatch.setattr(training, "compile_model", lambda module, mode: module)
    monkeypatch.setattr(training, "warm_compile", lambda spec, cache_dir, timeout: {})
    cuda_like = steady_backend("cuda")  # named cuda, runs on the CPU
    k = key(mode=mode, backend="cuda")
    case = suite.benchmark("mlp").setup(api.Context(backend=cuda_like, key=k), **k.params_dict)
    assert case.memory_counter == "reserved"
    cpu_case = suite.benchmark("mlp").setup(api.Context(backend=steady_backend("cpu"), key=key(mode="eager")),
                                            **MLP)
    assert cpu_case.memory_counter == "allocated"


def test_peak_memory_vs_eager_needs_the_same_counter(training):
    eager = result(key(mode="eager", backend="cuda"), 0.010, memory_kind="cuda-max-allocated")
    graphs = result(key(mode="reduce-overhead", backend="cuda"), 0.005, compile_s=20.0,
                    memory_kind="cuda-max-reserved")
    training.derive([eager, graphs])
    assert "peak_memory_vs_eager" not in graphs.metrics
    eager.memory_kind = "cuda-max-reserved"
    training.derive([eager, graphs])
    assert graphs.metrics["peak_memory_vs_eager"] == pytest.approx(1.0)


# --- compile failures -----------------------------------------------------------------------------
def test_torch_compile_raising_is_a_failed_result(training, suite, cpu, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("inductor is not available here\nsecond line of the traceback")

    monkeypatch.setattr(torch, "compile", broken)
    r = execute.run_case(suite.benchmark("mlp"), key(), cpu, TINY)
    assert r.status == "failed"
    assert r.reason == "CompileError: torch.compile (compile) failed: RuntimeError: inductor is not available here"
    assert r.samples == []
    # the case's own cache folder setting did not leak (torch itself sets its default folder in the
    # environment when torch._dynamo is first imported, so the variable may be there: not pointing at ours)
    assert "inductor-cache" not in os.environ.get(CACHE_ENV, "")


def test_a_backend_failing_during_the_first_call_is_a_failed_result(training, suite, cpu, monkeypatch):
    """Dynamo traces for real, then the backend raises: the reason names the backend's error."""

    def boom(gm, example_inputs):
        raise FileNotFoundError("no working C++ compiler found")

    monkeypatch.setattr(training, "compile_model", lambda module, mode: torch.compile(module, backend=boom))
    try:
        r = execute.run_case(suite.benchmark("mlp"), key(), cpu, TINY)
    finally:
        torch._dynamo.reset()
    assert r.status == "failed"
    assert r.reason == "CompileError: torch.compile (compile) failed: FileNotFoundError: no working C++ compiler found"


# --- skips, isolation, profiles -------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "dtype", "why"), [("reduce-overhead", "float32", "CUDA only"),
                                                    ("max-autotune", "float32", "CUDA only"),
                                                    ("eager", "float16", "CUDA only")])
def test_cuda_only_cases_are_skipped_with_a_reason_on_cpu(suite, cpu, mode, dtype, why):
    r = execute.run_case(suite.benchmark("mlp"), key(mode=mode, dtype=dtype), cpu, TINY)
    assert r.status == "skipped"
    assert why in r.reason


@pytest.mark.parametrize(("caps", "skipped"), [({"architecture": "x86_64", "avx2": True}, True),
                                               ({"architecture": "x86_64", "avx512_bf16": True}, False),
                                               ({"architecture": "x86_64", "amx_bf16": True}, False),
                                               ({"architecture": "aarch64", "bf16": True}, False)])
def test_bfloat16_on_a_cpu_without_bfloat16_instructions_is_skipped(training, monkeypatch, caps, skipped):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps, raising=False)
    reason = training.unsupported(key(dtype="bfloat16"))
    assert (reason is not None and "bfloat16" in reason) is skipped
    assert training.isolated(key(dtype="bfloat16")) is not skipped
    assert training.unsupported(key(dtype="bfloat16", backend="cuda")) is None


def test_only_runnable_compiled_cases_get_a_worker_of_their_own(suite):
    bench = suite.benchmark("resnet18")
    params = {"image": 32, "batch": 32, "optimizer": "sgd"}
    assert bench.isolates(key("resnet18", params, mode="compile"))
    assert bench.isolates(key("resnet18", params, mode="reduce-overhead", backend="cuda"))
    assert not bench.isolates(key("resnet18", params, mode="eager"))
    assert not bench.isolates(key("resnet18", params, mode="reduce-overhead"))  # skipped on CPU anyway
    assert not bench.isolates(key("resnet18", params, dtype="float16", mode="compile"))
    cases = plan([suite], [get_backend("cpu")], "quick")
    assert cases and all(c.isolate == (c.key.mode == "compile") for c in cases)


def test_isolate_accepts_a_bool_or_a_callable():
    def setup(ctx):
        return api.Case(lambda: None)

    k = CaseKey.make("s", "b", mode="compile")
    assert api.benchmark(setup, isolate=True).isolates(k)
    assert not api.benchmark(setup).isolates(k)
    per_mode = api.benchmark(setup, isolate=lambda key: key.mode == "compile")
    assert per_mode.isolates(k) and not per_mode.isolates(replace(k, mode="eager"))


def test_quick_profile_and_overview_selection(suite):
    cpu_backend = get_backend("cpu")
    quick = plan([suite], [cpu_backend], "quick")
    got = {(c.key.benchmark, c.key.mode) for c in quick}
    for bench in ("mlp", "cnn", "resnet18"):
        assert {(bench, "eager"), (bench, "compile")} <= got
    assert all(c.key.dtype == "float32" for c in quick)
    assert {c.key.params_dict["image"] for c in quick if c.key.benchmark == "resnet18"} == {32}
    overview = plan([suite], [cpu_backend], "quick", overview=True)
    assert len(overview) == 1 and overview[0].key.mode == "eager"


# --- a real compile, end to end in this process ---------------------------------------------------------
@pytest.mark.slow
def test_compile_time_stays_out_of_samples(training, suite, cpu, monkeypatch):
    """Count dynamo's compiled frames around every timed call: all compiling happens inside setup.

    Counting frames (not comparing times) makes this independent of how noisy the machine is.
    """
    frames = lambda: training.dynamo_counts()["frames"]  # noqa: E731
    timed_once: list[tuple[int, int]] = []
    real_time_once, real_measure = api.Context.time_once, execute.measure
    in_measure: list[tuple[int, int]] = []

    def time_once(self, fn):
        before = frames()
        out = real_time_once(self, fn)
        timed_once.append((before, frames()))
        return out

    def measure(*args, **kwargs):
        before = frames()
        out = real_measure(*args, **kwargs)
        in_measure.append((before, frames()))
        return out

    monkeypatch.setattr(api.Context, "time_once", time_once)
    monkeypatch.setattr(execute, "measure", measure)
    try:
        r = execute.run_case(mlp(suite), key(), cpu, TINY)
    finally:
        torch._dynamo.reset()
    assert r.status == "ok", r.details
    # the suite's guard steps (the first compiles) and steady steps, then the harness's first call
    assert len(timed_once) == training.GUARD_STEPS + training.STEADY_STEPS + 1
    (compile_before, compile_after), *rest, (first_before, first_after) = timed_once
    assert compile_after > compile_before  # the compile happened in setup, timed as compile_s ...
    assert all(after == before for before, after in rest)  # (no recompiles in the later setup steps)
    assert first_after == first_before  # ... not in the harness's first call (first_call_s) ...
    assert in_measure == [(first_after, first_after)]  # ... nor in warm-up or sampling
    assert r.metrics["compile_s"] > 0 and r.first_call_s is not None and len(r.samples) >= TINY.min_samples
    assert r.metrics["graph_breaks"] == 0 and r.metrics["recompiles"] == 0 and r.metrics["graphs"] >= 1
    assert "loss-mismatch" not in r.flags, r.metrics  # real compile tracks eager within float32 tolerance
    # warm: a fresh process reusing the cold run's cache dir found its graphs there
    assert r.metrics.get("compile_warm_s", 0) > 0, r.metrics.get("compile_warm_error")
    assert r.metrics["compile_warm_cache_hits"] >= 1
    assert "benchbench-training-" not in os.environ.get(CACHE_ENV, "")  # inductor may set its default


# --- through the CLI and its workers ----------------------------------------------------------------
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", "benchbench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_cli_runs_an_eager_case_of_the_suite(tmp_path):
    out = tmp_path / "r.json"
    proc = _cli("run", "--suite", "training", "--profile", "quick", "--backend", "cpu", "--filter", r"mlp.*eager",
                "-o", str(out),
                "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (r,) = json.loads(out.read_text())["results"]
    assert r["status"] == "ok" and r["work"]["items_unit"] == "samples" and r["derived"]["items_per_s"] > 0


@pytest.mark.slow
def test_runner_gives_isolated_cases_a_fresh_worker_and_lets_others_share(tmp_path):
    suite_file = tmp_path / "iso.py"
    suite_file.write_text(textwrap.dedent("""
        import os
        from benchbench import Case, benchmark

        @benchmark(modes=["a", "b", "compiled"], isolate=lambda key: key.mode == "compiled")
        def pid(ctx):
            return Case(lambda: None, metrics={"pid": os.getpid()})
    """))
    out = tmp_path / "r.json"
    proc = _cli("run", "--suite-path", str(suite_file), "--profile", "quick", "--backend", "cpu", "-o", str(out),
                "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pids = {r["key"]["mode"]: r["metrics"]["pid"] for r in json.loads(out.read_text())["results"]}
    assert pids["a"] == pids["b"] != pids["compiled"]
