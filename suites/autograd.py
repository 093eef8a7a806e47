"""Autograd: what backward costs next to forward, and what building the graph costs.

Forward and forward+backward are separate cases (`step=fwd` / `step=fwd_bwd`), each with its own
samples and confidence interval, so each compares across runs on its own; `derive` (called by the
runner with this suite's results) adds the backward/forward ratio to the fwd_bwd result:
    bwd_fwd_ratio = (median(fwd_bwd) - median(fwd)) / median(fwd)
About 2 is the textbook value for matmul-bound nets (backward computes a gradient for both the input
and the weight of every layer); small nets are overhead-bound and land elsewhere. Measuring both in
one case would give one number without samples of its own to compare; two cases keep the harness's
statistics for each and the ratio is a pure function of their medians.

The forward step runs with autograd on (as in training), so fwd_bwd - fwd is the backward alone.
FLOPs count matmul multiply-adds as 2 (bias, activations and the loss are not counted); the network
input needs no gradient, so the first layer's backward computes only its weight gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from benchbench import Case, benchmark
from benchbench.api import skip_if_too_much_for_a_cpu

if TYPE_CHECKING:  # pragma: no cover
    from benchbench import Context, Result

CLASSIC = "50-30-20-3"
WIDE = "4096-4096-4096-10"



# --- work per call: pure functions, pinned by tests/test_suite_autograd.py ---------------------
def widths(layers: str) -> list[int]:
    """'50-30-20-3' -> [50, 30, 20, 3]: input width, then each Linear's output width."""
    return [int(w) for w in layers.split("-")]


def mlp_forward_flops(batch: int, ws: list[int]) -> int:
    return sum(2 * batch * a * b for a, b in zip(ws, ws[1:], strict=False))


def mlp_backward_flops(batch: int, ws: list[int]) -> int:
    """Weight gradients of every layer plus input gradients of every layer but the first."""
    layers = list(zip(ws, ws[1:], strict=False))
    weight_grads = sum(2 * batch * a * b for a, b in layers)
    input_grads = sum(2 * batch * a * b for a, b in layers[1:])
    return weight_grads + input_grads


def mlp_step_flops(step: str, batch: int, ws: list[int]) -> int:
    fwd = mlp_forward_flops(batch, ws)
    return fwd if step == "fwd" else fwd + mlp_backward_flops(batch, ws)


def matmul_backward_flops(n: int) -> int:
    """out = a @ b (n x n): grad_a = g @ b.T and grad_b = a.T @ g, two matmuls of 2 n^3."""
    return 4 * n**3


def square_sum_backward_bytes(rows: int, cols: int, itemsize: int) -> int:
    """d/dx sum(x**2, dim=-1) = 2 x g: read x (and the per-row g), write the gradient."""
    return 2 * rows * cols * itemsize + rows * itemsize


def _mlp(ws: list[int], ctx: Context, act: type[torch.nn.Module] = torch.nn.ReLU) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(ws, ws[1:], strict=False)):
        layers.append(torch.nn.Linear(a, b, device=ctx.device, dtype=ctx.dtype))
        if i < len(ws) - 2:
            layers.append(act())
    return torch.nn.Sequential(*layers)


# --- benchmarks --------------------------------------------------------------------------------
@benchmark(params={"layers": [CLASSIC, WIDE], "batch": [64, 1024], "step": ["fwd", "fwd_bwd"]},
           dtypes=["float32", "bfloat16"], profiles={"quick": {"dtype": ["float32"]}},
           overview={"layers": [WIDE], "batch": [64], "step": ["fwd", "fwd_bwd"], "dtype": ["float32"]})
