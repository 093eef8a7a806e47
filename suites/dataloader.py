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
results' metrics; `notes` turns them into the lines printed after a run. Worker counts never
exceed the usable CPUs (the full profile adds one oversubscribed count).
"""

from __future__ import annotations

import functools
import gc
import hashlib
import io
import itertools
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchbench import Case, Skip, benchmark, usable_cpus

if TYPE_CHECKING:  # pragma: no cover
    from benchbench import Context, Result

SUITE = "dataloader"

# --- the image set ------------------------------------------------------------------------------
GENERATOR_VERSION = 1  # bump whenever make_jpeg changes what it writes
SEED = 0
CLASSES = 4
SIZES = ((500, 375), (375, 500), (500, 333))  # ImageNet's most common shapes
QUALITY = (75, 95)
IMAGES = {"quick": 256, "default": 1024, "full": 4096}
IMAGES_ENV = "BENCHBENCH_DATALOADER_IMAGES"  # overrides the count (tests use a tiny set)
CACHE_ENV = "BENCHBENCH_CACHE_DIR"
MANIFEST = "manifest.json"


def cache_root() -> Path:
    """benchbench's cache folder: $BENCHBENCH_CACHE_DIR, else $XDG_CACHE_HOME/benchbench, else ~/.cache/benchbench."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "benchbench"


def image_set_spec(count: int, seed: int = SEED, classes: int = CLASSES) -> dict[str, Any]:
    """Everything the bytes of the image set depend on: the generator's parameters and version, and the
    versions of the libraries that draw the random numbers and encode the JPEGs."""
    import numpy
    import PIL

    return {"generator": GENERATOR_VERSION, "count": int(count), "seed": int(seed), "classes": int(classes),
            "sizes": [list(s) for s in SIZES], "quality": list(QUALITY), "numpy": numpy.__version__,
            "pillow": PIL.__version__}


def image_set_key(spec: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return f"jpeg-v{spec['generator']}-n{spec['count']}-c{spec['classes']}-s{spec['seed']}-{digest}"


def _texture(rng: Any, h: int, w: int, alpha: float) -> Any:
    """Grey noise with a 1/f^alpha amplitude spectrum (natural photos have alpha near 1), unit variance."""
    import numpy as np

    fy = np.fft.fftfreq(h).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(w).astype(np.float32)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    shape = (h, fx.shape[1])
    spec = (rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(shape, dtype=np.float32)) / f**alpha
    spec[0, 0] = 0
    out = np.fft.irfft2(spec, s=(h, w)).astype(np.float32)
    return out / out.std()


def make_jpeg(seed: int, index: int) -> bytes:
    """One photo-like JPEG: a smooth colour gradient, a few blurred shapes, a 1/f texture, quality 75-95.

    Not pure noise: noise compresses and decodes unlike photos. A function of (seed, index) only.
    """
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng([seed, index])
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    corners = rng.integers(30, 226, size=(2, 2, 3), dtype=np.uint8)
    img = Image.fromarray(corners).resize((w, h), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = float(rng.uniform(-0.2 * w, w)), float(rng.uniform(-0.2 * h, h))
        x1, y1 = x0 + float(rng.uniform(0.05 * w, 0.5 * w)), y0 + float(rng.uniform(0.05 * h, 0.5 * h))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(3))
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            points = [(float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(points, fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.6, 1.5))))
    texture = _texture(rng, h, w, float(rng.uniform(0.6, 0.9))) * float(rng.uniform(25, 40))
    gains = rng.uniform(0.7, 1.3, size=3).astype(np.float32)
    pixels = np.asarray(img, dtype=np.float32) + texture[:, :, None] * gains
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
        out, format="JPEG", quality=int(rng.integers(QUALITY[0], QUALITY[1] + 1)))
    return out.getvalue()


@dataclass(frozen=True)
class ImageSet:
    root: Path
    files: tuple[Path, ...]
    total_bytes: int
    made: bool  # generated by this call (False: found in the cache)
    seconds: float  # time to find or make it

    @property
    def mean_bytes(self) -> float:
        return self.total_bytes / max(1, len(self.files))


def _load_manifest(folder: Path) -> ImageSet | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    files = tuple(folder / f["path"] for f in manifest["files"])
    return ImageSet(folder, files, sum(f["bytes"] for f in manifest["files"]), made=False, seconds=0.0)


