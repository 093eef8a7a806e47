"""DataLoader speed on a real JPEG pipeline: where the time goes, and the settings to use here.

The images are made offline: a deterministic folder of photo-like JPEGs (smooth shapes, a 1/f
texture as natural images have, quality 75-95, about 500x375 and 60-170 KB) in `ImageFolder`
layout, generated once from a fixed seed and cached under `$BENCHBENCH_CACHE_DIR`,
`$XDG_CACHE_HOME/benchbench` or `~/.cache/benchbench`, keyed by the generator's parameters.

The pipeline is the one users run: `ImageFolder` + `transforms.v2` (`RandomResizedCrop(224)`,
horizontal flip, to float, normalize), decoding with PIL (ImageFolder's default), with
`torchvision.io.decode_jpeg` (deprecated since torchvision 0.29: measured because people still run
it; its per-call warning is caught and reported once per run), with TorchCodec's
`torchcodec.decoders.decode_jpeg` (the optional extra `pip install "benchbench[codecs]"`; its cases
are skipped with that hint without it) and, where CUDA is present, with TorchCodec decoding each batch
on the GPU (workers read the bytes, the main process decodes and transforms on the device). Every
loader object comes from torch, torchvision, torchcodec or numpy, so spawn and forkserver workers can
unpickle it.

- `stage`: one stage at a time in this process (read bytes, decode, transform, collate, and on
  accelerators the host-to-device copy with and without pinned memory).
- `jpeg_pipeline` / `jpeg_knobs` / `in_memory`: a DataLoader timed by this suite. A sample is the
  time per batch over a window of max(1, num_workers) batches (one batch from each worker), so
  workers that deliver in bursts do not fool it; the first window of each epoch (worker start-up)
  is never a sample. Worker memory (USS/PSS summed over the workers) is read during the epoch.
- `first_batch`: time from `iter(loader)` to the first batch, in epoch 1 and in epoch 2, with and
  without `persistent_workers`.
- `train_step`: a resnet18 training step (as in the training suite) for the input-bound check.

The recommendation's speed-up and its interval come from one estimator (`speedup_interval`: the
settings' per-round ratios), so the number always lies inside its interval.

`derive` writes the per-stage breakdown, the recommendation and the input-bound check into the
results' metrics; `notes` turns them into the lines printed after a run. The parts live in
`suites/_dataloader/`, one concern a module: the image set, the pipeline and its settings, loader
timing, the analysis and the text. Worker counts never
exceed the usable CPUs (the full profile adds one oversubscribed count).
"""

from __future__ import annotations

import gc
import io
import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from benchbench import Case, Skip, benchmark, usable_cpus

from ._dataloader.analysis import derive
from ._dataloader.images import CLASSES, ImageSet, images_for
from ._dataloader.page import page_blocks
from ._dataloader.pipeline import (
    CROP,
    DECODERS,
    GPU_DECODER,
    KNOB_SETTINGS,
    KNOBS,
    START_METHODS,
    decode_jpeg_rgb,
    decode_torchcodec_rgb,
    decoder_reason,
    decoder_version,
    deprecation_metrics,
    device_decoder,
    knob_reason,
    make_dataset,
    make_loader,
    make_transform,
    torchcodec_decode,
    worker_counts,
)
from ._dataloader.text import notes
from ._dataloader.timing import (
    FIRST_BATCH_REPEATS,
    MIN_EPOCH_BATCHES,
    SAMPLING,
    first_batch_times,
    time_loader,
    worker_memory,
)

if TYPE_CHECKING:  # pragma: no cover
    from benchbench import Context

# the suite's hooks: metrics across cases, the lines printed after a run, its part of the report page
__all__ = ["derive", "notes", "page_blocks"]

SUITE = "dataloader"


def _timing_method(ctx: Context) -> str:
    return "perf_counter" if ctx.backend.name == "cpu" else "sync+perf_counter"


def _device_consumer(ctx: Context, pin: bool, decode_on_device: bool = False
                     ) -> tuple[Callable[[Any], None] | None, Callable[[], None] | None]:
    """On accelerators each batch is copied to the device (asynchronously from pinned memory), or, for
    the GPU decoder, decoded and transformed there; the backend synchronizes at each window's end."""
    if decode_on_device:
        return device_decoder(ctx.device), ctx.synchronize
    if ctx.backend.name == "cpu":
        return None, None
    device = ctx.device

    def consume(batch: Any) -> None:
        batch[0].to(device, non_blocking=pin)
        batch[1].to(device, non_blocking=pin)

    return consume, ctx.synchronize


