"""Training throughput, eager vs torch.compile, and how many steps until compiling pays off.

One timed call is one training step on a fixed synthetic batch that is already on the device:
zero_grad, forward + loss (under autocast for bfloat16/float16), backward, optimizer step (fused
where the backend has it, else foreach). The input pipeline is not measured.

Compiled modes (`compile`, and on CUDA `reduce-overhead`, `max-autotune`) compile the model and its
loss with `torch.compile`; the optimizer step stays eager. Each compiled case runs in a worker of its
own and its setup:

1. runs a few eager steps on copies of the model (same initial weights, same batches), once in the
   case's precision and once in float64;
2. times the guard steps one by one under a fresh inductor cache dir, then a few steady-state
   steps: `compile_s` (cold) is what these steps took beyond as many steady steps. The first call
   compiles; with CUDA graphs (`reduce-overhead`, `max-autotune`: cudagraph trees) it also runs
   eagerly as a warm-up and the graphs are recorded on the second call, so timing the first call
   alone would leave the recording out. The correctness guard then checks that the compiled losses
   are about as close to float64 as eager's (else the flag `loss-mismatch`, and `derive` reports
   no speedup);
3. does the same in a fresh Python process that reuses that cache dir (`compile_warm_s`). A second
   process, not `torch._dynamo.reset()` in this one: in-process the warm figure leaves out the
   per-process costs a real restart pays and reads several times too low.

With `ctx.compile_repeats` above 1 (the profile's, or the benchmark's `compile_repeats`), step 2's
compile and timed steps run that many times in each round, each on a fresh copy of the model and cold
(`benchbench.measure.cold_compile.fresh`: Dynamo reset, empty Inductor caches); the extra ones come first, so
that the compiled step the harness times is the last one made. `compile_runs_s` holds every compile's
seconds and `compile_s` their geometric mean (compile time is compared over them:
benchbench/metrics/compile_time.py); the first of them carries the process's first-use costs (imports, the C++
toolchain probe), as a first compile in a fresh process does.

Peak memory: on CUDA every case of this suite reads the allocator's *reserved* peak, because CUDA-graph
replays run in a private pool that `max_memory_allocated` never sees; eager and compiled cases read
the same counter, so `peak_memory_vs_eager` compares like with like.

So the compile is over before the harness makes its own (separately timed) first call, warms up and
samples. `derive` pairs each compiled result with its eager twin and writes the speedup and the
break-even step count.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from benchbench import Case, Skip, benchmark
from benchbench.measure import cold_compile
from benchbench.metrics import compile_time
from benchbench.workloads import COMPILED_MODES, CUDA_ONLY_MODES
from benchbench.workloads import EAGER_AND_COMPILED_MODES as MODES

if TYPE_CHECKING:  # pragma: no cover
    from benchbench import CaseKey, Context, Result

SUITE = "training"

DTYPES = ("float32", "bfloat16", "float16")
GUARD_STEPS = 3  # steps compared between compiled and eager, the compiling call included
STEADY_STEPS = 5  # compiled steps after the guard, timed to take steady-state work out of compile_s
# Correctness guard: compiled losses may be LOSS_MULTIPLIER x farther from a float64 reference than
# eager's, plus a relative floor per precision (see loss_mismatch).
LOSS_MULTIPLIER = 3.0
LOSS_FLOOR = {"float32": 1e-3, "bfloat16": 1e-2, "float16": 1e-2}
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"


# --- which cases can run ------------------------------------------------------------------------
def unsupported(key: CaseKey) -> str | None:
    """Why this suite cannot run a case on its backend, decided from the key alone."""
    mode, dtype, backend = key.mode or "eager", key.dtype or "float32", key.backend
    if mode in CUDA_ONLY_MODES and backend != "cuda":
        return f"mode {mode} uses CUDA graphs / Triton autotuning: CUDA only"
    if dtype == "float16" and backend != "cuda":
        return "float16 autocast with GradScaler is measured on CUDA only"
    if dtype == "bfloat16" and backend not in ("cpu", "cuda"):
        return f"bfloat16 autocast is measured on CPU and CUDA only, not {backend}"
    if dtype == "bfloat16" and backend == "cpu":
        return cpu_bfloat16_reason()
    return None


def cpu_bfloat16_reason() -> str | None:
    """Why bfloat16 training is not measured on this CPU: it has no bfloat16 instructions.

    Without them autocast emulates bfloat16 and a step is several to tens of times slower than
    float32 (on a 2-core AVX2 EPYC: the small MLP 4x, resnet18 at 32x32 60x, 17 s a step), so
    a default run would spend its time in cases that mostly time out.
    """
    caps = getattr(torch.cpu, "get_capabilities", None)
    if caps is not None:
        found = caps()
        native = any(found.get(flag) for flag in ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16"))
    else:  # an older torch
        probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        native = probe() if probe is not None else True
    if native:
        return None
    return "no bfloat16 instructions on this CPU (AVX512-BF16, AMX or ARM BF16): emulated, not measured"


def isolated(key: CaseKey) -> bool:
    """Compiled cases get a worker of their own (compile caches, allocator state); eager ones share."""
    return (key.mode or "eager") in COMPILED_MODES and unsupported(key) is None


# --- models and synthetic batches -----------------------------------------------------------------
Batch = tuple[torch.Tensor, torch.Tensor]
MLP_WIDTH = {"small": 64, "wide": 1024}


class WithLoss(nn.Module):
    """The network plus its cross-entropy loss, so the compiled graph covers both."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


