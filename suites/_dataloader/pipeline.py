"""The JPEG pipeline users run (ImageFolder + transforms.v2, four decoders) and the DataLoader settings
(knobs) the suite measures."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchbench.workloads import IMAGE_CROP

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CROP = IMAGE_CROP
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