def image_set(count: int, seed: int = SEED, classes: int = CLASSES, cache: Path | None = None) -> ImageSet:
    """The image set for these parameters: from the cache, or made once and cached.

    Made in a temporary folder beside its final place and renamed into it, so a reader never sees
    half a set; when two processes make it at once, the first rename wins and the other's copy is
    dropped.
    """
    t0 = time.perf_counter()
    spec = image_set_spec(count, seed, classes)
    parent = (cache or cache_root()) / "images"
    final = parent / image_set_key(spec)
    found = _load_manifest(final)
    if found is not None:
        return ImageSet(found.root, found.files, found.total_bytes, made=False, seconds=time.perf_counter() - t0)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".making-", dir=parent))
    try:
        entries = []
        for i in range(count):
            rel = f"class_{i % classes:02d}/img_{i:06d}.jpg"
            data = make_jpeg(seed, i)
            (tmp / rel).parent.mkdir(exist_ok=True)
            (tmp / rel).write_bytes(data)
            entries.append({"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        (tmp / MANIFEST).write_text(json.dumps({"spec": spec, "files": entries}, indent=1))
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first: use its set
            if _load_manifest(final) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    made = _load_manifest(final)
    if made is None:  # pragma: no cover - renamed but unreadable
        raise RuntimeError(f"image set at {final} is unreadable")
    return ImageSet(made.root, made.files, made.total_bytes, made=True, seconds=time.perf_counter() - t0)


def image_count(profile: str) -> int:
    raw = os.environ.get(IMAGES_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{IMAGES_ENV}={raw!r}: expected a positive number of images")
        return int(raw)
    return IMAGES.get(profile, IMAGES["default"])


def images_for(ctx: Context) -> tuple[ImageSet, dict[str, Any]]:
    images = image_set(image_count(ctx.profile))
    return images, {"images": len(images.files), "image_bytes_mean": images.mean_bytes,
                    "image_set": images.root.name, "image_set_made": images.made,
                    "image_set_s": images.seconds}


# --- the pipeline -------------------------------------------------------------------------------
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CROP = 224
GPU_DECODER = "torchcodec-cuda"  # TorchCodec's nvJPEG path: a batch decoded on the GPU in one call
START_METHODS = ("fork", "forkserver", "spawn")
CODECS_HINT = 'pip install "benchbench[codecs]"'
DEPRECATED_DECODERS = ("torchvision",)
# torchvision.io warns on every call since 0.29; the suite catches it and reports it once per run
TORCHVISION_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"


def decoders_for(cuda: bool) -> tuple[str, ...]:
    """The decoders measured: PIL (ImageFolder's default), torchvision.io (deprecated since torchvision
    0.29), TorchCodec on the CPU, and TorchCodec on the GPU where CUDA is present."""
    return ("pil", "torchvision", "torchcodec") + ((GPU_DECODER,) if cuda else ())


DECODERS = decoders_for(torch.cuda.is_available())
DECODER_TEXT = {"pil": "PIL decoding (ImageFolder's default)", "torchvision": "torchvision.io.decode_jpeg (deprecated)",
                "torchcodec": "torchcodec.decoders.decode_jpeg", GPU_DECODER: "torchcodec decode_jpeg on the GPU"}
# The recommendation's order of preference among settings equally fast: ImageFolder's own decoder, then
# TorchCodec (CPU before GPU), the deprecated torchvision.io path last.
DECODER_PREFERENCE = ("pil", "torchcodec", GPU_DECODER, "torchvision")


def make_transform() -> Any:
    """The training transform of torchvision's classification recipe, in transforms.v2."""
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), v2.RandomResizedCrop(CROP, antialias=True), v2.RandomHorizontalFlip(),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])


def torchvision_deprecation() -> str | None:
    """Catch torchvision.io's deprecation warning: decode one tiny JPEG with it, then silence the
    warning in this process (DataLoader workers forked from it inherit the filter).

    torchvision 0.29 warns on every call of its decoders; caught here, the suite reports it once per
    run (`notes`) instead of once per image. Returns the warning's first sentence, or None where this
    torchvision does not deprecate its decoders.
    """
    import re
    import warnings

    from PIL import Image
    from torchvision.io import decode_jpeg

    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="JPEG")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        decode_jpeg(torch.frombuffer(bytearray(out.getvalue()), dtype=torch.uint8))
    warnings.filterwarnings("ignore", message=re.escape(TORCHVISION_DEPRECATION), category=DeprecationWarning)
    text = next((str(w.message) for w in seen if str(w.message).startswith(TORCHVISION_DEPRECATION)), None)
    return text.split(". ")[0] + "." if text else None


def decode_jpeg_rgb() -> Callable[[torch.Tensor], torch.Tensor]:
    """torchvision.io.decode_jpeg to 3-channel RGB, as a picklable callable (spawn workers unpickle it).
    Its deprecation warning is silenced in this process (see torchvision_deprecation)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    torchvision_deprecation()
    return functools.partial(decode_jpeg, mode=ImageReadMode.RGB)


def torchcodec_reason() -> str | None:
    """Why TorchCodec cannot decode here (not installed, or its libraries do not load), or None."""
    try:
        import torchcodec.decoders  # noqa: F401
    except ImportError:
        return f"torchcodec is not installed: {CODECS_HINT}"
    except (OSError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"torchcodec does not load with this torch ({first}): {CODECS_HINT}"
    return None


def torchcodec_decode() -> Callable[..., Any]:
    """torchcodec.decoders.decode_jpeg (tests replace it with a fake)."""
    from torchcodec.decoders import decode_jpeg

    return decode_jpeg


def decode_torchcodec_rgb() -> Callable[[Any], torch.Tensor]:
    """TorchCodec's JPEG decoder to RGB on the CPU, from a path, bytes or a uint8 tensor (picklable)."""
    return functools.partial(torchcodec_decode(), mode="RGB")


def decoder_reason(decoder: str, backend: str) -> str | None:
    """Why a decoder cannot be measured on this backend, or None."""
    if decoder not in DECODER_TEXT:
        raise ValueError(f"unknown decoder {decoder!r} (known: {', '.join(DECODER_TEXT)})")
    if decoder.startswith("torchcodec"):
        reason = torchcodec_reason()
        if reason:
            return reason
    if decoder == GPU_DECODER and backend != "cuda":
        return "decodes on the GPU with nvJPEG: measured on the cuda backend"
    return None