class TokenEncoder(nn.Module):
    """Embedding -> one nn.TransformerEncoderLayer -> per-token classifier over the vocabulary."""

    def __init__(self, vocab: int, d_model: int, heads: int, ff: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.block = nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.0, batch_first=True)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.embed(tokens)))


def _randn(shape: Sequence[int], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _randint(high: int, shape: Sequence[int], seed: int) -> torch.Tensor:
    return torch.randint(0, high, tuple(shape), generator=torch.Generator().manual_seed(seed + 10_000))


def build(name: str, params: dict[str, Any]) -> tuple[nn.Module, Callable[[int], Batch]]:
    """The network of a benchmark and a function seed -> (inputs, targets) on the CPU.

    No dropout anywhere: the correctness guard compares compiled and eager losses step by step, and
    compiled dropout draws different random numbers.
    """
    b = int(params["batch"])
    if name == "mlp":
        w = MLP_WIDTH[params["size"]]
        net: nn.Module = nn.Sequential(nn.Linear(50, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, 3))
        return net, lambda s: (_randn((b, 50), s), _randint(3, (b,), s))
    if name == "cnn":  # the two-conv MNIST net of pytorch/examples, without its dropout layers
        net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))
        return net, lambda s: (_randn((b, 1, 28, 28), s), _randint(10, (b,), s))
    if name == "resnet18":
        import torchvision

        size = int(params["image"])
        net = torchvision.models.resnet18(weights=None, num_classes=10)
        return net, lambda s: (_randn((b, 3, size, size), s), _randint(10, (b,), s))
    if name == "transformer":
        seq, vocab = int(params["seq"]), 1000
        net = TokenEncoder(vocab, d_model=256, heads=4, ff=1024)
        return net, lambda s: (_randint(vocab, (b, seq), s), _randint(vocab, (b, seq), s + 1))
    raise ValueError(f"unknown model {name!r}")


# --- the training step ----------------------------------------------------------------------------
def make_optimizer(name: str, params: Any, device: torch.device) -> tuple[torch.optim.Optimizer, str]:
    """SGD with momentum or Adam, fused where this backend has fused kernels, else foreach."""
    impl = "fused" if device.type in ("cpu", "cuda") else "foreach"
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, **{impl: True}), impl
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3, **{impl: True}), impl
    raise ValueError(f"unknown optimizer {name!r}")


