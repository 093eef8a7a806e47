"""Basic tensor operations: how fast they run here, and how close to the device's measured ceiling.

Ceilings first: `ceiling_matmul` (the best of a sweep of square matmul sizes and layouts, per dtype)
and `ceiling_copy` (the best of a few large device-to-device copies) are measured on the device
itself; every FLOP-bound case is shown as a % of the matmul ceiling of its dtype and every
bandwidth-bound case as a % of the copy ceiling, so the numbers mean something on any CPU, GPU or
Mac, datasheet or not. A case that beats its ceiling raises it (see benchbench/analysis/ceilings.py).

Conventions, so that rates compare across cases and machines:
- FLOPs count a multiply-add as 2 and only the matmul/conv arithmetic (bias adds, activations and
  normalisation arithmetic are not counted).
- Bytes are the *essential* traffic: what a perfect kernel must read and write once. Eager PyTorch
  may move more (a chain of ops writes and rereads temporaries); that shows as a lower % of ceiling.
- Ops are timed as everyday code writes them: `x + y` allocates its result. On a GPU the caching
  allocator makes that free; on a CPU a large result costs page faults, which is real but is not
  the kernel: `add_inplace` and `copy` show the allocation-free rate.
- On CUDA, "float32" means IEEE fp32 for matmuls and cuDNN convolutions (cuDNN allows TF32 by
  default) and "tf32" enables TensorFloat-32; each case sets this and restores it afterwards.
- Sizes are explicit in the case key, so a key always means the same work. Cases too slow to time
  on a CPU are skipped with the reason (see `benchbench.api.cpu_limit_reason`); the ceilings are sized per backend
  (see `ceiling_matmul_n`, `ceiling_copy_numel`) and say their size in the note column.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from benchbench import Case, Skip, benchmark
from benchbench.api import CPU_EMULATED_HALF_FLOP_LIMIT, skip_if_too_much_for_a_cpu

if TYPE_CHECKING:  # pragma: no cover
    from benchbench import Context

HALF = ("bfloat16", "float16")
MATMUL_DTYPES = ["float32", "tf32", "bfloat16", "float16"]

# A case on the CPU may do at most this much work per call: the fp32 ceiling's own size (about 0.1 s
# per call on a 2-core server CPU). Half precision without native CPU support (no AVX512-BF16 / AMX /
# FP16 units) is emulated: `a @ b` with both operands row-major runs ~100x slower than fp32 (about
# 1 GFLOP/s on a 2-core EPYC), while the `x @ w.T` layout of nn.Linear runs ~10x slower. Each layout
# gets its own budget of roughly 0.1-0.2 s per call: CPU_FLOP_LIMIT and CPU_EMULATED_HALF_FLOP_LIMIT (~0.13
# GFLOP: `a @ b` at n=256 runs, n=512 does not) are the suite API's defaults (benchbench.api).
CPU_EMULATED_HALF_NT_FLOP_LIMIT = 2**31  # ~2.1 GFLOP: `x @ w.T` (nn.Linear, the ceiling)

CEILING_MATMUL_N = {"cpu": 2048, "cuda": 8192, "mps": 4096, "xpu": 8192}
CPU_EMULATED_HALF_CEILING_N = 1024  # 2.1 GFLOP: the `a @ w.T` budget above
CEILING_COPY_NUMEL = {"cpu": 2**26, "cuda": 2**28, "mps": 2**26, "xpu": 2**27}  # float32 elements

CONV_SHAPES: dict[str, dict[str, int]] = {
    # ResNet-50 style layers at 224x224 input: c in-channels, k out-channels, h=w input size, r=s kernel
    "3x3_c64": {"c": 64, "h": 56, "k": 64, "r": 3, "stride": 1, "pad": 1},
    "1x1_c256": {"c": 256, "h": 56, "k": 64, "r": 1, "stride": 1, "pad": 0},
    "stem_7x7": {"c": 3, "h": 224, "k": 64, "r": 7, "stride": 2, "pad": 3},
}


# --- work per call: pure functions, pinned by tests/test_suite_tensor_ops.py -------------------
def dims(shape: str) -> tuple[int, ...]:
    """'16x4096x4096' -> (16, 4096, 4096)."""
    return tuple(int(p) for p in shape.split("x"))


def matmul_flops(m: int, k: int, n: int, batch: int = 1) -> int:
    return 2 * batch * m * k * n


def matmul_bytes(m: int, k: int, n: int, itemsize: int, batch: int = 1) -> int:
    """Read both operands, write the result."""
    return batch * (m * k + k * n + m * n) * itemsize


def linear_bytes(batch: int, fin: int, fout: int, itemsize: int) -> int:
    """Input, weight and bias read, output written."""
    return (batch * fin + fin * fout + fout + batch * fout) * itemsize


def copy_bytes(numel: int, itemsize: int) -> int:
    """A device-to-device copy reads and writes every element."""
    return 2 * numel * itemsize


def transfer_bytes(numel: int, itemsize: int) -> int:
    """A host<->device transfer is counted once: the bytes that cross the link."""
    return numel * itemsize


def elementwise_bytes(op: str, numel: int, itemsize: int) -> int:
    """Essential traffic: inputs read once, result written once."""
    tensors = {"add": 3, "add_inplace": 3, "mul": 3, "gelu_chain": 4}[op]  # gelu_chain: x, y, z -> out
    return tensors * numel * itemsize


def reduction_bytes(op: str, rows: int, cols: int, dim: int, itemsize: int) -> int:
    """Read the input once, write the reduced result (and max's int64 indices)."""
    out = cols if dim == 0 else rows
    written = out * itemsize + (out * 8 if op == "max" else 0)
    return rows * cols * itemsize + written


def softmax_bytes(rows: int, cols: int, itemsize: int) -> int:
    return 2 * rows * cols * itemsize


def layer_norm_bytes(rows: int, cols: int, itemsize: int) -> int:
    """Input read and output written, plus the weight and bias vectors."""
    return 2 * rows * cols * itemsize + 2 * cols * itemsize


def conv_out_size(h: int, r: int, stride: int, pad: int) -> int:
    return (h + 2 * pad - r) // stride + 1


def conv2d_flops(batch: int, c: int, h: int, k: int, r: int, stride: int, pad: int) -> int:
    """Square input and kernel, no groups: 2 * N * K * C * R * S * Ho * Wo."""
    ho = conv_out_size(h, r, stride, pad)
    return 2 * batch * k * c * r * r * ho * ho


def gather_bytes(count: int, itemsize: int, index_itemsize: int = 8) -> int:
    """torch.gather: read each index and the value it points to, write the value."""
    return count * (index_itemsize + 2 * itemsize)


def scatter_add_bytes(count: int, itemsize: int, index_itemsize: int = 8) -> int:
    """scatter_add_: read each index and source value, read-modify-write the destination."""
    return count * (index_itemsize + 3 * itemsize)


def index_rows_bytes(rows: int, cols: int, itemsize: int, index_itemsize: int = 8) -> int:
    """x[idx] and x[idx] = v over whole rows: the indices, then each row read once and written once."""
    return rows * index_itemsize + 2 * rows * cols * itemsize


def mask_select_bytes(mask_len: int, selected_rows: int, cols: int, itemsize: int) -> int:
    """x[mask] over rows: the bool mask, then each selected row read once and written once."""
    return mask_len + 2 * selected_rows * cols * itemsize


# --- sizes per backend -------------------------------------------------------------------------
def ceiling_matmul_n(backend: str, dtype_name: str | None, native: bool = False) -> int:
    """Side of the ceiling matmul: large enough to saturate the device, small enough to time."""
    if backend == "cpu" and dtype_name in HALF and not native:
        return CPU_EMULATED_HALF_CEILING_N
    return CEILING_MATMUL_N.get(backend, 4096)


def ceiling_copy_numel(backend: str) -> int:
    """Elements (float32) of the ceiling copy: far beyond any cache (2 x 256 MiB on a CPU)."""
    return CEILING_COPY_NUMEL.get(backend, 2**26)


# --- helpers -----------------------------------------------------------------------------------
def _check_runnable(ctx: Context, flops: float, half_limit: float = CPU_EMULATED_HALF_FLOP_LIMIT) -> None:
    """Skip what this backend cannot sensibly run: TF32 off CUDA, too much work per call on a CPU."""
    if ctx.dtype_name == "tf32" and ctx.backend.name != "cuda":
        raise Skip(f"TF32 cases are defined for CUDA only; {ctx.backend.name} would run plain float32")
    skip_if_too_much_for_a_cpu(ctx, flops, half_limit)


def _fp32_precision(ctx: Context) -> Callable[[], None] | None:
    """On CUDA make "float32" IEEE and "tf32" TensorFloat-32 for matmul and cuDNN conv; returns a restore.

    Uses the fp32_precision API of torch >= 2.9 where present (mixing it with the legacy allow_tf32
    flags raises there) and the allow_tf32 flags otherwise. Call it last in setup, so nothing can
    raise between changing the global flags and handing back the restore function.
    """
    if ctx.backend.name != "cuda" or ctx.dtype_name not in ("float32", "tf32"):
        return None
    tf32 = ctx.dtype_name == "tf32"
    mm, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    try:
        before = (mm.fp32_precision, conv.fp32_precision)
    except AttributeError:
        legacy = (mm.allow_tf32, cudnn.allow_tf32)
        mm.allow_tf32 = cudnn.allow_tf32 = tf32

        def restore_legacy() -> None:
            mm.allow_tf32, cudnn.allow_tf32 = legacy

        return restore_legacy
    mm.fp32_precision = conv.fp32_precision = "tf32" if tf32 else "ieee"

    def restore() -> None:
        mm.fp32_precision, conv.fp32_precision = before

    return restore


def _randn(ctx: Context, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, device=ctx.device, dtype=ctx.dtype)


def _matmul_case(ctx: Context, fn: Callable[[], object], flops: int, nbytes: int, note: str = "") -> Case:
    return Case(fn, flops=flops, bytes=nbytes, bound="compute", note=note or None, finish=_fp32_precision(ctx))


# --- ceilings ----------------------------------------------------------------------------------
# Each ceiling is the best of a small sweep, as maximum-achievable-FLOPS finders do: the largest
# square matmul is not always the fastest (on a CPU a size that fits the caches often beats it), and
# the operand layout matters. The sweep times every candidate briefly (best of a few synchronised
# calls), then the winner is timed like any case. One call of a ceiling always does the same work,
# that of the largest candidate (the winner runs as many times as that takes; sizes are powers of
# two), so its time compares across runs whichever candidate won.
MATMUL_LAYOUTS = ("a@b", "a@w.T", "a.T@b")
SWEEP_SECONDS = {"quick": 0.03, "default": 0.1, "full": 0.3}  # per candidate


def ceiling_matmul_candidates(backend: str, dtype_name: str | None, native: bool = False) -> list[tuple[int, str]]:
    """(n, layout) of the sweep: the ceiling size and three halvings below it, in every layout.
    Emulated half precision on a CPU sweeps `a@w.T` only: its other layouts are ~10x slower."""
    top = ceiling_matmul_n(backend, dtype_name, native)
    sizes = [top >> shift for shift in (3, 2, 1, 0) if top >> shift >= min(64, top)]
    layouts = ("a@w.T",) if backend == "cpu" and dtype_name in HALF and not native else MATMUL_LAYOUTS
    return [(n, layout) for n in sizes for layout in layouts]


def _matmul_call(ctx: Context, n: int, layout: str) -> Callable[[], torch.Tensor]:
    a, b = _randn(ctx, n, n), _randn(ctx, n, n)
    out = torch.empty(n, n, device=ctx.device, dtype=ctx.dtype)
    if layout == "a@w.T":
        return lambda: torch.matmul(a, b.t(), out=out)
    if layout == "a.T@b":
        return lambda: torch.matmul(a.t(), b, out=out)
    return lambda: torch.matmul(a, b, out=out)


def _best_call_s(ctx: Context, fn: Callable[[], object]) -> float:
    """Best of a few synchronised calls over the profile's sweep time per candidate. A call longer than
    that time is timed once: its one-time costs are small against it, and a sweep only has to rank
    candidates (the winner is then timed like any case, and a faster case raises the ceiling anyway)."""
    budget = SWEEP_SECONDS.get(ctx.profile, 0.1)
    first, _ = ctx.time_once(fn)
    if first >= budget:
        return first
    best, spent = math.inf, 0.0
    while spent < budget or best == math.inf:
        took, _ = ctx.time_once(fn)
        best, spent = min(best, took), spent + took
    return best


def _repeated(fn: Callable[[], torch.Tensor], times: int) -> Callable[[], torch.Tensor]:
    if times == 1:
        return fn

    def run() -> torch.Tensor:
        for _ in range(times - 1):
            fn()
        return fn()

    return run


@benchmark(dtypes=MATMUL_DTYPES, overview={"dtype": ["float32"]})
def ceiling_matmul(ctx: Context) -> Case:
    """The device's matmul ceiling per dtype: the fastest of a sweep of square matmuls (sizes up to
    the ceiling size, layouts `a@b`, `a@w.T`, `a.T@b`) into a preallocated result.

    CPUs that emulate bfloat16/float16 run nn.Linear's `a @ w.T` 10-15x faster than `a @ b`; a
    ceiling must be the best the device does, not its slowest path (the matmul cases show what
    `a @ b` gets). A case that still beats the ceiling raises it in the report (benchbench/analysis/ceilings.py)."""
    native = not ctx.backend.emulates(ctx.dtype_name)
    _check_runnable(ctx, 0)
    candidates = ceiling_matmul_candidates(ctx.backend.name, ctx.dtype_name, native)
    top = max(n for n, _ in candidates)
    restore = _fp32_precision(ctx)
    try:
        best: tuple[float, int, str, Callable[[], torch.Tensor]] | None = None
        for n, layout in candidates:
            fn = _matmul_call(ctx, n, layout)
            per_flop = _best_call_s(ctx, fn) / matmul_flops(n, n, n)
            if best is None or per_flop < best[0]:
                best = (per_flop, n, layout, fn)  # only the winner's tensors stay allocated
            del fn
    except BaseException:
        if restore:
            restore()
        raise
    _, n, layout, fn = best
    times = (top // n) ** 3
    a_bytes = torch.empty((), dtype=ctx.dtype).element_size()
    note = (f"{n}x{n}x{n} {layout}" + (f" x{times}" if times > 1 else "")
            + f", best of {len(candidates)}")
    return Case(_repeated(fn, times), flops=matmul_flops(top, top, top),
                bytes=times * matmul_bytes(n, n, n, a_bytes), bound="compute", note=note, finish=restore)


def ceiling_copy_candidates(backend: str) -> list[tuple[int, str]]:
    """(numel, form) of the copy sweep: half and full size (both far beyond any cache), copied into
    another tensor or rewritten in place (no write-allocate read on a CPU)."""
    top = ceiling_copy_numel(backend)
    return [(numel, form) for numel in (top // 2, top) for form in ("copy", "in-place")]


def _copy_call(src: torch.Tensor, dst: torch.Tensor, form: str) -> Callable[[], torch.Tensor]:
    if form == "in-place":
        return lambda: src.mul_(1.0)
    return lambda: dst.copy_(src)


@benchmark(dtypes=["float32"], overview=True)
def ceiling_copy(ctx: Context) -> Case:
    """The device's memory-bandwidth ceiling: the fastest of a sweep of large device-to-device
    copies (two sizes; into another tensor, and in place).

    Counted as 2 x numel x itemsize (read + write). A CPU's write-allocate caches also read each
    destination line before writing it, so a copy into another tensor moves ~3x in DRAM; rewriting
    in place (`x.mul_(1)`) has no such extra read. GPUs do not read before writing."""
    candidates = ceiling_copy_candidates(ctx.backend.name)
    top = max(numel for numel, _ in candidates)
    # the values do not matter to a copy, and filling is much faster than drawing random numbers
    src = torch.full((top,), 1.5, device=ctx.device, dtype=ctx.dtype)
    dst = torch.empty_like(src)
    best: tuple[float, int, str, Callable[[], torch.Tensor]] | None = None
    for numel, form in candidates:
        fn = _copy_call(src[:numel], dst[:numel], form)
        per_element = _best_call_s(ctx, fn) / numel
        if best is None or per_element < best[0]:
            best = (per_element, numel, form, fn)
    _, numel, form, fn = best
    times = top // numel
    mib = numel * 4 / 2**20
    note = f"{form} 2 x {mib:.0f} MiB" + (f" x{times}" if times > 1 else "") + f", best of {len(candidates)}"
    return Case(_repeated(fn, times), bytes=copy_bytes(top, 4), bound="memory", note=note)


# --- matmul family -----------------------------------------------------------------------------
@benchmark(params={"n": [256, 1024, 2048, 4096, 8192]}, dtypes=MATMUL_DTYPES,
           profiles={"quick": {"n": [256, 1024, 2048]}, "full": {"n": [128, 256, 512, 1024, 2048, 4096, 8192]}},
           overview={"n": [1024], "dtype": ["float32"]})
def matmul(ctx: Context, n: int) -> Case:
    """Square matrix multiply, n x n @ n x n, as written: `a @ b`."""
    flops = matmul_flops(n, n, n)
    _check_runnable(ctx, flops)
    a, b = _randn(ctx, n, n), _randn(ctx, n, n)
    return _matmul_case(ctx, lambda: a @ b, flops, matmul_bytes(n, n, n, a.element_size()))


@benchmark(params={"shape": ["16x4096x4096", "4096x4096x16", "4096x16x4096", "1x8192x8192"]},
           dtypes=MATMUL_DTYPES,
           profiles={"quick": {"shape": ["16x4096x4096"], "dtype": ["float32", "bfloat16"]}})
def matmul_skinny(ctx: Context, shape: str) -> Case:
    """Skinny matmul, shape MxKxN: (M x K) @ (K x N). Small M or N is bandwidth-bound (a small batch
    through a large layer), small K writes a large result from little arithmetic."""
    m, k, n = dims(shape)
    flops = matmul_flops(m, k, n)
    _check_runnable(ctx, flops)
    a, b = _randn(ctx, m, k), _randn(ctx, k, n)
    return _matmul_case(ctx, lambda: a @ b, flops, matmul_bytes(m, k, n, a.element_size()))


@benchmark(params={"shape": ["64x256x64x256", "32x512x512x512", "256x128x128x128"]}, dtypes=MATMUL_DTYPES,
           profiles={"quick": {"shape": ["64x256x64x256"], "dtype": ["float32", "bfloat16"]}})
def bmm(ctx: Context, shape: str) -> Case:
    """Batched matmul, shape BxMxKxN: B x (M x K) @ (K x N). 64x256x64x256 is attention scores
    (64 heads, 256 tokens, head size 64)."""
    bsz, m, k, n = dims(shape)
    flops = matmul_flops(m, k, n, batch=bsz)
    _check_runnable(ctx, flops)
    a, b = _randn(ctx, bsz, m, k), _randn(ctx, bsz, k, n)
    return _matmul_case(ctx, lambda: torch.bmm(a, b), flops, matmul_bytes(m, k, n, a.element_size(), batch=bsz))


@benchmark(params={"batch": [32, 512], "features": [1024, 4096]}, dtypes=MATMUL_DTYPES,
           profiles={"quick": {"features": [1024], "dtype": ["float32", "bfloat16"]}})
def linear(ctx: Context, batch: int, features: int) -> Case:
    """nn.Linear(features, features) forward (inference, no autograd) on a batch of rows."""
    flops = matmul_flops(batch, features, features)
    _check_runnable(ctx, flops, half_limit=CPU_EMULATED_HALF_NT_FLOP_LIMIT)
    layer = torch.nn.Linear(features, features, device=ctx.device, dtype=ctx.dtype)
    x = _randn(ctx, batch, features)

    def fn() -> torch.Tensor:
        with torch.no_grad():
            return layer(x)

    return _matmul_case(ctx, fn, flops, linear_bytes(batch, features, features, x.element_size()))


@benchmark(params={"shape": list(CONV_SHAPES), "batch": [8, 32], "layout": ["nchw", "channels_last"]},
           dtypes=MATMUL_DTYPES,
           profiles={"quick": {"shape": ["3x3_c64"], "batch": [8], "dtype": ["float32", "bfloat16"]}})
def conv2d(ctx: Context, shape: str, batch: int, layout: str) -> Case:
    """conv2d forward (inference) at ResNet-50 layer shapes, NCHW or channels_last memory format."""
    s = CONV_SHAPES[shape]
    flops = conv2d_flops(batch, s["c"], s["h"], s["k"], s["r"], s["stride"], s["pad"])
    _check_runnable(ctx, flops)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = _randn(ctx, batch, s["c"], s["h"], s["h"]).to(memory_format=fmt)
    w = _randn(ctx, s["k"], s["c"], s["r"], s["r"]).to(memory_format=fmt)

    def fn() -> torch.Tensor:
        with torch.no_grad():
            return F.conv2d(x, w, stride=s["stride"], padding=s["pad"])

    ho = conv_out_size(s["h"], s["r"], s["stride"], s["pad"])
    nbytes = (x.numel() + w.numel() + batch * s["k"] * ho * ho) * x.element_size()
    note = f"{batch}x{s['c']}x{s['h']}x{s['h']} * {s['k']}x{s['c']}x{s['r']}x{s['r']}/{s['stride']}"
    return _matmul_case(ctx, fn, flops, nbytes, note)


# --- memory-bound ops --------------------------------------------------------------------------
def _elementwise(ctx: Context, op: str, numel: int) -> Case:
    x, y = _randn(ctx, numel), _randn(ctx, numel)
    if op == "add":
        fn: Callable[[], object] = lambda: x + y  # noqa: E731
    elif op == "add_inplace":
        fn = lambda: x.add_(y)  # noqa: E731 - x drifts by y each call; finite for millions of calls
    elif op == "mul":
        fn = lambda: x * y  # noqa: E731
    else:
        z = _randn(ctx, numel)
        fn = lambda: F.gelu(x) * y + z  # noqa: E731
    return Case(fn, items=numel, items_unit="elements", bytes=elementwise_bytes(op, numel, x.element_size()),
                bound="memory")


ELEMENTWISE_DTYPES = ["float32", "bfloat16", "float16"]


@benchmark(params={"numel": [2**20, 2**24]}, dtypes=ELEMENTWISE_DTYPES,
           profiles={"quick": {"numel": [2**24], "dtype": ["float32"]}},
           overview={"numel": [2**24], "dtype": ["float32"]})
def add(ctx: Context, numel: int) -> Case:
    """Elementwise x + y into a new tensor: memory-bound."""
    return _elementwise(ctx, "add", numel)


@benchmark(params={"numel": [2**20, 2**24]}, dtypes=ELEMENTWISE_DTYPES,
           profiles={"quick": {"numel": [2**24], "dtype": ["float32", "bfloat16"]}})
def add_inplace(ctx: Context, numel: int) -> Case:
    """In-place x.add_(y): the elementwise kernel without allocating a result."""
    return _elementwise(ctx, "add_inplace", numel)


@benchmark(params={"numel": [2**20, 2**24]}, dtypes=ELEMENTWISE_DTYPES,
           profiles={"quick": {"numel": [2**24], "dtype": ["float32"]}})
def mul(ctx: Context, numel: int) -> Case:
    """Elementwise x * y into a new tensor."""
    return _elementwise(ctx, "mul", numel)


@benchmark(params={"numel": [2**20, 2**24]}, dtypes=ELEMENTWISE_DTYPES,
           profiles={"quick": {"numel": [2**24], "dtype": ["float32"]}})
def gelu_chain(ctx: Context, numel: int) -> Case:
    """gelu(x) * y + z in eager mode: three kernels and two temporaries where a fused kernel needs one
    pass, so its rate against the essential 4 x numel traffic shows what fusion would win."""
    return _elementwise(ctx, "gelu_chain", numel)


@benchmark(params={"op": ["sum", "mean", "max"], "dim": [0, 1], "shape": ["4096x4096"]},
           dtypes=["float32", "bfloat16"], profiles={"quick": {"op": ["sum", "max"], "dtype": ["float32"]}})
def reduction(ctx: Context, op: str, dim: int, shape: str) -> Case:
    """Reduce a rows x cols matrix along dim 0 (across rows, strided) or dim 1 (along contiguous rows)."""
    rows, cols = dims(shape)
    x = _randn(ctx, rows, cols)
    fn = {"sum": lambda: x.sum(dim), "mean": lambda: x.mean(dim), "max": lambda: x.max(dim)}[op]
    return Case(fn, bytes=reduction_bytes(op, rows, cols, dim, x.element_size()), bound="memory")


@benchmark(params={"shape": ["4096x4096", "65536x128"]}, dtypes=["float32", "bfloat16"],
           profiles={"quick": {"shape": ["4096x4096"], "dtype": ["float32"]}})
def softmax(ctx: Context, shape: str) -> Case:
    """Softmax along the last dim of a rows x cols matrix."""
    rows, cols = dims(shape)
    x = _randn(ctx, rows, cols)
    return Case(lambda: torch.softmax(x, dim=-1), bytes=softmax_bytes(rows, cols, x.element_size()),
                bound="memory")


@benchmark(params={"shape": ["4096x4096", "16384x1024"]}, dtypes=["float32", "bfloat16"],
           profiles={"quick": {"shape": ["4096x4096"], "dtype": ["float32"]}})
def layer_norm(ctx: Context, shape: str) -> Case:
    """F.layer_norm over the last dim (rows tokens x cols hidden), with weight and bias."""
    rows, cols = dims(shape)
    x = _randn(ctx, rows, cols)
    w, b = _randn(ctx, cols), _randn(ctx, cols)
    return Case(lambda: F.layer_norm(x, (cols,), w, b), bytes=layer_norm_bytes(rows, cols, x.element_size()),
                bound="memory")


# --- memory traffic ----------------------------------------------------------------------------
@benchmark(params={"numel": [2**20, 2**24]}, dtypes=["float32"], profiles={"quick": {"numel": [2**22]}})
def copy(ctx: Context, numel: int) -> Case:
    """Device-to-device copy into a preallocated tensor (`dst.copy_(src)`); small sizes may fit in cache."""
    src = _randn(ctx, numel)
    dst = torch.empty_like(src)
    return Case(lambda: dst.copy_(src), bytes=copy_bytes(numel, src.element_size()), bound="memory")


@benchmark(params={"direction": ["h2d", "d2h"], "memory": ["pageable", "pinned"], "mib": [16, 256]},
           dtypes=["float32"], backends=("cuda", "mps", "xpu"), profiles={"quick": {"mib": [64]}})
def transfer(ctx: Context, direction: str, memory: str, mib: int) -> Case:
    """Host<->device copy between preallocated tensors; pinned memory copies asynchronously.

    Counted once (bytes over the link), not against the device's copy ceiling: the link is the limit."""
    numel = mib * 2**20 // torch.empty((), dtype=ctx.dtype).element_size()
    pinned = memory == "pinned"
    host = torch.randn(numel, dtype=ctx.dtype)
    if pinned:
        try:
            host = host.pin_memory()
        except RuntimeError as exc:
            raise Skip(f"pinned host memory is not available with {ctx.backend.name}: "
                       f"{str(exc).splitlines()[0]}") from None
    dev = torch.empty(numel, device=ctx.device, dtype=ctx.dtype)
    if direction == "h2d":
        fn = lambda: dev.copy_(host, non_blocking=pinned)  # noqa: E731
    else:
        dev.normal_()
        fn = lambda: host.copy_(dev, non_blocking=pinned)  # noqa: E731
    return Case(fn, bytes=transfer_bytes(numel, host.element_size()), bound="link")


# --- everyday tensor basics --------------------------------------------------------------------
@benchmark(params={"op": ["from_list", "randn", "zeros"], "numel": [65536, 2**20]}, dtypes=["float32"],
           profiles={"quick": {"numel": [65536]}})
def create(ctx: Context, op: str, numel: int) -> Case:
    """Tensor creation: torch.tensor(python list) (including the copy to the device), randn, zeros."""
    if op == "from_list":
        values = torch.randn(numel).tolist()
        fn = lambda: torch.tensor(values, device=ctx.device, dtype=ctx.dtype)  # noqa: E731
        return Case(fn, items=numel, items_unit="elements", bound="host")
    if op == "randn":
        fn = lambda: torch.randn(numel, device=ctx.device, dtype=ctx.dtype)  # noqa: E731
        return Case(fn, items=numel, items_unit="elements", bound="compute")
    itemsize = torch.empty((), dtype=ctx.dtype).element_size()
    fn = lambda: torch.zeros(numel, device=ctx.device, dtype=ctx.dtype)  # noqa: E731
    return Case(fn, items=numel, items_unit="elements", bytes=numel * itemsize, bound="memory")


@benchmark(params={"op": ["view", "reshape", "transpose_contiguous"], "shape": ["4096x4096"]},
           dtypes=["float32"])
def layout(ctx: Context, op: str, shape: str) -> Case:
    """view/reshape of a contiguous tensor (metadata only: per-op overhead) and transpose().contiguous()
    (a strided copy: bandwidth)."""
    rows, cols = dims(shape)
    x = _randn(ctx, rows, cols)
    if op == "view":
        return Case(lambda: x.view(cols, rows), items=1, items_unit="ops", bound="overhead")
    if op == "reshape":
        return Case(lambda: x.reshape(-1), items=1, items_unit="ops", bound="overhead")
    return Case(lambda: x.t().contiguous(), bytes=copy_bytes(x.numel(), x.element_size()),
                bound="memory")


@benchmark(params={"op": ["rows", "mask", "put"], "shape": ["65536x256"]}, dtypes=["float32"],
           profiles={"quick": {"op": ["rows", "mask"]}})
def indexing(ctx: Context, op: str, shape: str) -> Case:
    """Indexing whole rows of a rows x cols matrix: x[idx] (a quarter of the rows, random order),
    x[mask] (about half the rows), x[idx] = v (index_put_, a quarter of the rows)."""
    rows, cols = dims(shape)
    gen = torch.Generator().manual_seed(0)
    x = _randn(ctx, rows, cols)
    itemsize = x.element_size()
    if op == "mask":
        mask = (torch.rand(rows, generator=gen) < 0.5).to(ctx.device)
        selected = int(mask.sum())
        return Case(lambda: x[mask], bytes=mask_select_bytes(rows, selected, cols, itemsize),
                    bound="memory")
    k = rows // 4
    idx = torch.randperm(rows, generator=gen)[:k].to(ctx.device)
    if op == "rows":
        return Case(lambda: x[idx], bytes=index_rows_bytes(k, cols, itemsize), bound="memory")
    v = _randn(ctx, k, cols)

    def put() -> torch.Tensor:
        x[idx] = v
        return x

    return Case(put, bytes=index_rows_bytes(k, cols, itemsize), bound="memory")


@benchmark(params={"op": ["gather", "scatter_add"], "shape": ["4096x4096"]}, dtypes=["float32"])
def gather_scatter(ctx: Context, op: str, shape: str) -> Case:
    """torch.gather and scatter_add_ along dim 1 with a quarter as many random indices as columns."""
    rows, cols = dims(shape)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, cols, (rows, cols // 4), generator=gen).to(ctx.device)
    count = idx.numel()
    if op == "gather":
        x = _randn(ctx, rows, cols)
        return Case(lambda: torch.gather(x, 1, idx), bytes=gather_bytes(count, x.element_size()),
                    bound="memory")
    dst = torch.zeros(rows, cols, device=ctx.device, dtype=ctx.dtype)
    src = _randn(ctx, rows, cols // 4)
    return Case(lambda: dst.scatter_add_(1, idx, src), bytes=scatter_add_bytes(count, src.element_size()),
                bound="memory")


@benchmark(dtypes=["float32"], overview=True)
def dispatch_overhead(ctx: Context) -> Case:
    """A one-element add: no work, so its time is the per-op cost of dispatch (and kernel launch)."""
    a = torch.ones(1, device=ctx.device, dtype=ctx.dtype)
    b = torch.ones(1, device=ctx.device, dtype=ctx.dtype)
    return Case(lambda: a + b, items=1, items_unit="ops", bound="overhead")
