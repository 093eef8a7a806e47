"""The tensor_ops suite: FLOP/byte formulas against hand-computed values, per-backend sizes, skip
paths on fake backends, and every setup run once at a tiny size. Nothing here is timed."""

import math

import pytest
import torch
from fakes import TINY_BUDGET, FakeBackend, steady_backend

from benchbench.api import Context, cpu_limit_reason
from benchbench.errors import Skip
from benchbench.model.report import CaseKey
from benchbench.run import registry
from benchbench.run.execute import run_case

TINY = TINY_BUDGET


@pytest.fixture(scope="module")
def suite():
    return registry.discover(names=["tensor_ops"])[0]


@pytest.fixture(scope="module")
def ops(suite):
    return suite.module


@pytest.fixture
def emulated_half(ops, monkeypatch):
    """Pretend this CPU has no native bfloat16/float16 units, whatever CPU the test runs on."""
    monkeypatch.setattr(FakeBackend, "emulates", lambda self, dtype: dtype in ("bfloat16", "float16"))


fake = steady_backend


def key(bench, params=None, backend="cpu", dtype="float32"):
    return CaseKey.make("tensor_ops", bench, params or {}, backend, dtype)


def setup(suite, bench, params=None, backend=None, dtype="float32"):
    """Call a benchmark's setup directly (no timing) and return its Case."""
    backend = backend or fake()
    ctx = Context(backend=backend, key=key(bench, params, backend.name, dtype), profile="quick")
    return suite.benchmark(bench).setup(ctx, **(params or {}))


# --- formulas, pinned against hand-computed values ----------------------------------------------
def test_matmul_and_linear_formulas(ops):
    assert ops.dims("16x4096x8") == (16, 4096, 8)
    assert ops.matmul_flops(2, 3, 4) == 48  # 2 * 2*3*4
    assert ops.matmul_flops(2, 3, 4, batch=5) == 240
    assert ops.matmul_bytes(2, 3, 4, itemsize=4) == (6 + 12 + 8) * 4 == 104
    assert ops.matmul_bytes(2, 3, 4, itemsize=2, batch=3) == 156
    assert ops.linear_bytes(batch=2, fin=3, fout=4, itemsize=4) == (6 + 12 + 4 + 8) * 4 == 120


def test_memory_formulas(ops):
    assert ops.copy_bytes(1000, 4) == 8000  # read + write
    assert ops.transfer_bytes(1000, 4) == 4000  # once over the link
    assert ops.elementwise_bytes("add", 10, 4) == 120
    assert ops.elementwise_bytes("add_inplace", 10, 2) == 60
    assert ops.elementwise_bytes("mul", 10, 4) == 120
    assert ops.elementwise_bytes("gelu_chain", 10, 4) == 160  # x, y, z read, out written
    assert ops.reduction_bytes("sum", rows=4, cols=6, dim=1, itemsize=4) == 96 + 16
    assert ops.reduction_bytes("sum", rows=4, cols=6, dim=0, itemsize=4) == 96 + 24
    assert ops.reduction_bytes("max", rows=4, cols=6, dim=1, itemsize=4) == 96 + 16 + 32  # + int64 indices
    assert ops.softmax_bytes(4, 6, 2) == 96
    assert ops.layer_norm_bytes(4, 6, 4) == 192 + 48
    assert ops.gather_bytes(10, 4) == 10 * (8 + 8) == 160
    assert ops.scatter_add_bytes(10, 4) == 10 * (8 + 12) == 200
    assert ops.index_rows_bytes(rows=3, cols=5, itemsize=4) == 24 + 120
    assert ops.mask_select_bytes(mask_len=10, selected_rows=3, cols=5, itemsize=4) == 10 + 120


