"""Export to other runtimes (ONNX) and load those exports behind ``ImageBind``.

Optional: needs ``pip install 'imagebind-sdk[onnx]'``; onnx/onnxruntime are imported
only when an export or an ``onnxruntime`` load runs.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import torch

BACKENDS = ("torch", "onnxruntime")


def load_backend(
    backend: str,
    source: str | os.PathLike[str],
    *,
    modalities: Iterable[str] | None,
    device: str | torch.device | None,
    dtype: torch.dtype | str | None,
    quantize: str | None,
    compile: bool | str,
    trim_text: bool,
) -> Any:
    """The model object ``ImageBind.load(source, backend=...)`` wraps for a non-torch backend."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f'backend="onnxruntime" runs on the CPU, got device={device!r}; leave device unset')
    if dtype not in (None, torch.float32, "float32", "fp32"):
        raise ValueError(f'backend="onnxruntime" runs float32 (or quantize="int8") graphs, got dtype={dtype!r}')
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if compile is not False:
        raise ValueError('compile=... applies to the torch backend only; onnxruntime optimises its graphs itself')
    from .runtime import load_onnx

    return load_onnx(source, modalities=modalities, quantize=quantize, trim_text=trim_text)
