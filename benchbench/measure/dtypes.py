"""Names of dtypes as they appear in result keys, and their torch counterparts."""

from __future__ import annotations

from typing import Any

# "tf32" is float32 storage with TensorFloat-32 matmuls enabled: a separate key because it is a
# separate speed (and precision) on GPUs that have it.
_NAMES = {
    "float64": "float64",
    "float32": "float32",
    "tf32": "float32",
    "bfloat16": "bfloat16",
    "float16": "float16",
    "int8": "int8",
    "int32": "int32",
    "int64": "int64",
    "bool": "bool",
}


def torch_dtype(name: str) -> Any:
    import torch

    try:
        return getattr(torch, _NAMES[name])
    except KeyError:
        raise ValueError(f"unknown dtype name {name!r} (known: {', '.join(_NAMES)})") from None


def itemsize(name: str) -> int:
    return torch_dtype(name).itemsize


# --- how float32 matmuls and convolutions run ---------------------------------------------------
def _read(fn: Any) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - a flag that cannot be read is unknown, never a crash
        return None


def float32_precision(torch_mod: Any) -> dict[str, Any]:
    """TF32 settings for float32 matmuls (cuBLAS) and convolutions (cuDNN), read without raising.

    torch >= 2.9 has `fp32_precision` attributes ("tf32", "ieee", or "none": not set, which runs as
    IEEE) on `torch.backends`, `torch.backends.cuda.matmul` and `torch.backends.cudnn.conv`. Once one
    of them is set, reading the legacy `allow_tf32` flags or `torch.get_float32_matmul_precision()`
    raises ("mix of the legacy and new APIs"), so the new attributes are read first and the legacy
    ones only where torch has no new API. A value that cannot be read is None.
    """
    b = torch_mod.backends
    matmul = getattr(getattr(b, "cuda", None), "matmul", None)
    cudnn = getattr(b, "cudnn", None)
    conv = getattr(cudnn, "conv", None)
    new_generic = _read(lambda: b.fp32_precision)
    new_matmul = _read(lambda: matmul.fp32_precision)
    new_conv = _read(lambda: conv.fp32_precision)
    if isinstance(new_matmul, str):
        matmul_tf32: bool | None = new_matmul == "tf32"
    else:
        legacy = _read(lambda: matmul.allow_tf32)
        matmul_tf32 = bool(legacy) if legacy is not None else None
    if isinstance(new_conv, str):
        conv_tf32: bool | None = new_conv == "tf32"
    else:
        legacy = _read(lambda: cudnn.allow_tf32)
        conv_tf32 = bool(legacy) if legacy is not None else None
    # The legacy name of the matmul setting; with the new API set it maps as torch maps it ("high" <-> "tf32").
    legacy_precision = _read(lambda: torch_mod.get_float32_matmul_precision())
    if legacy_precision is None and isinstance(new_matmul, str):
        legacy_precision = "high" if new_matmul == "tf32" else "highest"
    return {"fp32_precision": new_generic, "cuda_matmul_fp32_precision": new_matmul,
            "cudnn_conv_fp32_precision": new_conv, "cuda_matmul_tf32": matmul_tf32, "cudnn_conv_tf32": conv_tf32,
            "float32_matmul_precision": legacy_precision}