def test_conv_formulas(ops):
    assert ops.conv_out_size(56, 3, 1, 1) == 56
    assert ops.conv_out_size(224, 7, 2, 3) == 112
    assert ops.conv2d_flops(batch=1, c=2, h=4, k=3, r=3, stride=1, pad=1) == 2 * 3 * 2 * 9 * 16 == 1728
    # ResNet-50 stem at batch 1: 118 MFLOP (the well-known 0.118 GMAC x 2 ... per image: 64*3*49*112*112*2)
    assert ops.conv2d_flops(1, 3, 224, 64, 7, 2, 3) == 2 * 64 * 3 * 49 * 112 * 112 == 236027904


# --- sizes and limits ---------------------------------------------------------------------------
def test_ceiling_sizes_per_backend(ops):
    assert ops.ceiling_matmul_n("cpu", "float32") == 2048
    assert ops.ceiling_matmul_n("cpu", "bfloat16", native=False) == 1024
    assert ops.ceiling_matmul_n("cpu", "bfloat16", native=True) == 2048
    assert ops.ceiling_matmul_n("cuda", "float16") == 8192
    assert ops.ceiling_matmul_n("mps", "float32") == 4096
    assert ops.ceiling_copy_numel("cpu") == 2**26
    assert ops.ceiling_copy_numel("cuda") == 2**28


def test_cpu_limits(ops):
    fp32_ceiling = ops.matmul_flops(2048, 2048, 2048)
    assert cpu_limit_reason("cpu", "float32", fp32_ceiling, emulated=False) is None
    reason = cpu_limit_reason("cpu", "float32", ops.matmul_flops(4096, 4096, 4096), emulated=False)
    assert reason and "137 GFLOP" in reason and "17 GFLOP limit" in reason
    assert cpu_limit_reason("cpu", "bfloat16", ops.matmul_flops(256, 256, 256), emulated=True) is None
    reason = cpu_limit_reason("cpu", "float16", ops.matmul_flops(512, 512, 512), emulated=True)
    assert reason and "no native float16" in reason
    assert cpu_limit_reason("cpu", "bfloat16", ops.matmul_flops(1024, 1024, 1024), emulated=False) is None
    # nn.Linear's layout is an order of magnitude faster when emulated, so it gets a larger budget
    linear_512 = ops.matmul_flops(512, 1024, 1024)
    assert cpu_limit_reason("cpu", "bfloat16", linear_512, emulated=True)
    assert cpu_limit_reason("cpu", "bfloat16", linear_512, True, emulated_limit=ops.CPU_EMULATED_HALF_NT_FLOP_LIMIT) is None
    assert cpu_limit_reason("cuda", "float16", 1e18, emulated=True) is None


def test_overview_keeps_the_representative_cases_and_stays_small(suite):
    overview = [k for b in suite.benchmarks for k in b.cases("cpu", overview=True)]
    labels = {k.label for k in overview}
    assert "tensor_ops/matmul[n=1024] cpu float32" in labels
    assert "tensor_ops/add[numel=16777216] cpu float32" in labels
    assert "tensor_ops/ceiling_matmul cpu float32" in labels and "tensor_ops/ceiling_copy cpu float32" in labels
    assert len(overview) <= 6


def test_quick_profile_covers_every_benchmark_with_a_narrower_grid_than_default(suite):
    for b in suite.benchmarks:
        quick, default = b.cases("cpu", "quick"), b.cases("cpu", "default")
        assert quick, b.name
        assert len(quick) <= len(default) <= len(b.cases("cpu", "full")), b.name


# --- skip paths on fake backends ----------------------------------------------------------------
def test_backend_dtype_reason_skips_before_setup(suite):
    be = fake(dtype_reasons={"tf32": "TF32 is a GPU tensor-core format"})
    r = run_case(suite.benchmark("ceiling_matmul"), key("ceiling_matmul", dtype="tf32"), be, TINY)
    assert (r.status, r.reason) == ("skipped", "TF32 is a GPU tensor-core format")


def test_tf32_off_cuda_is_skipped_by_the_suite(suite):
    r = run_case(suite.benchmark("matmul"), key("matmul", {"n": 8}, backend="mps", dtype="tf32"), fake("mps"), TINY)
    assert r.status == "skipped" and "CUDA only" in r.reason