def loader_case(ctx: Context, dataset: Any, batch: int, num_workers: int, knob: str,
                metrics: dict[str, Any], decode_on_device: bool = False) -> Case:
    """A DataLoader over `dataset`, timed (see the module docstring). `decode_on_device`: the dataset
    gives encoded bytes, batched as lists, that the main process decodes on the device."""
    reason = knob_reason(knob, num_workers, ctx.backend.name)
    if reason:
        raise Skip(reason)
    settings = KNOB_SETTINGS[knob]
    min_samples, max_samples, max_s = SAMPLING.get(ctx.profile, SAMPLING["default"])
    window = max(1, num_workers)
    # an epoch long enough for the samples, so workers start once (twice when the machine is slow)
    epoch = max(MIN_EPOCH_BATCHES, (min_samples + 2) * window)
    loader = make_loader(dataset, batch, num_workers, epoch_batches=epoch, collate=list if decode_on_device else None,
                         **settings)
    consume, sync = _device_consumer(ctx, settings.get("pin", False), decode_on_device)
    timing = time_loader(loader, window, min_samples, max_samples, max_s, consume=consume, sync=sync,
                         memory=worker_memory if num_workers else None)
    del loader
    gc.collect()
    # samples are windows of a stream: a window served from prefetched batches is fast for a reason that
    # is not the pipeline's cost, so compare and gate take each round's median, not its fastest window
    out = {**metrics, "num_workers": num_workers, "knob": knob, "window_batches": window,
           "torch_threads": torch.get_num_threads(),
           "first_batch_s": timing.first_batch_s[0], "epochs": timing.epochs, "batches": timing.batches,
           "batch_bytes": timing.batch_bytes,
           **timing.worker_memory}
    return Case(None, samples=timing.samples, timing_method=_timing_method(ctx), items=batch, items_unit="images",
                metrics=out, round_statistic="median")


# --- the benchmarks -------------------------------------------------------------------------------
CPUS = usable_cpus()
WORKERS = {p: worker_counts(CPUS, p) for p in ("quick", "default", "full")}
STAGES = ("read", "decode-pil", "decode-torchvision", "decode-torchcodec",
          *((f"decode-{GPU_DECODER}",) if GPU_DECODER in DECODERS else ()),
          "transform-pil", "transform-torchvision", "collate", "h2d", "h2d-pinned")
STAGE_SAMPLE = 64  # stage cases cycle over this many images
QUICK = {"batch": [16]}  # the quick profile's batches: a CPU without workers takes seconds for 32 images


def stage_inputs(images: ImageSet, stage: str) -> list[Any]:
    """What a stage consumes: paths, encoded bytes, decoded images or transformed tensors."""
    from PIL import Image

    files = list(images.files[:STAGE_SAMPLE])
    if stage == "read":
        return files
    data = [p.read_bytes() for p in files]
    if stage == "decode-pil":
        return data
    tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in data]
    if stage.startswith("decode-"):
        return tensors
    if stage == "transform-pil":
        return [Image.open(io.BytesIO(b)).convert("RGB") for b in data]
    decode = decode_jpeg_rgb()
    return [decode(t) for t in tensors]


@benchmark(params={"stage": STAGES, "batch": [32]}, profiles={"quick": QUICK}, timeout=900)
def stage(ctx: Context, stage: str, batch: int) -> Case:
    """One stage of the JPEG pipeline alone, in this process: per image (read, decode, transform) or per batch."""
    if stage.startswith("h2d") and ctx.backend.name == "cpu":
        raise Skip("host-to-device copy: the cpu backend has no device to copy to")
    decoder = stage.split("-", 1)[1] if stage.startswith("decode-") else None
    reason = decoder_reason(decoder, ctx.backend.name) if decoder else None
    if reason:
        raise Skip(reason)
    images, metrics = images_for(ctx)
    if decoder:
        metrics["decoder_version"] = decoder_version(decoder)
    case = _stage_case(ctx, stage, batch, images, metrics)
    # One intra-op thread, as in a DataLoader worker: the stages are what each worker pays per image.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def finish() -> dict[str, Any]:
        torch.set_num_threads(threads)
        return {"torch_threads": 1}

    case.finish = finish
    return case


