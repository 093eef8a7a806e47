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