def test_transfers_are_skipped_on_the_cpu(suite):
    k = key("transfer", {"direction": "h2d", "memory": "pinned", "mib": 1}, backend="cpu")
    r = run_case(suite.benchmark("transfer"), k, fake("cpu"), TINY)
    assert r.status == "skipped" and "cuda, mps, xpu only" in r.reason


def test_pinned_transfer_skips_where_memory_cannot_be_pinned(suite, monkeypatch):
    def no_pinning(self, *args, **kwargs):
        raise RuntimeError("no pinned memory here\nmore")

    monkeypatch.setattr(torch.Tensor, "pin_memory", no_pinning)
    k = key("transfer", {"direction": "d2h", "memory": "pinned", "mib": 1}, backend="mps")
    r = run_case(suite.benchmark("transfer"), k, fake("mps"), TINY)
    assert r.status == "skipped" and r.reason == "pinned host memory is not available with mps: no pinned memory here"


@pytest.mark.parametrize(("bench", "params", "dtype"), [
    ("matmul", {"n": 1024}, "bfloat16"),
    ("matmul", {"n": 4096}, "float32"),
    ("matmul_skinny", {"shape": "16x4096x4096"}, "float16"),
    ("bmm", {"shape": "64x256x64x256"}, "bfloat16"),
    ("linear", {"batch": 512, "features": 4096}, "bfloat16"),
    ("conv2d", {"shape": "3x3_c64", "batch": 8, "layout": "nchw"}, "bfloat16"),
])
def test_too_much_work_for_a_cpu_is_skipped_before_allocating(suite, emulated_half, bench, params, dtype):
    r = run_case(suite.benchmark(bench), key(bench, params, dtype=dtype), fake("cpu"), TINY)
    assert r.status == "skipped" and "GFLOP per call is over the" in r.reason


def test_small_half_precision_matmul_runs_on_an_emulating_cpu(suite, emulated_half):
    case = setup(suite, "matmul", {"n": 256}, dtype="bfloat16")
    assert case.flops == 2 * 256**3
    linear = setup(suite, "linear", {"batch": 512, "features": 1024}, dtype="bfloat16")
    assert linear.flops == 2 * 512 * 1024 * 1024


def test_ceiling_sweeps_sizes_and_layouts(ops):
    fp32 = ops.ceiling_matmul_candidates("cpu", "float32")
    assert {n for n, _ in fp32} == {256, 512, 1024, 2048} and len(fp32) == 12
    assert {layout for _, layout in fp32} == {"a@b", "a@w.T", "a.T@b"}
    emulated = ops.ceiling_matmul_candidates("cpu", "bfloat16", native=False)
    assert emulated == [(128, "a@w.T"), (256, "a@w.T"), (512, "a@w.T"), (1024, "a@w.T")]
    assert {n for n, _ in ops.ceiling_matmul_candidates("cuda", "float16")} == {1024, 2048, 4096, 8192}
    assert ops.ceiling_copy_candidates("cpu") == [(2**25, "copy"), (2**25, "in-place"), (2**26, "copy"),
                                                  (2**26, "in-place")]