@dataclass
class Trainer:
    """One training step of `loss_fn` (eager or compiled) over `model`'s parameters."""

    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    device: torch.device
    autocast_dtype: torch.dtype | None = None
    scaler: Any = None  # torch.amp.GradScaler for float16
    cudagraphs: bool = False

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        self.optimizer.zero_grad(set_to_none=True)
        amp = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype
               else contextlib.nullcontext())
        with amp:
            loss = self.loss_fn(x, y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach()


def make_trainer(model: nn.Module, loss_fn: Callable, optimizer: str, dtype: str, mode: str,
                 device: torch.device) -> tuple[Trainer, str]:
    opt, impl = make_optimizer(optimizer, model.parameters(), device)
    autocast = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    scaler = torch.amp.GradScaler(device.type) if dtype == "float16" else None
    cudagraphs = mode in CUDA_ONLY_MODES and device.type == "cuda"
    return Trainer(loss_fn, opt, device, autocast, scaler, cudagraphs), impl


def compile_model(module: nn.Module, mode: str) -> Callable:
    """torch.compile for a mode name. Module-level so tests can inject a failing or wrong compiler."""
    return torch.compile(module) if mode == "compile" else torch.compile(module, mode=mode)


class CompileError(RuntimeError):
    """torch.compile failed. The first line names the underlying error (it becomes the result's reason)."""


def compile_failure(exc: BaseException, mode: str) -> CompileError:
    # dynamo wraps backend errors as "backend='inductor' raised:" + the real error on later lines
    inner = getattr(exc, "inner_exception", None) or exc
    first = (str(inner).strip().splitlines() or [""])[0]
    return CompileError(f"torch.compile ({mode}) failed: {type(inner).__name__}: {first}".rstrip(": "))


# --- compile bookkeeping --------------------------------------------------------------------------
def dynamo_counts() -> dict[str, int]:
    """Frames compiled, graphs and graph breaks so far in this process (dynamo's global counters)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - a torch without dynamo
        return {}
    return {"frames": int(counters["frames"]["total"]), "graphs": int(counters["stats"]["unique_graphs"]),
            "graph_breaks": int(sum(counters["graph_break"].values())),
            "cache_hits": int(counters["inductor"]["fxgraph_cache_hit"])}


@contextlib.contextmanager
def inductor_cache(path: Path):
    """Point inductor at `path` while compiling; the previous setting comes back afterwards."""
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = old


def loss_mismatch(reference: Sequence[float], eager: Sequence[float], compiled: Sequence[float],
                  floor: float, multiplier: float = LOSS_MULTIPLIER) -> str | None:
    """None when the compiled losses track eager's; else what differs, in one line.

    Both runs are compared with a float64 eager `reference` from the same weights and batches, as
    PyTorch's own accuracy checks do: compiled may be at most `multiplier` x as far from it as eager
    is, plus a relative `floor`. Comparing compiled with eager directly would flag honest rounding:
    a few training steps amplify float32 reordering differences (resnet18 on CPU: eager float32 was
    2.3e-3 away from float64 after two updates, compiled 1e-4).
    """
    if not len(reference) == len(eager) == len(compiled):
        return f"{len(compiled)} compiled losses for {len(eager)} eager ones"
    worst_eager = worst_compiled = 0.0
    worst_step = 0
    for i, (r, e, c) in enumerate(zip(reference, eager, compiled, strict=True)):
        if not math.isfinite(c) and math.isfinite(e):
            return f"step {i + 1}: loss {c:.4g} compiled vs {e:.4g} eager"
        if not (math.isfinite(r) and math.isfinite(e) and math.isfinite(c)):
            continue
        scale = max(abs(r), 1e-6)
        worst_eager = max(worst_eager, abs(e - r) / scale)
        if abs(c - r) / scale > worst_compiled:
            worst_compiled, worst_step = abs(c - r) / scale, i
    if worst_compiled > multiplier * worst_eager + floor:
        i = worst_step
        return (f"step {i + 1}: loss {compiled[i]:.5g} compiled vs {eager[i]:.5g} eager, {reference[i]:.5g} float64 "
                f"(rel. error {worst_compiled:.1e} vs eager's {worst_eager:.1e})")
    return None


def warm_compile(spec: dict[str, Any], cache_dir: Path, timeout: float) -> dict[str, Any]:
    """First compiled call of the same case in a fresh process that reuses `cache_dir`."""
    env = {**os.environ, CACHE_ENV: str(cache_dir),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the child imports what we import
    runner = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    try:
        proc = subprocess.run([sys.executable, "-c", runner, str(Path(__file__).resolve()), "--warm-compile",
                               json.dumps(spec)], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"compile_warm_error": f"no result within {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return {"compile_warm_error": tail[:200]}
    out = json.loads(lines[-1])
    return {"compile_warm_s": out["compile_s"], "compile_warm_cache_hits": out["cache_hits"]}


def one_off_seconds(guard_s: Sequence[float], steady_s: Sequence[float]) -> float:
    """Compile (and CUDA-graph recording) time: every timed step's excess over a steady-state step.

    With cudagraph trees the first compiled call compiles and runs eagerly, the second records the
    graphs and only later calls replay them (later still where an autotuner asks for another warm-up
    run), so the one-off cost is spread over the first steps. The median of the steady steps says
    what a step costs with nothing one-off in it; summing the steady steps' excess too keeps a
    recording that came late inside compile_s.
    """
    if not guard_s or not steady_s:
        raise ValueError("need guard and steady step times")
    steps = [*guard_s, *steady_s]
    return max(0.0, sum(steps) - len(steps) * statistics.median(steady_s))


def _warm_compile_main(spec: dict[str, Any]) -> dict[str, Any]:
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    net, batches = build(spec["benchmark"], spec["params"])
    model = WithLoss(net).to(device).train()
    trainer, _ = make_trainer(model, compile_model(model, spec["mode"]), spec["params"]["optimizer"],
                              spec["dtype"], spec["mode"], device)
    guard = [tuple(t.to(device) for t in batches(i)) for i in range(GUARD_STEPS)]
    before = dynamo_counts()
    # device sync goes through benchbench's backend, as everywhere else
    from benchbench.measure.backends import get

    backend = get(device.type)

    def timed(batch: Batch) -> float:
        backend.synchronize()
        t0 = time.perf_counter()
        trainer.step(*batch)
        backend.synchronize()
        return time.perf_counter() - t0

    guard_s = [timed(b) for b in guard]
    cache_hits = dynamo_counts().get("cache_hits", 0) - before.get("cache_hits", 0)
    steady_s = [timed(guard[0]) for _ in range(STEADY_STEPS)]
    return {"compile_s": one_off_seconds(guard_s, steady_s), "cache_hits": cache_hits}


def extra_compile(pristine: nn.Module, optimizer: str, dtype: str, mode: str, device: torch.device,
                  guard: list, ctx: Context, root: Path) -> float:
    """One more cold compile of the case, on a fresh copy of the model: its guard and steady steps timed as
    the kept compile's are (`one_off_seconds`)."""
    with cold_compile.fresh(root):
        model = copy.deepcopy(pristine)
        try:
            trainer, _ = make_trainer(model, compile_model(model, mode), optimizer, dtype, mode, device)
            guard_s = [ctx.time_once(lambda b=batch: trainer.step(*b))[0] for batch in guard]
        except Exception as exc:
            raise compile_failure(exc, mode) from exc
        steady_s = [ctx.time_once(lambda: trainer.step(*guard[0]))[0] for _ in range(STEADY_STEPS)]
    return one_off_seconds(guard_s, steady_s)


# --- the case -------------------------------------------------------------------------------------
def eager_losses_of(model: nn.Module, batches: list, optimizer: str, dtype: str, device: torch.device) -> list[float]:
    """Losses of GUARD_STEPS eager steps on a copy of `model` (which stays untouched)."""
    copy_ = copy.deepcopy(model)
    trainer, _ = make_trainer(copy_, copy_, optimizer, dtype, "eager", device)
    return [float(trainer.step(*b)) for b in batches]


def reference_losses_of(model: nn.Module, batches: list, optimizer: str) -> list[float]:
    """The same steps in float64 without autocast: the yardstick for both eager and compiled.

    On the model's device, except where it has no float64 (MPS): there on the CPU.
    """
    device = next(model.parameters()).device
    if device.type == "mps":
        device = torch.device("cpu")
    wide = copy.deepcopy(model).to(device=device, dtype=torch.float64)
    batches = [tuple(t.to(device=device, dtype=torch.float64) if t.is_floating_point() else t.to(device)
                     for t in b) for b in batches]
    return eager_losses_of(wide, batches, optimizer, "float32", device)


def train_case(ctx: Context, name: str, params: dict[str, Any]) -> Case:
    """Setup shared by every benchmark of this suite: an eager or compiled training step."""
    key = ctx.key
    reason = unsupported(key)
    if reason:
        raise Skip(reason)
    mode, dtype, device = key.mode or "eager", key.dtype or "float32", ctx.device
    torch.manual_seed(0)
    net, batches = build(name, params)
    model = WithLoss(net).to(device).train()
    x, y = (t.to(device) for t in batches(0))
    # CUDA graphs replay from a private pool only the reserved counter sees (see the module docstring)
    items = {"items": int(params["batch"]), "items_unit": "samples",
             "memory_counter": "reserved" if ctx.backend.name == "cuda" else "allocated"}
    if mode == "eager":
        trainer, impl = make_trainer(model, model, params["optimizer"], dtype, mode, device)
        ctx.backend.reset_peak_memory()  # peak memory of training, as for compiled cases
        return Case(lambda: trainer.step(x, y), metrics={"optimizer_impl": impl}, **items)

    # Correctness guard, part 1: eager losses (same precision, and float64) from the same initial
    # weights and batches.
    guard = [tuple(t.to(device) for t in batches(i)) for i in range(GUARD_STEPS)]
    eager_losses = eager_losses_of(model, guard, params["optimizer"], dtype, device)
    reference_losses = reference_losses_of(model, guard, params["optimizer"])

    own_tmp = None
    if ctx.scratch_dir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="benchbench-training-")
    cache_dir = Path(own_tmp.name if own_tmp else ctx.scratch_dir) / "inductor-cache"
    try:
        pristine = copy.deepcopy(model)
        extra_s = [extra_compile(pristine, params["optimizer"], dtype, mode, device, guard, ctx, cache_dir.parent)
                   for _ in range(ctx.compile_repeats - 1)]
        cold_compile.clear()  # the compile that is kept starts as cold as the others
        with inductor_cache(cache_dir):
            before = dynamo_counts()
            after_first = before  # GUARD_STEPS >= 1 replaces it after the first (compiling) call
            phases_before, breaks_before = compile_time.snapshot(), compile_time.break_counts()
            guard_s: list[float] = []
            compiled_losses: list[float] = []
            try:
                trainer, impl = make_trainer(model, compile_model(model, mode), params["optimizer"], dtype, mode,
                                             device)
                for i, batch in enumerate(guard):
                    seconds, loss = ctx.time_once(lambda b=batch: trainer.step(*b))
                    guard_s.append(seconds)
                    compiled_losses.append(float(loss))
                    if i == 0:
                        after_first = dynamo_counts()
                        first_phases = compile_time.phases(phases_before)
                        break_reasons = compile_time.graph_break_reasons(breaks_before)
            except Exception as exc:  # compiling, or (CUDA graphs) recording on a later guard step
                raise compile_failure(exc, mode) from exc
            after_guard = dynamo_counts()
            steady_s = [ctx.time_once(lambda: trainer.step(x, y))[0] for _ in range(STEADY_STEPS)]
            compile_s = one_off_seconds(guard_s, steady_s)
            spec = {"benchmark": name, "params": params, "dtype": dtype, "mode": mode, "device": str(device)}
            warm = warm_compile(spec, cache_dir, timeout=120 + 2 * compile_s)
    finally:
        if own_tmp is not None:
            own_tmp.cleanup()

    mismatch = loss_mismatch(reference_losses, eager_losses, compiled_losses, LOSS_FLOOR[dtype])
    metrics: dict[str, Any] = {
        "optimizer_impl": impl, **cold_compile.round_metrics([*extra_s, compile_s]), **warm,
        "guard_steps_s": guard_s, "steady_steps_s": steady_s,
        "graphs": after_first.get("graphs", 0) - before.get("graphs", 0),
        "graph_breaks": after_first.get("graph_breaks", 0) - before.get("graph_breaks", 0),
        **first_phases, "graph_break_reasons": break_reasons,  # the first call's Dynamo / Inductor split
        "loss_float64": reference_losses, "loss_eager": eager_losses, "loss_compiled": compiled_losses,
    }
    if mismatch:
        metrics["loss_mismatch"] = mismatch
    guard_recompiles = after_guard.get("frames", 0) - after_first.get("frames", 0)

    def finish() -> dict[str, Any]:
        # every frame compiled after the first call is a recompilation (guard steps, warm-up, samples)
        return {"recompiles": guard_recompiles + dynamo_counts().get("frames", 0) - after_guard.get("frames", 0)}

    ctx.backend.reset_peak_memory()  # the compile and the eager reference copy are not training memory
    return Case(lambda: trainer.step(x, y), metrics=metrics, flags=["loss-mismatch"] if mismatch else [],
                finish=finish, **items)


