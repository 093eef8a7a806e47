"""The inference suite: the decoder's KV cache, per-call timing, the correctness guard, skips, derive.

No real torch.compile runs here: compiled cases get an injected stand-in for `compile_model` (a
planted numerical bug, or the eager module itself). The one end-to-end run is marked slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fakes import FakeEvent, fake_torch, gpu_shaped_backend

from benchbench.measure.backends import CudaBackend
from benchbench.measure.backends import get as get_backend
from benchbench.model.report import CaseKey, Result
from benchbench.run import execute, registry

ROOT = Path(__file__).resolve().parent.parent
TINY_DECODE = {"size": "tiny", "batch": 1, "context": 8, "window": 4, "sdpa": "auto"}
TINY_PREFILL = {"size": "tiny", "prompt": 16, "sdpa": "auto"}


@pytest.fixture(scope="module")
def suite():
    return registry.load_source({"path": str(ROOT / "suites" / "inference.py")})


@pytest.fixture(scope="module")
def inference(suite):
    return suite.module


@pytest.fixture(scope="module")
def cpu():
    return get_backend("cpu")


def key(bench: str = "decode", params: dict | None = None, dtype: str = "float32", mode: str = "eager",
        backend: str = "cpu") -> CaseKey:
    default = TINY_DECODE if bench == "decode" else TINY_PREFILL
    return CaseKey.make("inference", bench, default if params is None else params, backend, dtype, mode)


def run(suite, k: CaseKey, backend) -> Result:
    """One case through the harness, quick profile (a few dozen tiny calls)."""
    bench = next(b for b in suite.benchmarks if b.name == k.benchmark)
    return execute.run_case(bench, k, backend, budget=None, profile="quick")


# --- the decoder ---------------------------------------------------------------------------------------
def test_kv_cache_decode_gives_the_logits_of_a_full_recompute(inference):
    model = inference.Decoder(inference.DECODER_SIZES["tiny"]).eval()
    tokens = torch.randint(0, 512, (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        expected = [inference.full_logits(model, tokens[:, :n]) for n in (10, 11, 12)]
        model.setup_cache(2, 16, torch.float32, torch.device("cpu"))
        got = [model(tokens[:, :9], torch.arange(9))]
        got[0] = model(tokens[:, 9:10], torch.tensor([9]), decode=True)
        got.append(model(tokens[:, 10:11], torch.tensor([10]), decode=True))
        got.append(model(tokens[:, 11:12], torch.tensor([11]), decode=True))
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_decode_without_the_mask_would_see_stale_cache_entries(inference):
    """The cache's later positions hold stale keys from an earlier sequence; the mask must hide them."""
    model = inference.Decoder(inference.DECODER_SIZES["tiny"]).eval()
    tokens = torch.randint(0, 512, (1, 6), generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        expected = inference.full_logits(model, tokens)
        model.setup_cache(1, 16, torch.float32, torch.device("cpu"))
        model(torch.randint(0, 512, (1, 16), generator=torch.Generator().manual_seed(5)), torch.arange(16))
        model(tokens[:, :5], torch.arange(5))
        got = model(tokens[:, 5:6], torch.tensor([5]), decode=True)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_tied_head_and_sizes(inference):
    model = inference.Decoder(inference.DECODER_SIZES["tiny"])
    assert not any(n.startswith("head") for n, _ in model.named_parameters())  # the head is the embedding
    for size in inference.DECODER_SIZES.values():
        with torch.device("meta"):
            m = inference.Decoder(size)
        assert sum(p.numel() for p in m.parameters()) == size.parameters
    assert 115e6 < inference.DECODER_SIZES["gpt2-124m"].parameters < 130e6


def test_kv_bytes_per_token_follow_the_cache_dtype(inference):
    model = inference.Decoder(inference.DECODER_SIZES["tiny"])
    model.setup_cache(1, 8, torch.float32, torch.device("cpu"))
    assert model.kv_bytes_per_token() == 2 * 2 * 128 * 4  # keys and values, 2 layers, 128 wide, float32
    model.setup_cache(1, 8, torch.bfloat16, torch.device("cpu"))
    assert model.kv_bytes_per_token() == 2 * 2 * 128 * 2


# --- per-call timing ------------------------------------------------------------------------------------
def test_per_call_samples_time_each_call_with_its_own_cuda_events(inference):
    torch_mod, _ = fake_torch()
    FakeEvent.log = []
    calls = []
    samples = inference.per_call_samples(CudaBackend(torch_mod).timer(), lambda: calls.append(1), (3, 3, 0.0))
    assert samples == [2.5e-3] * 3  # one sample per call, each the events' elapsed time
    assert len(calls) == 3
    assert FakeEvent.log == ["record", "record", "event-sync"] * 3


def test_per_call_samples_stop_at_the_time_budget_once_enough_calls_are_in(inference):
    class Clock:
        t = 0.0

        def __call__(self):
            return self.t

    clock = Clock()

    class Timer:
        def block(self, fn, loops):
            assert loops == 1
            fn()
            clock.t += 0.25
            return 0.25

    assert len(inference.per_call_samples(Timer(), lambda: None, (2, 100, 1.0), clock=clock)) == 4  # 1 s spent
    assert len(inference.per_call_samples(Timer(), lambda: None, (30, 100, 1.0), clock=clock)) == 30  # owed
    assert len(inference.per_call_samples(Timer(), lambda: None, (1, 7, 100.0), clock=clock)) == 7  # at most


# --- the harness runs the cases ---------------------------------------------------------------------------
@pytest.mark.parametrize("bench", ["decode", "prefill"])
def test_an_eager_decoder_case_gives_per_call_samples_and_its_metrics(suite, inference, cpu, bench):
    r = run(suite, key(bench), cpu)
    assert r.status == "ok", r.reason
    assert r.loops_per_sample == 1 and len(r.samples) >= inference.SAMPLING["quick"][1]
    assert r.timing_method == cpu.timer().method
    assert r.metrics["sdpa_backend"] in ("flash", "math")
    assert r.metrics["kv_cache_bytes_per_token"] == 2 * 2 * 128 * 4
    assert r.work["items_unit"] == "tokens"
    inference.derive([r])
    prefix = "itl" if bench == "decode" else "ttft"
    assert r.metrics[f"{prefix}_p50_s"] == pytest.approx(sorted(r.samples)[len(r.samples) // 2], rel=0.5)
    assert r.metrics[f"{prefix}_calls"] == len(r.samples)
    if len(r.samples) < 100:
        assert r.metrics[f"{prefix}_p99_s"] is None and "p99 needs >= 100 calls" in r.metrics[f"{prefix}_note"]
    rate = "decode_tokens_per_s" if bench == "decode" else "prefill_tokens_per_s"
    assert r.metrics[rate] > 0


def test_the_decode_case_holds_inference_mode_across_its_steps_instead_of_entering_it_per_step(
        suite, inference, cpu, monkeypatch):
    """As a generation loop does: the case's scope is entered once around the guard, warm-up and timed
    steps, and no step enters inference mode (or any scope) of its own."""
    entered, seen = [], []
    real = torch.inference_mode

    class Counting(real):
        def __enter__(self):
            entered.append(1)
            return super().__enter__()

    def spy(timer, fn, calls, *args, **kwargs):
        n = len(entered)
        for _ in range(5):
            fn()
            seen.append(torch.is_inference_mode_enabled())
        assert len(entered) == n  # five steps, no scope entered
        return [1e-3] * calls[0]

    monkeypatch.setattr(torch, "inference_mode", Counting)
    monkeypatch.setattr(inference, "per_call_samples", spy)
    r = run(suite, key("decode"), cpu)
    assert r.status == "ok", r.reason
    assert seen == [True] * 5


def test_the_decode_loop_wraps_back_to_the_prompt_after_its_window(inference):
    seen = []
    loop = inference.DecodeLoop(lambda tok, pos: (seen.append(int(pos)), torch.zeros(1, 5))[1],
                                torch.zeros(1, 1, dtype=torch.long), context=8, window=3, device=torch.device("cpu"))
    for _ in range(7):
        loop()
    assert seen == [8, 9, 10, 8, 9, 10, 8]


# --- the correctness guard ------------------------------------------------------------------------------
def test_guard_passes_close_outputs_and_names_the_error_of_drifting_ones(inference):
    ref = torch.linspace(-1, 1, 100)
    assert inference.guard(ref + 1e-4, ref, "float32", "x") == pytest.approx(1e-4, rel=1e-3)
    assert inference.guard(ref + 5e-2, ref, "bfloat16", "x") == pytest.approx(5e-2, rel=1e-3)
    with pytest.raises(inference.GuardError, match=r"x: output drifts from eager float32 by 5\.00e-02"):
        inference.guard(ref + 5e-2, ref, "float16", "x")
    bad = ref.clone()
    bad[3] = float("nan")
    with pytest.raises(inference.GuardError, match="1 of 100 outputs are NaN or Inf"):
        inference.guard(bad, None, "float32", "x")


class PlantedBug(torch.nn.Module):
    """The decoder with a numerical bug: attention scores scaled 1.5x too much (a wrong 1/sqrt(d))."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        real = torch.nn.functional.scaled_dot_product_attention

        def wrong(q, k, v, attn_mask=None, is_causal=False, **kw):
            return real(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=1.5 / q.shape[-1] ** 0.5)

        torch.nn.functional.scaled_dot_product_attention = wrong
        try:
            return self.model(*args, **kwargs)
        finally:
            torch.nn.functional.scaled_dot_product_attention = real


@pytest.mark.parametrize("bench", ["decode", "prefill"])
def test_the_guard_fails_a_compiled_case_with_a_planted_numerical_bug(suite, inference, cpu, monkeypatch, bench):
    monkeypatch.setattr(inference, "compile_model", lambda module, mode: PlantedBug(module))
    r = run(suite, key(bench, mode="compile"), cpu)
    assert r.status == "failed"
    assert "GuardError" in r.reason and "drifts from eager float32 by" in r.reason and "5e-03 tolerance" in r.reason


def test_a_faithful_compiled_case_passes_the_guard_and_reports_compile_time(suite, inference, cpu, monkeypatch):
    monkeypatch.setattr(inference, "compile_model", lambda module, mode: module)  # eager stands in
    r = run(suite, key("decode", mode="compile"), cpu)
    assert r.status == "ok", r.reason
    assert r.metrics["guard_rel_error"] == 0.0
    assert r.metrics["compile_s"] >= 0.0


# --- what runs where --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "dtype", "backend", "sdpa", "expect"), [
    ("reduce-overhead", "float32", "cpu", "auto", "CUDA only"),
    ("max-autotune", "float32", "mps", "auto", "CUDA only"),
    ("eager", "float32", "cpu", "efficient", "no CPU kernel"),
    ("eager", "float32", "cpu", "cudnn", "no CPU kernel"),
    ("eager", "float32", "mps", "math", "CPU and CUDA only"),
    ("reduce-overhead", "float16", "cuda", "flash", None),
    ("eager", "float32", "cpu", "math", None),
])
def test_unsupported_combinations_have_a_one_line_reason(inference, mode, dtype, backend, sdpa, expect):
    reason = inference.unsupported(key(params={**TINY_DECODE, "sdpa": sdpa}, mode=mode, dtype=dtype, backend=backend))
    assert reason == expect if expect is None else expect in reason and "\n" not in reason


def test_reduced_precision_on_a_cpu_without_its_instructions_is_skipped(inference, monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {}, raising=False)
    for dtype in ("bfloat16", "float16"):
        assert "instructions on this CPU" in inference.unsupported(key(dtype=dtype))
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True, "amx_fp16": True}, raising=False)
    assert inference.unsupported(key(dtype="bfloat16")) is None
    assert inference.unsupported(key(dtype="float16")) is None


# --- CUDA paths, on a GPU-shaped fake that computes on the CPU ---------------------------------------------
@pytest.fixture
def fake_cuda():
    return gpu_shaped_backend("cuda")


def test_float16_autocast_runs_where_the_device_has_it_and_is_guarded(suite, fake_cuda):
    r = run(suite, key("decode", dtype="float16", backend="cuda"), fake_cuda)
    assert r.status == "ok", r.reason
    assert 0 < r.metrics["guard_rel_error"] <= 2e-2
    assert r.metrics["kv_cache_bytes_per_token"] == 2 * 2 * 128 * 2  # the cache holds float16


@pytest.mark.parametrize(("sdpa", "kernel"), [("auto", ("flash", "math")), ("math", ("math",)),
                                               ("flash", ("flash",))])
def test_the_sdpa_backend_in_use_is_recorded_and_selectable(suite, fake_cuda, sdpa, kernel):
    r = run(suite, key("prefill", params={**TINY_PREFILL, "sdpa": sdpa}, backend="cuda"), fake_cuda)
    assert r.status == "ok", r.reason
    assert r.metrics["sdpa"] == sdpa and r.metrics["sdpa_backend"] in kernel


def test_a_forced_sdpa_backend_that_cannot_run_the_case_is_skipped_with_its_error(suite, fake_cuda):
    r = run(suite, key("decode", params={**TINY_DECODE, "sdpa": "efficient"}, backend="cuda"), fake_cuda)
    assert r.status == "skipped"
    assert r.reason.startswith("SDPA backend efficient cannot run this attention here:")



# --- derive -----------------------------------------------------------------------------------------------
def _result(k: CaseKey, call_s: float, **metrics) -> Result:
    samples = [call_s * f for f in (0.99, 1.0, 1.01, 1.0, 0.995, 1.005, 1.0)]
    return Result(key=k, status="ok", samples=samples, metrics=dict(metrics))


def test_derive_names_the_fastest_mode_of_each_model_with_its_interval(inference):
    b1, b8 = TINY_DECODE, {**TINY_DECODE, "batch": 8}
    eager = _result(key(params=b1), 0.010)
    compiled = _result(key(params=b1, mode="compile"), 0.004, compile_s=3.0)
    half = _result(key(params=b1, dtype="bfloat16"), 0.008)
    other = _result(key(params=b8), 0.020)
    results = [eager, compiled, half, other]
    inference.derive(results)
    assert compiled.note.startswith("fastest of 3 here: compile/float32, 4 ms per call [")
    assert compiled.note.endswith(", 2.50x eager float32")
    assert compiled.metrics["speedup_vs_eager_float32"] == pytest.approx(2.5)
    assert compiled.metrics["break_even_calls"] == 500  # 3 s / 6 ms saved per call
    assert half.metrics["speedup_vs_eager_float32"] == pytest.approx(1.25) and "break_even_calls" not in half.metrics
    assert eager.note is None and eager.metrics["fastest_here"] == "compile/float32"
    assert other.note.startswith("fastest of 1 here: eager/float32")  # batch 8 is a model of its own
    assert other.metrics["decode_tokens_per_s"] == pytest.approx(8 * 7 / sum(other.samples))
    assert other.metrics["itl_p50_s"] == pytest.approx(0.020)
    before = [dict(r.metrics) for r in results]
    inference.derive(results)  # called after every case: must not compound
    assert [r.metrics for r in results] == before


def test_payoff_never_when_the_compiled_call_is_not_faster(inference):
    assert inference.payoff(0.010, 0.012, 5.0) == (pytest.approx(10 / 12), None)
    assert inference.payoff(0.010, 0.005, None) == (pytest.approx(2.0), None)
    with pytest.raises(ValueError):
        inference.payoff(0.0, 0.001, 1.0)


# --- end to end -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_quick_run_of_the_tiny_decoder_through_the_cli(tmp_path):
    from conftest import run_cli

    out = tmp_path / "r.json"
    run_cli("run", "--suite", "inference", "--profile", "quick", "--backend", "cpu", "--rounds", "1", "--quiet",
            "--filter", r"inference/decode.*size=tiny.* eager$", "-o", str(out), check_rc=0)
    from benchbench import load

    results = {(r.key.params_dict["batch"], r.key.dtype): r for r in load(str(out)).results}
    assert {k[0] for k in results} == {1, 8}
    for (batch, dtype), r in results.items():
        if dtype != "float32":
            assert r.status == "skipped" and "instructions on this CPU" in r.reason
            continue
        assert r.status == "ok", r.reason
        assert r.loops_per_sample == 1 and len(r.samples) >= 10
        m = r.metrics
        assert m["itl_calls"] == len(r.samples) and m["itl_p50_s"] > 0
        assert m["decode_tokens_per_s"] == pytest.approx(batch * len(r.samples) / sum(r.samples))
        assert r.note.startswith("fastest of 1 here: eager/float32")


# --- the decode check script's table --------------------------------------------------------------------
@pytest.fixture
def decode_check(monkeypatch):
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # its doc_markers, as when it runs as a script

    spec = importlib.util.spec_from_file_location("inference_decode_check",
                                                  ROOT / "benchmarks" / "inference_decode_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_decode_check_table_says_within_five_percent_only_when_the_interval_is(decode_check, tmp_path):
    row = {"size": "tiny", "batch": 1, "steps": 105, "blocks": 48, "suite": 1000.0, "plain": 1010.0,
           "ratio": (0.99, 0.98, 1.0), "aa": (1.0, 0.99, 1.01), "instances": [0.985, 0.995],
           "gc_share": 0.012, "timer_share": 0.0001}
    rows = [row, {**row, "batch": 8, "ratio": (0.9, 0.88, 0.93)}, {**row, "batch": 16, "ratio": (0.97, 0.9, 1.02)}]
    text = decode_check.table(rows, "header")
    assert ("| tiny | 1 | 48 x 105 | 1,000 | 1,010 | 0.990 [0.980, 1.000] | 0.985, 0.995 | yes | "
            "1.000 [0.990, 1.010] | 1.20%, 0.010% |") in text
    assert "| 0.900 [0.880, 0.930] | 0.985, 0.995 | **no** |" in text  # the whole interval beyond 5%
    assert "| 0.970 [0.900, 1.020] | 0.985, 0.995 | unresolved |" in text  # it reaches beyond 5%
    assert decode_check.median_interval([1.0] * 5 + [2.0] * 6) == (2.0, 1.0, 2.0)
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{decode_check.BEGIN}\nold\n{decode_check.END}\nafter\n")
    decode_check.write(doc, text)
    assert doc.read_text() == f"before\n{decode_check.BEGIN}\n{text}\n{decode_check.END}\nafter\n"
    doc.write_text("no markers")
    with pytest.raises(SystemExit, match="markers"):
        decode_check.write(doc, text)


def test_decode_check_decodes_the_plain_loops_on_the_suites_own_model(decode_check):
    """The check's plain loops share the suite case's model and KV cache (one instance, so the ratio is the
    timing and the step's code, not where two instances' tensors landed); the separate mode builds its own."""
    from benchbench.measure.backends import get as get_backend
    from benchbench.run import registry

    suite = registry.load_source({"path": str(ROOT / "suites" / "inference.py")})
    cpu = get_backend("cpu")
    block, model = decode_check.suite_decoder(suite, cpu, "tiny", 2, 8, 4, "quick")
    assert isinstance(model, suite.module.Decoder) and model.blocks[0].k_cache.shape[0] == 2
    cache = model.blocks[0].k_cache.data_ptr()
    built = []
    original = suite.module.Decoder.__init__
    suite.module.Decoder.__init__ = lambda self, *a, **k: (built.append(1), original(self, *a, **k))[1]
    try:
        shared = decode_check.plain_decoder(suite.module, cpu, "tiny", 2, 8, 4, model)
        assert not built  # no model of its own
        separate = decode_check.plain_decoder(suite.module, cpu, "tiny", 2, 8, 4)
        assert built == [1]
    finally:
        suite.module.Decoder.__init__ = original
    for timed in (block, shared, separate):
        rate, seconds = timed(3)
        assert rate == pytest.approx(2 * 3 / seconds) and seconds > 0
    assert model.blocks[0].k_cache.data_ptr() == cache  # decoded in place, in the case's cache
