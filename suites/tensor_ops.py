"""Basic tensor operations: matmul and elementwise throughput."""

import torch

from benchbench import Case, benchmark


@benchmark(params={"n": [256, 1024, 2048]}, dtypes=["float32", "bfloat16"],
           profiles={"quick": {"n": [256, 1024]}}, overview={"n": [1024], "dtype": ["float32"]})
def matmul(ctx, n):
    """Square matrix multiply, n x n @ n x n."""
    a = torch.randn(n, n, device=ctx.device, dtype=ctx.dtype)
    b = torch.randn(n, n, device=ctx.device, dtype=ctx.dtype)
    return Case(lambda: a @ b, flops=2 * n**3, bytes=3 * n * n * a.element_size())


@benchmark(params={"numel": [2**20, 2**24]}, dtypes=["float32"], profiles={"quick": {"numel": [2**20]}},
           overview={"numel": [2**24]})
def add(ctx, numel):
    """Elementwise x + y into a new tensor: memory-bound."""
    x = torch.randn(numel, device=ctx.device, dtype=ctx.dtype)
    y = torch.randn(numel, device=ctx.device, dtype=ctx.dtype)
    return Case(lambda: x + y, items=numel, bytes=3 * numel * x.element_size(), items_unit="elements")