# --- the benchmarks -------------------------------------------------------------------------------
_COMMON: dict[str, Any] = {"dtypes": DTYPES, "modes": MODES, "isolate": isolated}
_FAST = {"mode": ["eager", "compile"]}  # quick and default profiles: the CUDA-only modes go to full
_QUICK = {**_FAST, "dtype": ["float32"]}


@benchmark(params={"size": ["small", "wide"], "batch": [128], "optimizer": ["adam", "sgd"]},
           profiles={"quick": {**_QUICK, "size": ["small"], "optimizer": ["adam"]},
                     "default": {**_FAST, "optimizer": ["adam"]}},
           overview={"size": ["small"], "optimizer": ["adam"], "dtype": ["float32"], "mode": ["eager"]},
           timeout=600, **_COMMON)
def mlp(ctx: Context, size: str, batch: int, optimizer: str) -> Case:
    """Tabular MLP, 50 features -> 3 classes (small: 64 wide, wide: 1024), one training step."""
    return train_case(ctx, "mlp", {"size": size, "batch": batch, "optimizer": optimizer})


@benchmark(params={"batch": [64], "optimizer": ["sgd", "adam"]},
           profiles={"quick": {**_QUICK, "optimizer": ["sgd"]}, "default": {**_FAST, "optimizer": ["sgd"]}},
           timeout=600, **_COMMON)