@pytest.mark.parametrize("layout", ["a@b", "a@w.T", "a.T@b"])
def test_each_ceiling_layout_computes_what_it_says(ops, monkeypatch, layout):
    made = []
    real = torch.randn

    def remembering_randn(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(torch, "randn", remembering_randn)
    ctx = Context(backend=fake(), key=key("ceiling_matmul"), profile="quick")
    out = ops._matmul_call(ctx, 8, layout)()
    a, b = made
    expected = {"a@b": a @ b, "a@w.T": a @ b.t(), "a.T@b": a.t() @ b}[layout]
    assert torch.allclose(out, expected, atol=1e-5)


def test_ceiling_matmul_keeps_the_fastest_candidate_and_the_work_of_the_largest(suite, ops, monkeypatch):
    monkeypatch.setitem(ops.CEILING_MATMUL_N, "cpu", 512)
    seen = []

    def fake_best(ctx, fn):  # per call: 128 a.T@b is the fastest per FLOP, the rest at one rate
        n, layout = ops.ceiling_matmul_candidates("cpu", "float32")[len(seen)]
        seen.append((n, layout))
        return ops.matmul_flops(n, n, n) / (200e9 if (n, layout) == (128, "a.T@b") else 100e9)

    monkeypatch.setattr(ops, "_best_call_s", fake_best)
    case = setup(suite, "ceiling_matmul")
    assert len(seen) == 12
    assert (case.bound, case.note, case.metrics) == ("compute", "128x128x128 a.T@b x64, best of 12", {})
    assert case.flops == ops.matmul_flops(512, 512, 512)  # the same work per call, whichever size won
    assert case.bytes == 64 * ops.matmul_bytes(128, 128, 128, 4)
    calls = []
    real = torch.matmul

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "matmul", counting)
    assert tuple(case.fn().shape) == (128, 128) and len(calls) == 64


# --- every setup at a tiny size: declared work matches the formulas, the callable runs ----------
TINY_CASES = [
    ("matmul", {"n": 8}, "float32", {"flops": 1024, "bytes": 768}),
    ("matmul_skinny", {"shape": "2x3x4"}, "float32", {"flops": 48, "bytes": 104}),
    ("bmm", {"shape": "2x3x4x5"}, "float32", {"flops": 240, "bytes": 2 * (12 + 20 + 15) * 4}),
    ("linear", {"batch": 2, "features": 4}, "float32", {"flops": 64, "bytes": (8 + 16 + 4 + 8) * 4}),
    ("add", {"numel": 16}, "float32", {"items": 16, "bytes": 192}),
    ("add_inplace", {"numel": 16}, "bfloat16", {"items": 16, "bytes": 96}),
    ("mul", {"numel": 16}, "float16", {"items": 16, "bytes": 96}),
    ("gelu_chain", {"numel": 16}, "float32", {"items": 16, "bytes": 256}),
    ("reduction", {"op": "max", "dim": 0, "shape": "4x6"}, "float32", {"bytes": 96 + 24 + 48}),
    ("reduction", {"op": "mean", "dim": 1, "shape": "4x6"}, "float32", {"bytes": 96 + 16}),
    ("softmax", {"shape": "4x6"}, "float32", {"bytes": 192}),
    ("layer_norm", {"shape": "4x6"}, "float32", {"bytes": 192 + 48}),
    ("copy", {"numel": 16}, "float32", {"bytes": 128}),
    ("create", {"op": "from_list", "numel": 16}, "float32", {"items": 16}),
    ("create", {"op": "randn", "numel": 16}, "float32", {"items": 16}),
    ("create", {"op": "zeros", "numel": 16}, "float32", {"items": 16, "bytes": 64}),
    ("layout", {"op": "view", "shape": "4x6"}, "float32", {"items": 1}),
    ("layout", {"op": "reshape", "shape": "4x6"}, "float32", {"items": 1}),
    ("layout", {"op": "transpose_contiguous", "shape": "4x6"}, "float32", {"bytes": 192}),
    ("indexing", {"op": "rows", "shape": "64x8"}, "float32", {"bytes": 16 * 8 + 2 * 16 * 8 * 4}),
    ("indexing", {"op": "put", "shape": "64x8"}, "float32", {"bytes": 16 * 8 + 2 * 16 * 8 * 4}),
    ("gather_scatter", {"op": "gather", "shape": "8x8"}, "float32", {"bytes": 16 * (8 + 8)}),
    ("gather_scatter", {"op": "scatter_add", "shape": "8x8"}, "float32", {"bytes": 16 * (8 + 12)}),
    ("dispatch_overhead", {}, "float32", {"items": 1}),
]


@pytest.mark.parametrize(("bench", "params", "dtype", "work"), TINY_CASES,
                         ids=[f"{c[0]}-{'-'.join(map(str, c[1].values()))}-{c[2]}" for c in TINY_CASES])