def read_encoded() -> Callable[[str], Any]:
    """A file's bytes as a 1-D uint8 array (picklable; the GPU decoder takes the encoded bytes)."""
    import numpy as np

    return functools.partial(np.fromfile, dtype=np.uint8)


def make_dataset(root: Path, decoder: str) -> Any:
    """ImageFolder decoding with PIL (its default loader), torchvision.io.decode_jpeg (bytes read with
    read_file), TorchCodec's decode_jpeg from the path, or (GPU) returning the encoded bytes for the
    main process to decode on the device (`device_decoder`)."""
    from torchvision import datasets
    from torchvision import io as tvio
    from torchvision.transforms import v2

    if decoder == "pil":
        return datasets.ImageFolder(str(root), transform=make_transform())
    if decoder == "torchvision":
        transform = v2.Compose([v2.Lambda(decode_jpeg_rgb(), torch.Tensor), make_transform()])
        return datasets.ImageFolder(str(root), loader=tvio.read_file, transform=transform)
    if decoder == "torchcodec":
        return datasets.ImageFolder(str(root), loader=decode_torchcodec_rgb(), transform=make_transform())
    if decoder == GPU_DECODER:
        return datasets.ImageFolder(str(root), loader=read_encoded())
    raise ValueError(f"unknown decoder {decoder!r} (known: {', '.join(DECODER_TEXT)})")