def cnn(ctx: Context, batch: int, optimizer: str) -> Case:
    """MNIST-style two-conv net on 28x28 single-channel images, one training step."""
    return train_case(ctx, "cnn", {"batch": batch, "optimizer": optimizer})


@benchmark(params={"image": [32, 224], "batch": [32], "optimizer": ["sgd", "adam"]},
           profiles={"quick": {**_QUICK, "image": [32], "optimizer": ["sgd"]},
                     "default": {**_FAST, "optimizer": ["sgd"]}},
           timeout=1200, **_COMMON)
def resnet18(ctx: Context, image: int, batch: int, optimizer: str) -> Case:
    """torchvision resnet18 (random init, 10 classes) on image x image RGB batches, one training step."""
    return train_case(ctx, "resnet18", {"image": image, "batch": batch, "optimizer": optimizer})


@benchmark(params={"batch": [16], "seq": [64], "optimizer": ["adam", "sgd"]},
           profiles={"quick": {**_QUICK, "optimizer": ["adam"]}, "default": {**_FAST, "optimizer": ["adam"]}},
           timeout=1200, **_COMMON)
def transformer(ctx: Context, batch: int, seq: int, optimizer: str) -> Case:
    """One nn.TransformerEncoderLayer (d=256, 4 heads) with embedding and token head, one training step."""
    return train_case(ctx, "transformer", {"batch": batch, "seq": seq, "optimizer": optimizer})