def test_tiny_case_declares_its_work_and_runs(suite, bench, params, dtype, work):
    case = setup(suite, bench, params, dtype=dtype)
    declared = {name: getattr(case, name) for name in ("items", "flops", "bytes") if getattr(case, name)}
    assert declared == work
    case.fn()


def test_mask_indexing_counts_the_rows_it_selects(suite):
    case = setup(suite, "indexing", {"op": "mask", "shape": "64x8"})
    out = case.fn()
    assert case.bytes == 64 + 2 * out.shape[0] * 8 * 4  # measured from the mask, not assumed
    assert 0 < out.shape[0] < 64


def test_conv_declares_flops_for_its_shape_in_both_layouts(suite, ops):
    for layout in ("nchw", "channels_last"):
        case = setup(suite, "conv2d", {"shape": "1x1_c256", "batch": 1, "layout": layout})
        assert case.flops == 2 * 64 * 256 * 56 * 56
        assert tuple(case.fn().shape) == (1, 64, 56, 56)


def test_ceilings_are_sized_per_backend_and_say_so(suite, ops, monkeypatch, emulated_half):
    monkeypatch.setitem(ops.CEILING_MATMUL_N, "cpu", 16)
    monkeypatch.setitem(ops.CEILING_COPY_NUMEL, "cpu", 1024)
    monkeypatch.setitem(ops.SWEEP_SECONDS, "quick", 0.0)
    case = setup(suite, "ceiling_matmul")
    assert (case.flops, case.bound) == (2 * 16**3, "compute")
    assert case.note.startswith("16x16x16 a") and case.note.endswith(", best of 3")
    assert tuple(case.fn().shape) == (16, 16)
    monkeypatch.setattr(ops, "_best_call_s", lambda ctx, fn: 1.0)  # emulated half: `a @ w.T` only, 1024 wins
    half = setup(suite, "ceiling_matmul", dtype="float16")
    assert half.flops == 2 * 1024**3 and half.note == "1024x1024x1024 a@w.T, best of 4"
    monkeypatch.undo()
    monkeypatch.setitem(ops.CEILING_COPY_NUMEL, "cpu", 1024)
    monkeypatch.setitem(ops.SWEEP_SECONDS, "quick", 0.0)
    copy = setup(suite, "ceiling_copy")
    assert copy.bytes == 2 * 1024 * 4 and copy.bound == "memory"
    assert copy.note.endswith("best of 4")
    out = copy.fn()
    assert torch.equal(out, copy.fn()) and bool((out == 1.5).all())


# --- CUDA float32 vs TF32 flags -----------------------------------------------------------------
def _tf32_state():
    mm = torch.backends.cuda.matmul
    try:
        return mm.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    except AttributeError:  # torch < 2.9
        return mm.allow_tf32, torch.backends.cudnn.allow_tf32


@pytest.mark.parametrize(("dtype", "during"), [("tf32", "tf32"), ("float32", "ieee")])
def test_cuda_cases_set_fp32_precision_and_restore_it(suite, dtype, during):
    before = _tf32_state()
    case = setup(suite, "matmul", {"n": 8}, backend=fake("cuda"), dtype=dtype)
    try:
        state = _tf32_state()
        if isinstance(state[0], str):
            assert state == (during, during)
        else:
            assert state == (during == "tf32", during == "tf32")
    finally:
        case.finish()
    assert _tf32_state() == before


def test_cpu_cases_leave_fp32_precision_alone(suite):
    before = _tf32_state()
    case = setup(suite, "matmul", {"n": 8})
    assert case.finish is None and _tf32_state() == before


def test_setup_skip_is_an_exception_the_harness_records(suite, emulated_half):
    with pytest.raises(Skip, match="GFLOP"):
        setup(suite, "matmul", {"n": 2048}, dtype="float16")
    assert math.isfinite(float(setup(suite, "matmul", {"n": 4}).fn().sum()))