def _stage_case(ctx: Context, stage: str, batch: int, images: ImageSet, metrics: dict[str, Any]) -> Case:
    from PIL import Image
    from torch.utils.data import default_collate

    metrics["per"] = "image"
    if stage == "read":
        nxt = itertools.cycle(stage_inputs(images, "read")).__next__
        sizes = [p.stat().st_size for p in images.files[:STAGE_SAMPLE]]

        def read() -> bytes:
            with open(nxt(), "rb") as fh:
                return fh.read()

        return Case(read, items=1, items_unit="images", bytes=sum(sizes) / len(sizes), metrics=metrics,
                    check_output=False)
    if stage == "decode-pil":
        nxt = itertools.cycle(stage_inputs(images, stage)).__next__
        return Case(lambda: Image.open(io.BytesIO(nxt())).convert("RGB"), items=1, items_unit="images",
                    metrics=metrics, check_output=False)
    if stage == "decode-torchvision":
        nxt, decode = itertools.cycle(stage_inputs(images, stage)).__next__, decode_jpeg_rgb()
        return Case(lambda: decode(nxt()), items=1, items_unit="images",
                    metrics={**metrics, **deprecation_metrics("torchvision")})
    if stage == "decode-torchcodec":
        nxt, decode = itertools.cycle(stage_inputs(images, stage)).__next__, decode_torchcodec_rgb()
        return Case(lambda: decode(nxt()), items=1, items_unit="images", metrics=metrics)
    if stage == f"decode-{GPU_DECODER}":
        return gpu_decode_stage(ctx, stage_inputs(images, stage), batch, metrics)
    if stage.startswith("transform"):
        nxt, transform = itertools.cycle(stage_inputs(images, stage)).__next__, make_transform()
        return Case(lambda: transform(nxt()), items=1, items_unit="images", metrics=metrics)
    transform = make_transform()
    decoded = stage_inputs(images, "transform-torchvision")
    samples = [(transform(decoded[i % len(decoded)]), i % CLASSES) for i in range(batch)]
    metrics["per"] = "batch"
    if stage == "collate":
        return Case(lambda: default_collate(samples), items=batch, items_unit="images", metrics=metrics)
    pinned = stage == "h2d-pinned"
    x = default_collate(samples)[0]
    x = x.pin_memory() if pinned else x
    device = ctx.device
    return Case(lambda: x.to(device, non_blocking=pinned), items=batch, items_unit="images",
                bytes=x.numel() * x.element_size(), metrics=metrics)


def gpu_decode_stage(ctx: Context, encoded: Sequence[torch.Tensor], batch: int, metrics: dict[str, Any],
                     decode: Callable[..., Any] | None = None) -> Case:
    """TorchCodec's GPU decode alone: `batch` encoded images per call, decoded on the device in one
    call (nvJPEG works on batches). The call only queues device work; the harness times it with the
    backend's timer (device events on CUDA), which waits for it."""
    decode = decode or torchcodec_decode()
    batches = [[encoded[(i * batch + j) % len(encoded)] for j in range(batch)] for i in range(len(encoded))]
    nxt, device = itertools.cycle(batches).__next__, ctx.device
    return Case(lambda: decode(nxt(), mode="RGB", device=device), items=batch, items_unit="images",
                metrics={**metrics, "per": "batch"}, check_output=False)


def decoder_case(ctx: Context, decoder: str, batch: int, num_workers: int, knob: str) -> Case:
    """The JPEG pipeline with this decoder through a DataLoader; skipped where the decoder cannot run."""
    reason = decoder_reason(decoder, ctx.backend.name)
    if reason:
        raise Skip(reason)
    images, metrics = images_for(ctx)
    metrics = {**metrics, "decoder_version": decoder_version(decoder), **deprecation_metrics(decoder)}
    return loader_case(ctx, make_dataset(images.root, decoder), batch, num_workers, knob, metrics,
                       decode_on_device=decoder == GPU_DECODER)


@benchmark(params={"decoder": DECODERS, "num_workers": WORKERS["default"], "batch": [32, 64]},
           profiles={"quick": {**QUICK, "num_workers": WORKERS["quick"]}, "full": {"num_workers": WORKERS["full"]}},
           overview={"decoder": ["pil"], "num_workers": sorted({0, CPUS}), **QUICK}, timeout=900)
def jpeg_pipeline(ctx: Context, decoder: str, num_workers: int, batch: int) -> Case:
    """ImageFolder + transforms.v2 through a DataLoader (default settings): seconds per batch."""
    return decoder_case(ctx, decoder, batch, num_workers, "none")