# --- cross-case metrics -----------------------------------------------------------------------------
def payoff(eager_step_s: float, compiled_step_s: float, compile_s: float | None) -> tuple[float, int | None]:
    """(speedup of compiled over eager, steps until the compile time is paid back or None for never).

    Break-even = compile time / time saved per step, rounded up: after that many steps the compiled
    run has caught up with eager. Never when the compiled step is not faster.
    """
    if eager_step_s <= 0 or compiled_step_s <= 0:
        raise ValueError("step times must be positive")
    speedup = eager_step_s / compiled_step_s
    saved = eager_step_s - compiled_step_s
    if compile_s is None or saved <= 0:
        return speedup, None
    return speedup, max(1, math.ceil(compile_s / saved - 1e-9))


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.2g} s"


def payoff_note(speedup: float, break_even: int | None, compile_s: float | None, within_noise: bool = False,
                mismatch: bool = False) -> str:
    """The table's one-line summary of a compiled case."""
    if mismatch:
        return f"LOSS MISMATCH vs eager: {speedup:.2f}x not trusted"
    parts = [f"{speedup:.2f}x eager" + (" (within noise)" if within_noise else "")]
    if compile_s is not None:
        parts.append(f"compile {_seconds(compile_s)}")
    if compile_s is None:
        return parts[0]
    if within_noise:  # eager may be as fast: no step count after which compiling has paid off
        return ", ".join(parts) + ": no measurable pay-off"
    if break_even is None:
        return ", ".join(parts) + ": never pays off"
    return ", ".join(parts) + f", pays off after {break_even:,} steps"