def mlp(ctx: Context, layers: str, batch: int, step: str) -> Case:
    """MLP Linear-ReLU-...-Linear: forward alone, or forward + loss.backward() (grads set to None first)."""
    ws = widths(layers)
    flops = mlp_step_flops(step, batch, ws)
    skip_if_too_much_for_a_cpu(ctx, flops)
    model = _mlp(ws, ctx)
    x = torch.randn(batch, ws[0], device=ctx.device, dtype=ctx.dtype)
    if step == "fwd":
        fn: Callable[[], object] = lambda: model(x)  # noqa: E731
    else:
        def fn() -> torch.Tensor:
            model.zero_grad(set_to_none=True)
            loss = model(x).sum()
            loss.backward()
            return loss.detach()
    return Case(fn, items=batch, items_unit="samples", flops=flops, bound="compute")


@benchmark(params={"requires_grad": [False, True], "ops": [100]}, dtypes=["float32"])
def graph_overhead(ctx: Context, requires_grad: bool, ops: int) -> Case:
    """A chain of `ops` tiny elementwise ops (64 elements) with requires_grad off and on: the cost of
    recording the autograd graph, per op."""
    x = torch.randn(64, device=ctx.device, dtype=ctx.dtype, requires_grad=requires_grad)

    def chain() -> torch.Tensor:
        y = x
        for _ in range(ops // 2):
            y = y * 1.0001
            y = y + 0.0001
        return y

    return Case(chain, items=ops // 2 * 2, items_unit="ops", bound="overhead")


@benchmark(params={"api": ["backward", "grad"], "retain_graph": [False, True]}, dtypes=["float32"])
def backward_api(ctx: Context, api: str, retain_graph: bool) -> Case:
    """Forward + backward of a small MLP (256-256-256-256, batch 64) with loss.backward() or
    torch.autograd.grad(loss, params), with and without retain_graph."""
    ws, batch = widths("256-256-256-256"), 64
    model = _mlp(ws, ctx)
    params = list(model.parameters())
    x = torch.randn(batch, ws[0], device=ctx.device, dtype=ctx.dtype)
    if api == "backward":
        def fn() -> torch.Tensor:
            model.zero_grad(set_to_none=True)
            loss = model(x).sum()
            loss.backward(retain_graph=retain_graph)
            return loss.detach()
    else:
        def fn() -> tuple[torch.Tensor, ...]:
            loss = model(x).sum()
            return torch.autograd.grad(loss, params, retain_graph=retain_graph)
    return Case(fn, items=1, items_unit="steps", flops=mlp_step_flops("fwd_bwd", batch, ws),
                bound="compute")


@benchmark(params={"order": [1, 2]}, dtypes=["float32"])
def double_backward(ctx: Context, order: int) -> Case:
    """Gradients of a small tanh MLP (64-64-1, batch 64) w.r.t. its parameters: order 1 is plain
    backward; order 2 differentiates a gradient penalty, |d out / d x|^2, so the first backward runs
    with create_graph=True and is itself differentiated."""
    model = _mlp([64, 64, 1], ctx, act=torch.nn.Tanh)
    params = list(model.parameters())
    x = torch.randn(64, 64, device=ctx.device, dtype=ctx.dtype, requires_grad=True)
    if order == 1:
        def fn() -> tuple[torch.Tensor, ...]:
            return torch.autograd.grad(model(x).sum(), params)
    else:
        def fn() -> tuple[torch.Tensor, ...]:
            (gx,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
            # the last bias does not change d out / d x: its gradient is None
            return torch.autograd.grad(gx.square().sum(), params, allow_unused=True)
    return Case(fn, items=1, items_unit="steps", bound="overhead")


@benchmark(params={"n": [1024, 2048]}, dtypes=["float32", "bfloat16"],
           profiles={"quick": {"n": [1024], "dtype": ["float32"]}})
def matmul_backward(ctx: Context, n: int) -> Case:
    """Backward of out = a @ b (n x n, both requiring grad) on a retained graph: two matmuls."""
    flops = matmul_backward_flops(n)
    skip_if_too_much_for_a_cpu(ctx, flops)
    a = torch.randn(n, n, device=ctx.device, dtype=ctx.dtype, requires_grad=True)
    b = torch.randn(n, n, device=ctx.device, dtype=ctx.dtype, requires_grad=True)
    out = a @ b
    g = torch.randn_like(out)
    return Case(lambda: torch.autograd.grad(out, (a, b), g, retain_graph=True), flops=flops,
                bound="compute")


@benchmark(params={"shape": ["4096x4096"]}, dtypes=["float32", "bfloat16"],
           profiles={"quick": {"dtype": ["float32"]}})
def reduction_backward(ctx: Context, shape: str) -> Case:
    """Backward of a reduction, out = x.square().sum(dim=-1), on a retained graph. Memory-bound
    (2 FLOPs per element), so it is reported in bytes/s against the copy ceiling, not in FLOP/s."""
    rows, cols = (int(p) for p in shape.split("x"))
    x = torch.randn(rows, cols, device=ctx.device, dtype=ctx.dtype, requires_grad=True)
    out = x.square().sum(dim=-1)
    g = torch.ones_like(out)
    return Case(lambda: torch.autograd.grad(out, x, g, retain_graph=True),
                bytes=square_sum_backward_bytes(rows, cols, x.element_size()), bound="memory")


# --- derived metrics ---------------------------------------------------------------------------
def _median(result: Result) -> float | None:
    return result.stats.median if result.ok and result.stats else None


def _partner(results: list[Result], result: Result, name: str, value: object) -> Result | None:
    """The result with the same key as `result` except params[name] == value."""
    want = {**result.key.params_dict, name: value}
    for r in results:
        k = r.key
        if (k.benchmark == result.key.benchmark and k.backend == result.key.backend and k.dtype == result.key.dtype
                and k.mode == result.key.mode and k.params_dict == want):
            return r
    return None


def _ratios(results: list[Result], bench: str, name: str, value: object, base: object
            ) -> list[tuple[Result, float, float]]:
    """(result, its median, the base partner's median) for each ok result of bench with params[name] == value."""
    out = []
    for r in results:
        if r.key.benchmark != bench or r.key.params_dict.get(name) != value:
            continue
        partner = _partner(results, r, name, base)
        t, t0 = _median(r), _median(partner) if partner else None
        if t is not None and t0:
            out.append((r, t, t0))
    return out


def bwd_fwd_ratio(t_fwd_bwd: float, t_fwd: float) -> float:
    """Backward time over forward time, from the medians of forward+backward and of forward."""
    return (t_fwd_bwd - t_fwd) / t_fwd


def derive(results: list[Result]) -> None:
    """Add ratios between partner cases to the results (the runner calls this after every case)."""
    for r, t, t0 in _ratios(results, "mlp", "step", "fwd_bwd", "fwd"):
        ratio = bwd_fwd_ratio(t, t0)
        r.metrics["bwd_fwd_ratio"] = ratio
        r.note = f"bwd/fwd {ratio:.2f}"
    for r, t, t0 in _ratios(results, "graph_overhead", "requires_grad", True, False):
        r.metrics["autograd_overhead_ratio"] = t / t0
        r.note = f"x{t / t0:.2f} vs requires_grad=False"
    for r, t, t0 in _ratios(results, "double_backward", "order", 2, 1):
        r.metrics["vs_first_order"] = t / t0
        r.note = f"x{t / t0:.2f} vs first order"
    for r, t, t0 in _ratios(results, "backward_api", "api", "grad", "backward"):
        r.metrics["vs_backward"] = t / t0
        r.note = f"x{t / t0:.2f} vs loss.backward()"
    for r, t, t0 in _ratios(results, "backward_api", "retain_graph", True, False):
        if r.key.params_dict.get("api") == "backward":
            r.metrics["vs_no_retain"] = t / t0
            r.note = f"x{t / t0:.2f} vs retain_graph=False"