@benchmark(params={"knob": KNOBS[1:], "decoder": ["pil", "torchcodec"], "num_workers": [CPUS], "batch": [32]},
           profiles={"quick": {**QUICK, "knob": ["unordered", "prefetch4"]}}, timeout=900)
def jpeg_knobs(ctx: Context, knob: str, decoder: str, num_workers: int, batch: int) -> Case:
    """The JPEG pipeline with one DataLoader setting changed (in_order, prefetch_factor, pin_memory, start method)."""
    return decoder_case(ctx, decoder, batch, num_workers, knob)


IN_MEMORY_ITEMS = 256


@benchmark(params={"num_workers": WORKERS["default"], "batch": [32]},
           profiles={"quick": {**QUICK, "num_workers": WORKERS["quick"]}, "full": {"num_workers": WORKERS["full"]}},
           timeout=900)
def in_memory(ctx: Context, num_workers: int, batch: int) -> Case:
    """TensorDataset of ready 3x224x224 float32 images through a DataLoader: the loader's own overhead."""
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(IN_MEMORY_ITEMS, 3, CROP, CROP, generator=g),
                         torch.randint(0, CLASSES, (IN_MEMORY_ITEMS,), generator=g))
    return loader_case(ctx, data, batch, num_workers, "none", {"items_in_memory": IN_MEMORY_ITEMS})


@benchmark(params={"epoch": [1, 2], "persistent": [False, True], "num_workers": [CPUS], "start": ["fork"],
                   "decoder": ["pil"], "batch": [32]},
           profiles={"quick": QUICK, "default": {"start": [s for s in START_METHODS if s != "forkserver"]},
                     "full": {"start": list(START_METHODS)}}, timeout=900)
def first_batch(ctx: Context, epoch: int, persistent: bool, num_workers: int, start: str, decoder: str,
                batch: int) -> Case:
    """Seconds from iter(loader) to the first batch (worker start-up), epoch 1 or 2, persistent_workers or not."""
    import multiprocessing

    if start not in multiprocessing.get_all_start_methods():
        raise Skip(f"start method {start} is not available on this OS")
    if num_workers == 0:
        raise Skip("no workers to start")
    if epoch == 1 and persistent:
        raise Skip("epoch 1 starts the workers with or without persistent_workers: see persistent=False")
    images, metrics = images_for(ctx)
    dataset = make_dataset(images.root, decoder)
    repeats = FIRST_BATCH_REPEATS.get(ctx.profile, FIRST_BATCH_REPEATS["default"])

    def make() -> Any:  # a short epoch: start-up is what is timed, draining it is not
        return make_loader(dataset, batch, num_workers, epoch_batches=2 * num_workers, persistent=persistent,
                           start=start)

    times = first_batch_times(make, epoch, repeats)
    return Case(None, samples=times, timing_method=_timing_method(ctx), metrics={**metrics, "epoch": epoch})


def make_train_step(batch: int, device: torch.device) -> Callable[[], torch.Tensor]:
    """A resnet18 training step on a fixed 224x224 batch, as the training suite's (SGD with momentum,
    fused where the backend has it, else foreach)."""
    import torchvision
    from torch.nn import functional as F

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).to(device).train()
    impl = "fused" if device.type in ("cpu", "cuda") else "foreach"
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, **{impl: True})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, CROP, CROP, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


# Per profile: warm-up steps and timed steps. A CPU step at 224x224 takes seconds, so this case times
# itself with a fixed, small count instead of the harness's minimum sample count.
TRAIN_STEPS = {"quick": (1, 1), "default": (2, 8), "full": (3, 20)}


@benchmark(params={"model": ["resnet18"], "batch": [32]}, profiles={"quick": {"batch": [2]}}, timeout=1200)
def train_step(ctx: Context, model: str, batch: int) -> Case:
    """resnet18 training step at 224x224 on this backend: the rate the loader has to keep up with."""
    step = make_train_step(batch, ctx.device)
    warmup, steps = TRAIN_STEPS.get(ctx.profile, TRAIN_STEPS["default"])
    for _ in range(warmup):
        ctx.time_once(step)
    samples = [ctx.time_once(step)[0] for _ in range(steps)]
    return Case(None, samples=samples, timing_method=_timing_method(ctx), items=batch, items_unit="images",
                metrics={"warmup_steps": warmup, "torch_threads": torch.get_num_threads()})