def _overlap(a: Result, b: Result) -> bool:
    sa, sb = a.stats, b.stats
    return sa is not None and sb is not None and sa.ci_low <= sb.ci_high and sb.ci_low <= sa.ci_high


def derive(results: list[Result]) -> None:
    """Pair each compiled result with the eager one of the same key and write speedup and break-even."""
    eager = {r.key: r for r in results if (r.key.mode or "eager") == "eager" and r.ok and r.stats}
    for r in results:
        if r.key.mode not in COMPILED_MODES or not r.ok or r.stats is None:
            continue
        twin = eager.get(replace(r.key, mode="eager"))
        if twin is None:
            r.note = "no eager result to compare with"
            continue
        compile_s = r.metrics.get("compile_s")
        speedup, steps = payoff(twin.stats.median, r.stats.median, compile_s)
        warm = r.metrics.get("compile_warm_s")
        r.metrics["speedup"] = speedup
        r.metrics["break_even_steps"] = steps
        r.metrics["break_even_steps_warm"] = payoff(twin.stats.median, r.stats.median, warm)[1] if warm else None
        r.metrics["speedup_within_noise"] = _overlap(r, twin)
        same_counter = r.memory_kind == twin.memory_kind
        if r.peak_memory_bytes and twin.peak_memory_bytes and same_counter:
            r.metrics["peak_memory_vs_eager"] = r.peak_memory_bytes / twin.peak_memory_bytes
        r.note = payoff_note(speedup, steps, compile_s, within_noise=_overlap(r, twin),
                             mismatch="loss-mismatch" in r.flags)


# --- the suite's report page hooks (suites/_training_page.py), imported when called: this file also runs
# as a script (the warm-compile child, `runpy.run_path`), where a relative import at the top would fail
def page_blocks(runs: Sequence[Any], backend: bool) -> list[Any]:
    from ._training_page import page_blocks as blocks

    return blocks(runs, backend)


def page_note(result: Result) -> str | None:
    from ._training_page import page_note as note

    return note(result)


if __name__ == "__main__" and sys.argv[1:2] == ["--warm-compile"]:
    print(json.dumps(_warm_compile_main(json.loads(sys.argv[2]))), flush=True)
