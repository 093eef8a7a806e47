"""Inference: per-call latency percentiles, batch throughput, and a GPT-style decoder's prefill and decode.

Every model is built here with random weights: torchvision's resnet50, vit_b_16 and
mobilenet_v3_large (`weights=None`, CNNs in channels_last), and `Decoder`, a GPT-style decoder (token
and position embeddings, pre-norm blocks around `scaled_dot_product_attention`, a KV cache held as
module buffers, a head tied to the token embedding). Nothing is downloaded.

One sample is one timed call, through the backend's timer (CUDA: a pair of events around each call),
so the report's samples are per-call times and `derive` reads p50/p90/p99/max from them, each with
the number of calls behind it (`benchbench.model.percentiles`: p99 needs 100 calls, and says so when it has
fewer). The suite times itself (`Case(None, samples=...)`): the harness's inner loop would average
the tail away. A call is:

- vision: one forward pass of a batch (`batch` 1: latency; larger: images/s);
- `prefill`: the prompt through the model into the KV cache, plus the greedy pick of the first new
  token: the time to first token; tokens/s = prompt tokens / median call;
- `decode`: one greedy decode step for every sequence of the batch (the inter-token latency);
  `decode_tokens_per_s` = tokens made / total time of all calls. The cache is static (its full
  length, `context` + `window` positions, attended under a mask; the position is a tensor), so
  torch.compile sees one shape and every step does the same work; after `window` steps the position
  wraps back to `context` and decoding goes on over the same prompt.

Modes: `eager` under `torch.inference_mode()`; `compile` (torch.compile default), and on CUDA
`reduce-overhead` (CUDA graphs) and, in the full profile, `max-autotune`. Dtypes: float32, and
bfloat16 / float16 by autocast with float32 weights, where the device has the instructions.

Correctness guard: the first call's output is finite, and a compiled or autocast case's output is
close to the eager float32 output of the same weights and inputs (norm-relative error within
`TOLERANCE[dtype]`); a case that drifts fails with the error it measured. Compile time and the
speed-up over eager float32 appear as in the training suite; `derive` also writes, on the fastest
case of each model, a one-line note naming that mode and dtype with its interval (the suite API has
no summary lines of its own: the note is the case's table note).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from benchbench import Case, Skip, benchmark
from benchbench.model.percentiles import summary
from benchbench.workloads import COMPILED_MODES, CUDA_ONLY_MODES
from benchbench.workloads import EAGER_AND_COMPILED_MODES as MODES

if TYPE_CHECKING:  # pragma: no cover
    from benchbench import CaseKey, Context, Result

SUITE = "inference"

DTYPES = ("float32", "bfloat16", "float16")
AUTOCAST = {"bfloat16": torch.bfloat16, "float16": torch.float16}
# Guard: largest |out - eager float32| over largest |eager float32|, per precision of the case.
TOLERANCE = {"float32": 5e-3, "bfloat16": 1e-1, "float16": 2e-2}
# SDPA backends that can be forced (torch.nn.attention.SDPBackend member names); "auto" lets SDPA choose.
SDPA = {"flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION", "cudnn": "CUDNN_ATTENTION", "math": "MATH"}
SDPA_NAMES = {0: "math", 1: "flash", 2: "efficient", 3: "cudnn", 4: "overrideable"}
CPU_SDPA = ("auto", "flash", "math")  # the CPU has a flash kernel and the math fallback
# Per-call sampling per profile: (warm-up calls, at least, at most calls, seconds after which to stop
# once `at least` calls are in). p99 needs 100 calls: the quick profile gives fewer, and says so.
SAMPLING = {"quick": (2, 10, 100, 0.5), "default": (5, 100, 400, 4.0), "full": (10, 200, 2000, 15.0)}
COMPILE_STEADY_CALLS = 3  # calls after the compiling ones, to take their steady cost out of compile_s


# --- which cases can run ------------------------------------------------------------------------
def _native_cpu(flags: Sequence[str]) -> bool:
    caps = getattr(torch.cpu, "get_capabilities", None)
    return True if caps is None else any(caps().get(f) for f in flags)


def unsupported(key: CaseKey) -> str | None:
    """Why this suite cannot run a case on its backend, decided from the key alone."""
    mode, dtype, backend = key.mode or "eager", key.dtype or "float32", key.backend
    if mode in CUDA_ONLY_MODES and backend != "cuda":
        return f"mode {mode} uses CUDA graphs / Triton autotuning: CUDA only"
    if backend == "cpu" and dtype == "bfloat16" and not _native_cpu(("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")):
        return "no bfloat16 instructions on this CPU (AVX512-BF16, AMX or ARM BF16): emulated, not measured"
    if backend == "cpu" and dtype == "float16" and not _native_cpu(("avx512_fp16", "amx_fp16", "fp16")):
        return "no float16 instructions on this CPU (AVX512-FP16, AMX-FP16 or ARM FP16): emulated, not measured"
    sdpa = key.params_dict.get("sdpa", "auto")
    if backend == "cpu" and sdpa not in CPU_SDPA:
        return f"SDPA backend {sdpa} has no CPU kernel (the CPU has {', '.join(CPU_SDPA[1:])})"
    if backend not in ("cpu", "cuda") and sdpa != "auto":
        return f"SDPA backends are selectable on CPU and CUDA only, not {backend}"
    return None


def isolated(key: CaseKey) -> bool:
    """Compiled cases get a worker of their own (compile caches, CUDA graphs); eager ones share."""
    return (key.mode or "eager") in COMPILED_MODES and unsupported(key) is None


# --- the decoder ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecoderSize:
    vocab: int
    dim: int
    layers: int
    heads: int
    max_len: int  # positions the position embedding covers

    @property
    def parameters(self) -> int:
        per_block = 12 * self.dim * self.dim + 13 * self.dim  # qkv, proj, 4x MLP, two layer norms
        return self.vocab * self.dim + self.max_len * self.dim + self.layers * per_block + 2 * self.dim


DECODER_SIZES = {
    "tiny": DecoderSize(vocab=512, dim=128, layers=2, heads=4, max_len=1024),
    "small": DecoderSize(vocab=8192, dim=384, layers=6, heads=6, max_len=1024),
    "gpt2-124m": DecoderSize(vocab=50257, dim=768, layers=12, heads=12, max_len=1024),  # GPT-2 small's shape
}


class Block(nn.Module):
    """Pre-norm transformer block; attention reads and writes this block's KV cache."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.fc, self.out = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.register_buffer("k_cache", None, persistent=False)  # set by Decoder.setup_cache
        self.register_buffer("v_cache", None, persistent=False)

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:  # prefill: the prompt attends to itself, causally
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, self.k_cache.to(q.dtype), self.v_cache.to(q.dtype), attn_mask=mask)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        self.k_cache.index_copy_(2, positions, k.to(self.k_cache.dtype))
        self.v_cache.index_copy_(2, positions, v.to(self.v_cache.dtype))
        x = x + self.proj(self.attention(q, k, v, mask).transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class Decoder(nn.Module):
    """GPT-style decoder with a static KV cache and a head tied to the token embedding.

    `forward(tokens, positions, decode)` returns the logits of the last position. Prefill
    (`decode=False`) writes the prompt's keys and values into the cache at `positions`; a decode step
    (`decode=True`, one token per sequence) writes its own and attends to the whole cache under a mask
    that hides positions after it.
    """

    def __init__(self, size: DecoderSize) -> None:
        super().__init__()
        self.size = size
        self.tok = nn.Embedding(size.vocab, size.dim)
        self.pos = nn.Embedding(size.max_len, size.dim)
        self.blocks = nn.ModuleList(Block(size.dim, size.heads) for _ in range(size.layers))
        self.ln = nn.LayerNorm(size.dim)
        self.cache_len = 0

    def setup_cache(self, batch: int, length: int, dtype: torch.dtype, device: torch.device) -> None:
        if length > self.size.max_len:
            raise ValueError(f"cache of {length} positions is longer than the model's {self.size.max_len}")
        shape = (batch, self.size.heads, length, self.size.dim // self.size.heads)
        for blk in self.blocks:
            blk.register_buffer("k_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
            blk.register_buffer("v_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.cache_len = length

    def kv_bytes_per_token(self) -> int:
        """Bytes the cache holds per token of one sequence: keys and values of every layer."""
        blk = self.blocks[0]
        return 2 * self.size.layers * self.size.dim * blk.k_cache.element_size()

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, decode: bool = False) -> torch.Tensor:
        x = self.tok(tokens) + self.pos(positions)
        mask = None
        if decode:
            mask = (torch.arange(self.cache_len, device=tokens.device) <= positions[-1]).view(1, 1, 1, -1)
        for blk in self.blocks:
            x = blk(x, positions, mask)
        return F.linear(self.ln(x[:, -1]), self.tok.weight)


def full_logits(model: Decoder, tokens: torch.Tensor) -> torch.Tensor:
    """The last position's logits recomputed from scratch (no cache reuse): the KV cache's yardstick."""
    model.setup_cache(tokens.shape[0], tokens.shape[1], model.tok.weight.dtype, tokens.device)
    return model(tokens, torch.arange(tokens.shape[1], device=tokens.device))


# --- shared machinery -----------------------------------------------------------------------------
def compile_model(module: nn.Module, mode: str) -> Callable:
    """torch.compile for a mode name. Module-level so tests can inject a stand-in (or a broken one)."""
    return torch.compile(module) if mode == "compile" else torch.compile(module, mode=mode)


class GuardError(RuntimeError):
    """The correctness guard failed: its message says what was measured (it becomes the case's reason)."""


def relative_error(out: torch.Tensor, reference: torch.Tensor) -> float:
    """Largest |out - reference| over largest |reference| (both in float64)."""
    ref = reference.detach().double().cpu()
    diff = (out.detach().double().cpu() - ref).abs().max().item()
    return diff / max(ref.abs().max().item(), 1e-12)


def guard(out: Any, reference: torch.Tensor | None, dtype: str, what: str) -> float | None:
    """Raise GuardError when `out` is not finite or drifts from the eager float32 `reference` beyond the
    precision's tolerance; return the relative error (None without a reference)."""
    if not isinstance(out, torch.Tensor):
        raise GuardError(f"{what}: output is {type(out).__name__}, not a tensor")
    if not bool(torch.isfinite(out).all()):
        bad = int((~torch.isfinite(out)).sum())
        raise GuardError(f"{what}: {bad} of {out.numel()} outputs are NaN or Inf")
    if reference is None:
        return None
    err = relative_error(out, reference)
    if not err <= TOLERANCE[dtype]:
        raise GuardError(f"{what}: output drifts from eager float32 by {err:.2e} (relative), "
                         f"beyond the {TOLERANCE[dtype]:.0e} tolerance for {dtype}")
    return err


def sdpa_context(sdpa: str) -> contextlib.AbstractContextManager:
    if sdpa == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(getattr(SDPBackend, SDPA[sdpa]))


def sdpa_in_use(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> str:
    """Which kernel SDPA picks for these inputs under the current settings (flash, efficient, cudnn, math)."""
    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None:  # pragma: no cover - a torch without the probe
        return "unknown"
    try:
        return SDPA_NAMES.get(int(choose(q, k, v, mask, 0.0, mask is None)), "unknown")
    except RuntimeError:
        return "none"


@dataclass
class Runner:
    """Calls a model the way a case does: inference mode, autocast for a reduced precision, the SDPA
    backend chosen for the case."""

    device: torch.device
    dtype: str
    sdpa: str = "auto"

    def scope(self) -> contextlib.AbstractContextManager:
        """Inference mode, with autocast and the SDPA backend where the case asks for them (only inference
        mode for an eager float32 case with SDPA's own choice: no generator around it)."""
        if self.dtype not in AUTOCAST and self.sdpa == "auto":
            return torch.inference_mode()
        return self._full_scope()

    @contextlib.contextmanager
    def _full_scope(self):
        amp = (torch.autocast(self.device.type, dtype=AUTOCAST[self.dtype]) if self.dtype in AUTOCAST
               else contextlib.nullcontext())
        with torch.inference_mode(), amp, sdpa_context(self.sdpa):
            yield

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.scope():
            return fn(*args, **kwargs)


def per_call_samples(timer: Any, fn: Callable[[], Any], calls: tuple[int, int, float],
                     clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """One timed call per sample through the backend's timer (CUDA: its events) until `at_most` calls,
    or `seconds` have passed once `at_least` are in."""
    at_least, at_most, seconds = calls
    samples: list[float] = []
    t0 = clock()
    while len(samples) < at_most and (len(samples) < at_least or clock() - t0 < seconds):
        samples.append(timer.block(fn, 1))
    return samples


def one_off_seconds(first_s: Sequence[float], steady_s: Sequence[float]) -> float:
    """Compile (and CUDA-graph recording) time: the first calls' excess over a steady call."""
    if not first_s or not steady_s:
        raise ValueError("need first and steady call times")
    steps = [*first_s, *steady_s]
    return max(0.0, sum(steps) - len(steps) * statistics.median(steady_s))


def dynamo_counts() -> dict[str, int]:
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - a torch without dynamo
        return {}
    return {"graphs": int(counters["stats"]["unique_graphs"]),
            "graph_breaks": int(sum(counters["graph_break"].values())),
            "cache_hits": int(counters["inductor"]["fxgraph_cache_hit"])}


def timed_case(ctx: Context, call: Callable[[], Any], reference: torch.Tensor | None, what: str,
               compiled: bool, metrics: dict[str, Any],
               within: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext, **work: Any) -> Case:
    """Guard the first call, time the compile (compiled modes), warm up, then take per-call samples; all of
    it inside one `within()` (the decode loop's scope, held across its steps as a generation holds it)."""
    with within():
        return _timed_case(ctx, call, reference, what, compiled, metrics, **work)


def _timed_case(ctx: Context, call: Callable[[], Any], reference: torch.Tensor | None, what: str,
                compiled: bool, metrics: dict[str, Any], **work: Any) -> Case:
    dtype = ctx.key.dtype or "float32"
    before = dynamo_counts()
    first_s, out = ctx.time_once(call)
    try:
        err = guard(out, reference, dtype, what)
    finally:
        del out
    if err is not None:
        metrics["guard_rel_error"] = err
    warmup, at_least, at_most, seconds = SAMPLING.get(ctx.profile, SAMPLING["default"])
    timer = ctx.backend.timer()
    if compiled:
        second_s = ctx.time_once(call)[0]  # CUDA graphs record on the second call
        steady = [ctx.time_once(call)[0] for _ in range(COMPILE_STEADY_CALLS)]
        after = dynamo_counts()
        metrics.update({"compile_s": one_off_seconds([first_s, second_s], steady),
                        **{k: after.get(k, 0) - before.get(k, 0) for k in ("graphs", "graph_breaks", "cache_hits")}})
    else:
        metrics["first_call_s"] = first_s
    metrics["warmup_calls"] = warmup
    for _ in range(warmup):
        call()
    ctx.backend.reset_peak_memory()
    samples = per_call_samples(timer, call, (at_least, at_most, seconds))
    return Case(None, samples=samples, timing_method=timer.method, metrics=metrics, **work)


def _case_settings(ctx: Context) -> tuple[str, str, torch.device]:
    reason = unsupported(ctx.key)
    if reason:
        raise Skip(reason)
    return ctx.key.mode or "eager", ctx.key.dtype or "float32", ctx.device


# --- vision -----------------------------------------------------------------------------------------
CHANNELS_LAST = {"resnet50": True, "mobilenet_v3_large": True, "vit_b_16": False}


def build_vision(name: str, image: int) -> nn.Module:
    import torchvision

    extra = {"image_size": image} if name.startswith("vit") else {}
    return getattr(torchvision.models, name)(weights=None, **extra)


def vision_case(ctx: Context, name: str, batch: int, image: int) -> Case:
    mode, dtype, device = _case_settings(ctx)
    torch.manual_seed(0)
    fmt = torch.channels_last if CHANNELS_LAST[name] else torch.contiguous_format
    model = build_vision(name, image).eval().to(device=device, memory_format=fmt)
    x = torch.randn(batch, 3, image, image, generator=torch.Generator().manual_seed(1)).to(device, memory_format=fmt)
    eager32 = Runner(device, "float32")
    reference = eager32(model, x) if (mode != "eager" or dtype != "float32") else None
    net = compile_model(model, mode) if mode in COMPILED_MODES else model
    run = Runner(device, dtype)
    metrics = {"channels_last": CHANNELS_LAST[name], "parameters": sum(p.numel() for p in model.parameters())}
    return timed_case(ctx, lambda: run(net, x), reference, f"{name} output", mode in COMPILED_MODES, metrics,
                      items=batch, items_unit="images")


VISION_COMMON: dict[str, Any] = {"dtypes": DTYPES, "modes": MODES, "isolate": isolated, "timeout": 1200}
# Quick: eager only, 64x64 images (vit_b_16: 32x32) and batch 8: a CPU takes seconds per 224x224 batch
# and minutes to compile a CNN. Default: the real shapes.
VISION_QUICK = {"image": [64], "batch": [1, 8], "mode": ["eager"]}
VISION_DEFAULT = {"mode": ["eager", "compile", "reduce-overhead"]}


@benchmark(params={"batch": [1, 64], "image": [224]},
           profiles={"quick": VISION_QUICK, "default": VISION_DEFAULT}, **VISION_COMMON)
def resnet50(ctx: Context, batch: int, image: int) -> Case:
    """torchvision resnet50 (random init, channels_last), one forward pass of a batch."""
    return vision_case(ctx, "resnet50", batch, image)


@benchmark(params={"batch": [1, 64], "image": [224]},
           profiles={"quick": {**VISION_QUICK, "image": [32]}, "default": VISION_DEFAULT}, **VISION_COMMON)
def vit_b_16(ctx: Context, batch: int, image: int) -> Case:
    """torchvision vit_b_16 (random init; image_size follows `image`), one forward pass of a batch."""
    return vision_case(ctx, "vit_b_16", batch, image)


@benchmark(params={"batch": [1, 128], "image": [224]},
           profiles={"quick": VISION_QUICK, "default": VISION_DEFAULT}, **VISION_COMMON)
def mobilenet_v3_large(ctx: Context, batch: int, image: int) -> Case:
    """torchvision mobilenet_v3_large (random init, channels_last), one forward pass of a batch."""
    return vision_case(ctx, "mobilenet_v3_large", batch, image)


# --- the decoder's cases ----------------------------------------------------------------------------
def _tokens(vocab: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def _decoder(size: str, device: torch.device) -> Decoder:
    if size not in DECODER_SIZES:
        raise ValueError(f"unknown decoder size {size!r} (known: {', '.join(DECODER_SIZES)})")
    torch.manual_seed(0)
    return Decoder(DECODER_SIZES[size]).eval().to(device)


def _decoder_metrics(model: Decoder, size: str, sdpa: str, kernel: str) -> dict[str, Any]:
    return {"parameters": sum(p.numel() for p in model.parameters()), "size": size, "sdpa": sdpa,
            "sdpa_backend": kernel, "kv_cache_bytes_per_token": model.kv_bytes_per_token()}


def _probe_sdpa(run: Runner, model: Decoder, q_len: int, mask: bool, device: torch.device) -> str:
    """The kernel SDPA takes for this case's attention; Skip when a forced backend cannot run it."""
    blk, heads = model.blocks[0], model.size.heads
    dt = AUTOCAST.get(run.dtype, torch.float32)
    q = torch.zeros(blk.k_cache.shape[0], heads, q_len, model.size.dim // heads, dtype=dt, device=device)
    k = blk.k_cache.to(dt) if mask else q
    m = torch.ones(1, 1, 1, k.shape[2], dtype=torch.bool, device=device) if mask else None
    with run.scope():
        kernel = sdpa_in_use(q, k, k, m)
        if run.sdpa != "auto":
            try:
                F.scaled_dot_product_attention(q, k, k, attn_mask=m, is_causal=m is None)
            except RuntimeError as exc:
                first = (str(exc).strip().splitlines() or [""])[0]
                raise Skip(f"SDPA backend {run.sdpa} cannot run this attention here: {first}") from None
    return kernel


def prefill_case(ctx: Context, size: str, prompt: int, sdpa: str) -> Case:
    mode, dtype, device = _case_settings(ctx)
    model = _decoder(size, device)
    if prompt > model.size.max_len:
        raise Skip(f"prompt of {prompt} tokens is longer than the {size} decoder's {model.size.max_len} positions")
    tokens = _tokens(model.size.vocab, (1, prompt), 1).to(device)
    positions = torch.arange(prompt, device=device)
    cache_dtype = AUTOCAST.get(dtype, torch.float32)
    reference = None
    if mode != "eager" or dtype != "float32":
        model.setup_cache(1, prompt, torch.float32, device)
        reference = Runner(device, "float32")(model, tokens, positions)
    model.setup_cache(1, prompt, cache_dtype, device)
    run = Runner(device, dtype, sdpa)
    kernel = _probe_sdpa(run, model, prompt, mask=False, device=device)
    net = compile_model(model, mode) if mode in COMPILED_MODES else model

    def first_token() -> torch.Tensor:
        with run.scope():
            logits = net(tokens, positions)
            logits.argmax(-1)  # the greedy pick of the first new token
            return logits

    metrics = _decoder_metrics(model, size, sdpa, kernel)
    return timed_case(ctx, first_token, reference, f"prefill logits ({size}, {prompt} tokens)",
                      mode in COMPILED_MODES, metrics, items=prompt, items_unit="tokens")


class DecodeLoop:
    """Greedy decoding, one step per call: each sequence's next token from its last logits. It enters no
    scope of its own: the decode case holds its Runner scope around all the steps (`timed_case(within=...)`),
    as a serving loop holds inference mode for a whole generation. Entering inference mode for every step
    cost about 3% of a tiny decoder's step here (benchmarks/inference_decode_check.py, docs/inference.md)."""

    def __init__(self, step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], first: torch.Tensor,
                 context: int, window: int, device: torch.device) -> None:
        self.step_fn, self.context, self.window = step, context, window
        self.positions = [torch.tensor([p], device=device) for p in range(context, context + window)]
        self.token = first
        self.i = 0
        self.steps = 0

    def __call__(self) -> torch.Tensor:
        logits = self.step_fn(self.token, self.positions[self.i])
        self.token = logits.argmax(-1, keepdim=True)
        self.i = (self.i + 1) % self.window  # past the window: decode on from the prompt again
        self.steps += 1
        return logits


def decode_case(ctx: Context, size: str, batch: int, context: int, window: int, sdpa: str) -> Case:
    mode, dtype, device = _case_settings(ctx)
    model = _decoder(size, device)
    length = context + window
    if length > model.size.max_len:
        raise Skip(f"context + window = {length} is longer than the {size} decoder's {model.size.max_len} positions")
    prompt = _tokens(model.size.vocab, (batch, context), 1).to(device)
    prompt_pos = torch.arange(context, device=device)
    first = _tokens(model.size.vocab, (batch, 1), 2).to(device)
    step_pos = torch.tensor([context], device=device)
    reference = None
    if mode != "eager" or dtype != "float32":
        eager32 = Runner(device, "float32")
        model.setup_cache(batch, length, torch.float32, device)
        eager32(model, prompt, prompt_pos)
        reference = eager32(model, first, step_pos, decode=True)
    model.setup_cache(batch, length, AUTOCAST.get(dtype, torch.float32), device)
    run = Runner(device, dtype, sdpa)
    _probe_sdpa(run, model, context, mask=False, device=device)  # the prefill's attention must run too
    kernel = _probe_sdpa(run, model, 1, mask=True, device=device)
    run(model, prompt, prompt_pos)  # prefill, eager: only decode steps are timed (and compiled)
    net = compile_model(model, mode) if mode in COMPILED_MODES else model
    loop = DecodeLoop(lambda tok, pos: net(tok, pos, decode=True), first, context, window, device)
    metrics = {**_decoder_metrics(model, size, sdpa, kernel), "kv_cache_bytes": model.kv_bytes_per_token() *
               length * batch}
    return timed_case(ctx, loop, reference, f"decode logits ({size}, batch {batch})", mode in COMPILED_MODES,
                      metrics, within=run.scope, items=batch, items_unit="tokens")


DECODER_COMMON: dict[str, Any] = {"dtypes": DTYPES, "modes": MODES, "isolate": isolated, "timeout": 1200}
_FULL_MODES = {"mode": list(MODES), "sdpa": ["auto", *SDPA]}
_DEFAULT_MODES = {"mode": ["eager", "compile", "reduce-overhead"]}


@benchmark(params={"size": list(DECODER_SIZES), "prompt": [128, 512, 1024], "sdpa": ["auto"]},
           # quick: eager only (decode compiles at both batches): a compiled case costs a worker of its own
           # per round, about 14 s of the quick profile's 3 minutes on a 2-core CPU (docs/inference.md)
           profiles={"quick": {"size": ["tiny"], "prompt": [64], "mode": ["eager"]},
                     "default": {**_DEFAULT_MODES, "size": ["small", "gpt2-124m"], "prompt": [128, 512]},
                     "full": _FULL_MODES},
           overview={"size": ["tiny"], "prompt": [128], "sdpa": ["auto"], "dtype": ["float32"], "mode": ["eager"]},
           **DECODER_COMMON)
def prefill(ctx: Context, size: str, prompt: int, sdpa: str) -> Case:
    """GPT-style decoder: the prompt into the KV cache and the first token (time to first token), batch 1."""
    return prefill_case(ctx, size, prompt, sdpa)


@benchmark(params={"size": list(DECODER_SIZES), "batch": [1, 8], "context": [128], "window": [128],
                   "sdpa": ["auto"]},
           profiles={"quick": {"size": ["tiny"], "mode": ["eager", "compile"]},
                     "default": {**_DEFAULT_MODES, "size": ["small", "gpt2-124m"]},
                     "full": _FULL_MODES},
           **DECODER_COMMON)
def decode(ctx: Context, size: str, batch: int, context: int, window: int, sdpa: str) -> Case:
    """GPT-style decoder: one greedy decode step per sequence with the KV cache (inter-token latency)."""
    return decode_case(ctx, size, batch, context, window, sdpa)


# --- cross-case metrics -----------------------------------------------------------------------------
PERCENTILE_PREFIX = {"prefill": "ttft", "decode": "itl"}


def _seconds(s: float) -> str:
    if s >= 10:
        return f"{s:.0f} s"
    return f"{s:.3g} s" if s >= 1 else f"{s * 1e3:.3g} ms"


def payoff(eager_s: float, fast_s: float, compile_s: float | None) -> tuple[float, int | None]:
    """(speed-up over eager, calls until the compile time is paid back, None for never)."""
    if eager_s <= 0 or fast_s <= 0:
        raise ValueError("call times must be positive")
    saved = eager_s - fast_s
    if compile_s is None or saved <= 0:
        return eager_s / fast_s, None
    return eager_s / fast_s, max(1, math.ceil(compile_s / saved - 1e-9))


def _group(key: CaseKey) -> tuple:
    return key.benchmark, key.params, key.backend


def fastest_note(result: Result, eager32: Result | None, ranked: int) -> str:
    """The model's one-line summary: its fastest mode and dtype here, with the median's interval."""
    st = result.stats
    text = (f"fastest of {ranked} here: {result.key.mode}/{result.key.dtype}, {_seconds(st.median)} per call "
            f"[{_seconds(st.ci_low)}, {_seconds(st.ci_high)}]")
    if eager32 is not None and eager32 is not result and eager32.stats is not None:
        text += f", {eager32.stats.median / st.median:.2f}x eager float32"
    return text


def derive(results: list[Result]) -> None:
    """Per result: percentiles and token rates from all its per-call samples; compiled and autocast cases
    against eager float32 (speed-up, calls to pay a compile back); each model's fastest case named."""
    groups: dict[tuple, list[Result]] = {}
    for r in results:
        if not r.ok or not r.samples:
            continue
        r.metrics.update(summary(r.samples, PERCENTILE_PREFIX.get(r.key.benchmark, "latency")))
        if r.key.benchmark == "decode":
            r.metrics["decode_tokens_per_s"] = int(r.key.params_dict["batch"]) * len(r.samples) / sum(r.samples)
        if r.key.benchmark == "prefill" and r.stats is not None:
            r.metrics["prefill_tokens_per_s"] = int(r.key.params_dict["prompt"]) / r.stats.median
        r.note = None
        groups.setdefault(_group(r.key), []).append(r)
    for members in groups.values():
        timed = [r for r in members if r.stats is not None]
        if not timed:
            continue
        eager32 = next((r for r in timed if r.key.mode == "eager" and r.key.dtype == "float32"), None)
        for r in timed:
            if eager32 is None or r is eager32:
                continue
            speedup, calls = payoff(eager32.stats.median, r.stats.median, r.metrics.get("compile_s"))
            r.metrics["speedup_vs_eager_float32"] = speedup
            if r.key.mode in COMPILED_MODES:
                r.metrics["break_even_calls"] = calls
        best = min(timed, key=lambda r: r.stats.median)
        for r in timed:
            r.metrics["fastest_here"] = f"{best.key.mode}/{best.key.dtype}"
        best.note = fastest_note(best, eager32, len(timed))

