"""Export to other runtimes (ONNX) and load those exports behind ``ImageBind``.

Optional: needs ``pip install 'imagebind-sdk[onnx]'``; onnx/onnxruntime are imported
only when an export or an ``onnxruntime`` load runs.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import torch

BACKENDS = ("torch", "onnxruntime")


def check_backend(backend: str) -> str:
    """``backend`` itself, or a ValueError listing the backends."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    return backend


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
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> Any:
    """The model object ``ImageBind.load(source, backend=...)`` wraps for a non-torch backend.

    ``source`` is an export folder (loaded as it is) or any torch checkpoint, exported
    once into the cache (:mod:`imagebind_sdk.export.cache`).
    """
    check_backend(backend)
    check_onnx_options(device, dtype, quantize, compile)
    from .cache import cached_export, is_export_folder
    from .runtime import load_onnx

    folder = source
    if not is_export_folder(source):
        folder = cached_export(source, modalities, quantize=quantize, revision=revision, cache_dir=cache_dir,
                               local_files_only=local_files_only)
    return load_onnx(folder, modalities=modalities, quantize=quantize, trim_text=trim_text)


def check_onnx_options(
    device: str | torch.device | None, dtype: torch.dtype | str | None, quantize: str | None, compile: bool | str
) -> None:
    """ValueError for a load option the onnxruntime backend cannot honour."""
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f'backend="onnxruntime" runs on the CPU, got device={device!r}; leave device unset')
    if dtype not in (None, torch.float32, "float32", "fp32"):
        raise ValueError(f'backend="onnxruntime" runs float32 (or quantize="int8") graphs, got dtype={dtype!r}')
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if compile is not False:
        raise ValueError('compile=... applies to the torch backend only; onnxruntime optimises its graphs itself')