def device_decoder(device: torch.device, decode: Callable[..., Any] | None = None
                   ) -> Callable[[list[tuple[Any, int]]], tuple[torch.Tensor, torch.Tensor]]:
    """The GPU path: a batch of (encoded bytes, label) decoded on `device` in one call (TorchCodec's
    nvJPEG batch decode), then transformed there image by image (each crop differs) and stacked.

    It only queues device work: whoever times it synchronizes through the backend (`time_loader`'s
    `sync` at window ends; the harness's device timer for the stage)."""
    decode = decode or torchcodec_decode()
    transform = make_transform()

    def run(batch: list[tuple[Any, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        data = [torch.as_tensor(encoded) for encoded, _ in batch]
        images = decode(data, mode="RGB", device=device)
        labels = torch.tensor([label for _, label in batch]).to(device, non_blocking=True)
        return torch.stack([transform(img) for img in images]), labels

    return run


def worker_counts(cpus: int, profile: str) -> list[int]:
    """num_workers values to try: 0, 1, then powers of two up to the usable CPUs and the CPU count itself.

    quick keeps at most four (0, 1, a middle one, all CPUs); full adds 2 x CPUs (oversubscribed).
    """
    counts = sorted({0, 1, cpus, *(2**k for k in range(1, 16) if 2**k < cpus)})
    if profile == "quick" and len(counts) > 4:
        counts = [0, 1, counts[len(counts) // 2], cpus]
    if profile == "full":
        counts.append(2 * cpus)
    return counts


def make_loader(dataset: Any, batch: int, num_workers: int, *, epoch_batches: int, seed: int = 0,
                persistent: bool = False, prefetch: int | None = None, start: str | None = None,
                in_order: bool = True, pin: bool = False, collate: Callable[[list], Any] | None = None
                ) -> torch.utils.data.DataLoader:
    """A shuffling DataLoader whose epoch is `epoch_batches` full batches, whatever the dataset's size."""
    from torch.utils.data import DataLoader, RandomSampler

    sampler = RandomSampler(dataset, num_samples=epoch_batches * batch, generator=torch.Generator().manual_seed(seed))
    extra: dict[str, Any] = {}
    if num_workers > 0:
        import multiprocessing

        extra = {"persistent_workers": persistent, "prefetch_factor": prefetch,
                 "multiprocessing_context": multiprocessing.get_context(start) if start else None,
                 "in_order": in_order}
    return DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=num_workers, drop_last=True,
                      pin_memory=pin, collate_fn=collate, **extra)


# --- timing a loader ----------------------------------------------------------------------------
# Per profile: the fewest and most samples, and the seconds to sample for once the fewest are in.
# quick runs in 3 rounds (fresh worker processes) like every suite: a round takes little.
SAMPLING = {"quick": (2, 20, 0.5), "default": (10, 200, 10.0), "full": (20, 1000, 30.0)}
FIRST_BATCH_REPEATS = {"quick": 1, "default": 4, "full": 8}
MIN_EPOCH_BATCHES = 16


WORKER_EXIT_WAIT_S = 2.0


class WorkerError(RuntimeError):
    """A DataLoader worker raised: the message names the worker and its exception in one line."""


def worker_failure(exc: BaseException, it: Any = None) -> BaseException:
    """The error to report for an exception out of a DataLoader iterator.

    DataLoader re-raises a worker's exception with "Caught X in DataLoader worker process N." on the
    first line and the worker's traceback below; a result keeps only the first line of its reason, so
    the worker's own last line (its exception and message) goes beside it. A worker that died gives
    "DataLoader worker (pid(s) N) exited unexpectedly". Either becomes a new WorkerError that holds no
    reference to the iterator (a traceback would keep it, and its workers, alive); anything else is
    returned without its traceback, for the same reason.
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if first.startswith("Caught ") and "DataLoader worker" in first:
        last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), first)
        where = first[len("Caught "):].rstrip(".")
        return WorkerError(f"{where}: {last}" if last != first else where)
    if first.startswith("DataLoader worker (pid"):
        return WorkerError(first)
    # A worker that dies while the main process fetches its batch's shared memory shows up as EOFError
    # or ConnectionResetError, often before the worker has finished exiting: wait for its exit code.
    workers = getattr(it, "_workers", None) or []
    if isinstance(exc, (EOFError, ConnectionError)) and workers:
        deadline = time.monotonic() + WORKER_EXIT_WAIT_S
        try:
            while True:
                dead = [(w.pid, w.exitcode) for w in workers if w.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        except RuntimeError as late:  # DataLoader's SIGCHLD handler saw the worker die first
            if not str(late).startswith("DataLoader worker (pid"):
                raise
            return WorkerError(str(late).splitlines()[0])
        if dead:
            pid, code = dead[0]
            return WorkerError(f"DataLoader worker (pid {pid}) exited unexpectedly with exit code {code} "
                               f"({type(exc).__name__} while receiving a batch)")
    return exc.with_traceback(None)


@dataclass
class LoaderTiming:
    samples: list[float]  # seconds per batch, one per window of `window` batches
    window: int
    first_batch_s: list[float]  # time to the first batch of each epoch started
    batches: int
    epochs: int
    batch_bytes: int  # tensor bytes of one batch (what workers pass through shared memory)
    worker_memory: dict[str, float] = field(default_factory=dict)


def worker_memory() -> dict[str, float]:
    """USS and PSS (where the OS reports it) summed over this process's descendants: the DataLoader
    workers while an epoch is running (and the forkserver, with that start method)."""
    import psutil

    total: dict[str, float] = {}
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            info = child.memory_full_info()
        except (psutil.Error, OSError):
            continue
        for name in ("uss", "pss"):
            if hasattr(info, name):
                total[f"workers_{name}_bytes"] = total.get(f"workers_{name}_bytes", 0.0) + float(getattr(info, name))
    if total:
        total["workers_seen"] = float(len(children))
    return total


def time_loader(loader: Iterable, window: int, min_samples: int, max_samples: int, max_s: float,
                consume: Callable[[Any], None] | None = None, sync: Callable[[], None] | None = None,
                memory: Callable[[], dict[str, float]] | None = None,
                clock: Callable[[], float] = time.perf_counter) -> LoaderTiming:
    """Iterate epochs of `loader` until enough windows are timed.

    Each window of `window` batches gives a sample (seconds per batch); the first window of every epoch
    holds the workers' start-up and is not one. `consume` handles each batch (e.g. the device copy),
    `sync` waits for the device at window ends, `memory` is read once per epoch, mid-way. Sampling stops
    at `min_samples` once `max_s` has passed or at `max_samples`, and at the end of an epoch that leaves
    `min_samples` in.
    """
    if window < 1 or min_samples < 1:
        raise ValueError("window and min_samples must be positive")
    samples: list[float] = []
    firsts: list[float] = []
    mem: dict[str, float] = {}
    batches = epochs = batch_bytes = 0
    sampling_since: float | None = None
    done = False
    while not done:
        epochs += 1
        n, last, peeked = 0, None, False
        failure: BaseException | None = None
        t0 = clock()
        it = iter(loader)
        try:
            for batch in it:
                if consume is not None:
                    consume(batch)
                n += 1
                if n == 1:
                    if sync is not None:
                        sync()
                    firsts.append(clock() - t0)
                    batch_bytes = batch_bytes or _nbytes(batch)
                if n % window:
                    continue
                if sync is not None:
                    sync()
                now = clock()
                if last is None:  # the end of the epoch's first window: start-up is behind
                    last = now
                    continue
                samples.append((now - last) / window)
                last = now
                sampling_since = now if sampling_since is None else sampling_since
                if memory is not None and not peeked:
                    peeked = True
                    for k, v in memory().items():
                        mem[k] = max(mem.get(k, 0.0), v)
                if len(samples) >= min_samples and (len(samples) >= max_samples or now - sampling_since >= max_s):
                    done = True
                    break
        except Exception as exc:  # noqa: BLE001 - raised below, once the iterator is gone
            failure = worker_failure(exc, it)
        finally:
            batches += n
            del it  # shuts the workers down (and DataLoader's SIGCHLD check stops watching them)
        if failure is not None:
            raise failure
        if not done and n < 2 * window:
            raise ValueError(f"an epoch of {n} batches is too short for windows of {window}")
        done = done or len(samples) >= min_samples  # a new epoch (new workers) only when samples are missing
    return LoaderTiming(samples, window, firsts, batches, epochs, batch_bytes, mem)


def _nbytes(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.numel() * batch.element_size()
    if isinstance(batch, (list, tuple)):
        return sum(_nbytes(b) for b in batch)
    if isinstance(batch, dict):
        return sum(_nbytes(b) for b in batch.values())
    return int(getattr(batch, "nbytes", 0))  # a numpy array (the GPU decoder's encoded bytes)


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


# --- knobs and their cost (the recommendation prefers the cheapest of the fast settings) -----------
KNOBS = ("none", "unordered", "prefetch4", "pinned", "forkserver", "spawn")
KNOB_SETTINGS: dict[str, dict[str, Any]] = {
    "none": {},
    "unordered": {"in_order": False},
    "prefetch4": {"prefetch": 4},
    "pinned": {"pin": True},
    "forkserver": {"start": "forkserver"},
    "spawn": {"start": "spawn"},
}
KNOB_TEXT = {"none": "", "unordered": "in_order=False", "prefetch4": "prefetch_factor=4", "pinned": "pin_memory=True",
             "forkserver": "multiprocessing_context='forkserver'", "spawn": "multiprocessing_context='spawn'"}


def knob_reason(knob: str, num_workers: int, backend: str) -> str | None:
    import multiprocessing

    if knob != "none" and num_workers == 0:
        return f"{knob} needs worker processes (num_workers > 0)"
    if knob == "pinned" and backend == "cpu":
        return "pin_memory only helps copies to an accelerator; the cpu backend makes none"
    start = KNOB_SETTINGS[knob].get("start")
    if start and start not in multiprocessing.get_all_start_methods():
        return f"start method {start} is not available on this OS"
    return None


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
# The transform stage each decoder's output goes through: every decoder but PIL gives a uint8 tensor.
TRANSFORM_STAGE = {"pil": "transform-pil", "torchvision": "transform-torchvision",
                   "torchcodec": "transform-torchvision"}
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


def decoder_version(decoder: str) -> str:
    """The library that decodes, with its installed version (decode speed moves with it)."""
    from importlib import metadata

    name = {"pil": "pillow", "torchvision": "torchvision"}.get(decoder, "torchcodec")
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


def deprecation_metrics(decoder: str) -> dict[str, Any]:
    """{"deprecated": warning} for the deprecated torchvision.io decoder (the warning caught, once per
    process, by torchvision_deprecation), else nothing."""
    if decoder not in DEPRECATED_DECODERS:
        return {}
    text = torchvision_deprecation()
    return {"deprecated": text} if text else {}


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


def first_batch_times(make: Callable[[], Any], epoch: int, repeats: int,
                      clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds from iter(loader) to its first batch, in epoch 1 (a new loader each time) or in epoch 2
    and later (one loader; every earlier epoch drained untimed)."""
    out: list[float] = []
    failure: BaseException | None = None
    loader = it = None
    try:
        if epoch != 1:
            loader = make()
            for _ in loader:  # epoch 1, untimed
                pass
        for _ in range(repeats):
            if epoch == 1:
                it, loader = None, make()
            t0 = clock()
            it = iter(loader)
            next(it)
            out.append(clock() - t0)
            if epoch != 1:
                for _ in it:
                    pass
            it = None  # shuts a fresh loader's workers down
    except Exception as exc:  # noqa: BLE001 - raised below, once the iterator is gone
        failure = worker_failure(exc, it)
    finally:
        it = loader = None
    if failure is not None:
        raise failure
    return out


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


# --- analysis: pure functions of results -------------------------------------------------------
THRESHOLD = 0.95  # a setting within 5% of the best counts as fast enough
BOOTSTRAP = 2000


def _bootstrap_ratio(base: Sequence[float], new: Sequence[float], level: float, n: int,
                     seed: int) -> tuple[float, float, float]:
    """median(base) / median(new) with a percentile-bootstrap interval (each side resampled on its own),
    widened where resampling skews it to hold the estimate."""
    import numpy as np

    a, b = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("no samples")
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, a.size, (n, a.size))], axis=1)
    rb = np.median(b[rng.integers(0, b.size, (n, b.size))], axis=1)
    ratios = ra / rb
    tail = (1 - level) / 2
    est = float(np.median(a) / np.median(b))
    return est, min(est, float(np.quantile(ratios, tail))), max(est, float(np.quantile(ratios, 1 - tail)))


def speedup_interval(base: Setting, new: Setting, level: float = 0.95, n: int = BOOTSTRAP,
                     seed: int = 0) -> tuple[float, float, float]:
    """How many times faster `new` runs than `base` (base's time per batch / new's) and its interval,
    both from one paired structure: the rounds.

    A round is one worker process that measured both settings, so the ratio of their medians inside a
    round cancels what that process's luck (its placement, a busy minute of the machine) did to both.
    The estimate is the geometric mean of the round ratios and the interval a Student t interval on
    their logarithms, centred on the estimate's logarithm: the estimate always lies inside it. (It is
    also the ratio of the two settings' own estimates, the geometric means of their round medians,
    when both have the same rounds.) With fewer than two rounds in common there is nothing to pair:
    the ratio of the sample medians, with a bootstrap interval of the same ratio.
    """
    import math

    from scipy.stats import t

    a, b = dict(base.rounds), dict(new.rounds)
    common = sorted(set(a) & set(b))
    if len(common) < 2:
        return _bootstrap_ratio(base.samples, new.samples, level, n, seed)
    logs = [math.log(a[i] / b[i]) for i in common]
    mean, sd = statistics.fmean(logs), statistics.stdev(logs)
    half = float(t.ppf(0.5 + level / 2, len(logs) - 1)) * sd / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


@dataclass(frozen=True)
class Setting:
    """One measured loader configuration and its samples (seconds per batch of `batch` images)."""

    decoder: str
    num_workers: int
    knob: str
    batch: int
    samples: tuple[float, ...]
    label: str = ""
    median_s: float | None = None  # the result's median (over rounds); else the samples' median
    rounds: tuple[tuple[int, float], ...] = ()  # (round index, that round's median), where measured in rounds

    @property
    def images_per_s(self) -> float:
        return self.batch / (self.median_s or statistics.median(self.samples))

    @property
    def cost(self) -> tuple[int, int, int]:
        """Fewer workers first, then no extra setting, then the preferred decoder (ImageFolder's own first)."""
        return (self.num_workers, KNOBS.index(self.knob), DECODER_PREFERENCE.index(self.decoder))

    def loader_text(self) -> str:
        parts = [f"num_workers={self.num_workers}"]
        if self.knob != "none":
            parts.append(KNOB_TEXT[self.knob])
        return ", ".join(parts)

    def text(self) -> str:
        return self.loader_text() + (f", {DECODER_TEXT[self.decoder]}" if self.decoder != "pil" else "")


def compare_decoders(settings: Sequence[Setting], seed: int = 0) -> dict[str, Any] | None:
    """Every decoder measured, each at its fastest DataLoader (default settings, any num_workers),
    fastest first, and how many times faster the fastest runs than the second, with its interval.
    None with no decoder measured."""
    best: dict[str, Setting] = {}
    for s in settings:
        if s.knob == "none" and (s.decoder not in best or s.images_per_s > best[s.decoder].images_per_s):
            best[s.decoder] = s
    ranked = sorted(best.values(), key=lambda s: s.images_per_s, reverse=True)
    if not ranked:
        return None
    out: dict[str, Any] = {"ranked": [{"decoder": s.decoder, "label": s.label, "setting": s.loader_text(),
                                       "images_per_s": s.images_per_s} for s in ranked]}
    if len(ranked) > 1:
        ratio, low, high = speedup_interval(ranked[1], ranked[0], seed=seed)
        out.update(fastest=ranked[0].decoder, second=ranked[1].decoder, ratio=ratio, ratio_ci=[low, high])
    return out


def recommend(settings: Sequence[Setting], threshold: float = THRESHOLD, seed: int = 0) -> dict[str, Any] | None:
    """The cheapest setting within `threshold` of the best throughput that is faster than the default
    beyond noise (its speed-up's interval, `speedup_interval`, lies above 1), its speed-up over the
    default, and the decoders compared (`compare_decoders`).

    The default is DataLoader(num_workers=0) with PIL decoding at the same batch size. On a flat curve
    the cheapest setting is the default itself (speed-up 1); so it is when no setting fast enough is
    faster beyond noise, and `within_noise` then names the cheapest of them with its speed-up and
    interval. None without a default to compare with.
    """
    if not settings:
        return None
    batch = settings[0].batch
    if any(s.batch != batch for s in settings):
        raise ValueError("recommend compares settings of one batch size")
    base = next((s for s in settings if s.num_workers == 0 and s.knob == "none" and s.decoder == "pil"), None)
    if base is None:
        return None
    best = max(settings, key=lambda s: s.images_per_s)
    good = sorted((s for s in settings if s.images_per_s >= threshold * best.images_per_s), key=lambda s: s.cost)
    pick, within_noise = base, None
    for s in good:
        if s is base:  # the cheapest of all: the curve is flat
            break
        ratio, low, high = speedup_interval(base, s, seed=seed)
        if low > 1:
            pick = s
            break
        if within_noise is None:
            within_noise = {"label": s.label, "setting": s.text(), "speedup": ratio, "speedup_ci": [low, high]}
    speedup, low, high = speedup_interval(base, pick, seed=seed)
    return {"batch": batch, "decoder": pick.decoder, "num_workers": pick.num_workers, "knob": pick.knob,
            "label": pick.label, "setting": pick.text(), "images_per_s": pick.images_per_s,
            "best_label": best.label, "best_images_per_s": best.images_per_s,
            "default_images_per_s": base.images_per_s, "speedup": speedup, "speedup_ci": [low, high],
            "threshold": threshold, "candidates": len(settings), "is_default": pick is base,
            "within_noise": within_noise if pick is base else None,
            "decoders": compare_decoders(settings, seed=seed)}


def stage_breakdown(stage_s: dict[str, float], end_to_end_s: float) -> list[dict[str, Any]]:
    """Per-image seconds of each stage and its share of the end-to-end time per image; what the stages
    do not explain (sampler, fetch, DataLoader bookkeeping) is `other` (negative when the stages, timed
    alone, sum to more than the pipeline)."""
    if end_to_end_s <= 0:
        raise ValueError("end-to-end time must be positive")
    rows = [{"stage": k, "s_per_image": v, "share": v / end_to_end_s} for k, v in stage_s.items()]
    other = end_to_end_s - sum(stage_s.values())
    rows.append({"stage": "other", "s_per_image": other, "share": other / end_to_end_s})
    return rows


def data_wait_share(loader_images_per_s: float, step_images_per_s: float, overlapped: bool) -> float:
    """Share of each training step spent waiting for data.

    Overlapped (worker processes load while the step runs): a step lasts as long as the slower of the
    two, and waits for the difference. Not overlapped (num_workers=0): loading and the step take turns.
    """
    if loader_images_per_s <= 0 or step_images_per_s <= 0:
        raise ValueError("rates must be positive")
    load, step = 1 / loader_images_per_s, 1 / step_images_per_s
    if overlapped:
        return max(0.0, load - step) / max(load, step)
    return load / (load + step)


# --- cross-case metrics ---------------------------------------------------------------------------
def _ok(r: Result) -> bool:
    return r.ok and bool(r.samples)


def round_medians(result: Result) -> tuple[tuple[int, float], ...]:
    """(round index, median of that round's samples) for each round that gave samples."""
    return tuple((int(meta.get("round", i)), statistics.median(samples))
                 for i, (meta, samples) in enumerate(zip(result.rounds, result.round_samples, strict=True))
                 if samples)


def _settings(results: Sequence[Result]) -> dict[int, list[tuple[Setting, Result]]]:
    out: dict[int, list[tuple[Setting, Result]]] = {}
    for r in results:
        if r.key.benchmark not in ("jpeg_pipeline", "jpeg_knobs") or not _ok(r):
            continue
        p = r.key.params_dict
        s = Setting(p["decoder"], int(p["num_workers"]), p.get("knob", "none"), int(p["batch"]), tuple(r.samples),
                    label=r.key.name, median_s=r.stats.median, rounds=round_medians(r))
        out.setdefault(s.batch, []).append((s, r))
    return out


def _stage_seconds(results: Sequence[Result], decoder: str) -> dict[str, float]:
    """Per-image seconds of the stages one worker of this decoder's pipeline runs: read, this decoder's
    decode, the transform of what it decodes to, collate."""
    wanted = {"read", f"decode-{decoder}", TRANSFORM_STAGE.get(decoder), "collate"}
    per: dict[str, float] = {}
    for r in results:
        if r.key.benchmark != "stage" or not _ok(r) or r.stats is None:
            continue
        name = r.key.params_dict["stage"]
        if name not in wanted:
            continue
        items = r.work.get("items") or 1
        per[name.split("-", 1)[0]] = r.stats.median / items
    return per


def derive(results: list[Result]) -> None:
    """Stage shares on the one-process pipeline, the recommendation, first-batch savings, the input-bound check."""
    by_key = {r.key.name: r for r in results}
    # where the time goes: the stages, timed alone with one thread, against one worker process doing
    # all of them (num_workers=1: the main process only receives batches)
    for r in results:
        if r.key.benchmark != "jpeg_pipeline" or not _ok(r) or int(r.key.params_dict["num_workers"]) != 1:
            continue
        stages = _stage_seconds(results, r.key.params_dict["decoder"])
        if {"read", "decode", "transform", "collate"} <= set(stages):
            r.metrics["stages"] = stage_breakdown(stages, r.stats.median / r.work["items"])
    # the recommendation, per batch size
    recommendations = []
    for pairs in _settings(results).values():
        for _, r in pairs:
            r.recommendation = None  # an earlier pick, before more results came in
        rec = recommend([s for s, _ in pairs])
        if rec is None:
            continue
        next(r for s, r in pairs if s.label == rec["label"]).recommendation = rec
        recommendations.append(rec)
    # persistent workers: the start of epoch 2 with and without; recommended when clearly faster
    persistent_saves: float | None = None
    for r in results:
        p = r.key.params_dict
        if r.key.benchmark != "first_batch" or not _ok(r) or p.get("epoch") != 2 or not p.get("persistent"):
            continue
        other = by_key.get(r.key.name.replace("persistent=True", "persistent=False"))
        if other is not None and _ok(other):
            r.metrics["saved_per_epoch_s"] = other.stats.median - r.stats.median
            if r.stats.ci_high < other.stats.ci_low and p.get("start") == "fork":
                persistent_saves = r.metrics["saved_per_epoch_s"]
    for rec in recommendations:
        rec["persistent_workers"] = rec["num_workers"] > 0 and persistent_saves is not None
        rec["persistent_saves_s"] = persistent_saves if rec["persistent_workers"] else None
    # the input-bound check
    for r in results:
        if r.key.benchmark != "train_step" or not _ok(r):
            continue
        step_rate = r.derived().get("items_per_s")
        rec = max(recommendations, key=lambda x: x["images_per_s"], default=None)
        if not step_rate or rec is None:
            continue
        check = {"step_images_per_s": step_rate, "loader": rec["label"], "loader_images_per_s": rec["images_per_s"],
                 "default_images_per_s": rec["default_images_per_s"],
                 "wait_share": data_wait_share(rec["images_per_s"], step_rate, overlapped=rec["num_workers"] > 0),
                 "wait_share_default": data_wait_share(rec["default_images_per_s"], step_rate, overlapped=False),
                 "same_cpus": r.key.backend == "cpu"}
        r.metrics["input_bound"] = check
    for r in results:
        r.note = result_note(r.metrics, r.recommendation) or None


def result_note(metrics: dict[str, Any], rec: dict[str, Any] | None = None) -> str:
    """The results table's note for what derive found on a result (`rec`: its recommendation)."""
    parts = []
    if rec:
        parts.append(f"recommended: {rec['speedup']:.2f}x the default "
                     f"({rec['speedup_ci'][0]:.2f}-{rec['speedup_ci'][1]:.2f})")
    if metrics.get("stages"):
        parts.append("stages: " + ", ".join(f"{row['stage']} {row['share']:.0%}" for row in metrics["stages"]))
    if metrics.get("saved_per_epoch_s") is not None:
        parts.append(f"saves {metrics['saved_per_epoch_s']:.3g} s at each later epoch's start")
    if metrics.get("deprecated"):
        parts.append("deprecated decoder (torchvision.io)")
    if metrics.get("input_bound"):
        check = metrics["input_bound"]
        parts.append(f"waits for data {check['wait_share']:.0%} of a step with the recommended loader, "
                     f"{check['wait_share_default']:.0%} with the default")
    return "; ".join(parts)


# --- text for the end of a run ------------------------------------------------------------------
def _decoder_name(decoder: str) -> str:
    return f"{decoder} (deprecated)" if decoder in DEPRECATED_DECODERS else decoder


def decoder_lines(rec: dict[str, Any]) -> list[str]:
    """The decoders compared: each at its fastest num_workers, and the fastest against the second."""
    dec = rec.get("decoders")
    if not dec or len(dec["ranked"]) < 2:
        return []
    each = ", ".join(f"{_decoder_name(d['decoder'])} {_rate(d['images_per_s'])} ({d['setting']})" for d in dec["ranked"])
    low, high = dec["ratio_ci"]
    verdict = "" if low > 1 else "; not a clear difference here"
    return [f"  decoders at batch {rec['batch']}, each at its fastest (images/s): {each}",
            f"  fastest: {_decoder_name(dec['fastest'])}, {dec['ratio']:.2f}x the second, {_decoder_name(dec['second'])} "
            f"(95% CI {low:.2f}-{high:.2f}x){verdict}"]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def _seconds(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds >= 1 else _ms(seconds)


def _rate(per_s: float) -> str:
    return f"{per_s:.3g}" if per_s < 100 else f"{per_s:.0f}"


def notes(results: list[Result]) -> list[str]:
    """The per-stage table, the recommendation and the input-bound check, as lines printed after a run."""
    from tabulate import tabulate

    lines: list[str] = []
    for r in sorted(results, key=lambda r: r.key.sort_key()):
        stages = r.metrics.get("stages") if r.key.benchmark == "jpeg_pipeline" else None
        if not stages:
            continue
        p = r.key.params_dict
        batch = int(p["batch"])
        per_image = r.stats.median / batch
        rows = [[row["stage"], _ms(row["s_per_image"]), _ms(row["s_per_image"] * batch), f"{row['share']:.0%}"]
                for row in stages]
        rows.append(["end to end", _ms(per_image), _ms(per_image * batch), "100%"])
        lines.append(f"\ndataloader: where the time goes ({DECODER_TEXT[p['decoder']]}, batch {batch}; stages timed "
                     f"alone on one thread, end to end with num_workers=1)")
        lines.extend(tabulate(rows, headers=["stage", "per image", f"per batch of {batch}", "share"],
                              colalign=("left", "right", "right", "right")).splitlines())
    for r in results:
        rec = r.recommendation
        if not rec:
            continue
        low, high = rec["speedup_ci"]
        noise = rec.get("within_noise")
        if rec["is_default"] and noise:
            nlow, nhigh = noise["speedup_ci"]
            lines.append(f"\ndataloader: keep the default (num_workers=0) for batch {rec['batch']}: {noise['setting']} "
                         f"measured {noise['speedup']:.2f}x the default (95% CI {nlow:.2f}-{nhigh:.2f}x), "
                         f"not faster beyond noise")
        elif rec["is_default"]:
            lines.append(f"\ndataloader: keep the default (num_workers=0) for batch {rec['batch']}: no setting measured "
                         f"here is more than {1 - rec['threshold']:.0%} faster ({_rate(rec['images_per_s'])} images/s)")
        else:
            setting = rec["setting"] + (", persistent_workers=True" if rec.get("persistent_workers") else "")
            lines.append(f"\ndataloader: use {setting} for batch {rec['batch']}: {rec['speedup']:.2f}x faster "
                         f"than the default DataLoader(num_workers=0) (95% CI {low:.2f}-{high:.2f}x), "
                         f"{_rate(rec['images_per_s'])} vs {_rate(rec['default_images_per_s'])} images/s")
        if rec["best_label"] != rec["label"] and not noise:
            lines.append(f"  (the fastest, {rec['best_label']}, gives {_rate(rec['best_images_per_s'])} images/s: "
                         f"within {1 - rec['threshold']:.0%})")
        lines.extend(decoder_lines(rec))
    deprecated = next((r.metrics["deprecated"] for r in results if r.metrics.get("deprecated")), None)
    if deprecated:  # once per run, however many cases and calls met the warning
        lines.append(f"dataloader: decoder=torchvision is measured for comparison, but deprecated: {deprecated} "
                     f"TorchCodec (decoder=torchcodec) replaces it.")
    for r in results:
        saved = r.metrics.get("saved_per_epoch_s")
        if saved is not None and r.stats is not None and saved > 0:
            lines.append(f"dataloader: with persistent_workers=True the first batch of epoch 2 and later comes after "
                         f"{_seconds(r.stats.median)} instead of {_seconds(r.stats.median + saved)} "
                         f"({r.key.params_dict.get('num_workers')} workers, start method {r.key.params_dict.get('start')})")
    for r in results:
        check = r.metrics.get("input_bound")
        if not check:
            continue
        batch = r.key.params_dict.get("batch")
        shared = " (loader and model share these CPUs, so this is optimistic)" if check["same_cpus"] else ""
        lines.append(f"dataloader: resnet18 training step (batch {batch}, {r.key.backend}) runs at "
                     f"{_rate(check['step_images_per_s'])} images/s; with the recommended loader "
                     f"({_rate(check['loader_images_per_s'])} images/s) a step waits for data "
                     f"{check['wait_share']:.0%} of the time, with the default {check['wait_share_default']:.0%}"
                     + shared)
    return lines

