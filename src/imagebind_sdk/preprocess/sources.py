"""Reading raw inputs (paths, bytes, file objects), describing them in errors, finiteness checks."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, BinaryIO, Literal, Union

import numpy as np
import torch

PathLike = Union[str, "os.PathLike[str]"]
Source = Union[PathLike, bytes, bytearray, memoryview, BinaryIO]

# Refuse to read more than this from a single input file (guards absurd inputs).
MAX_FILE_BYTES = 2 * 1024**3
_TEXT_MODE = "file object is opened in text mode; open it with 'rb'"


class InputError(ValueError):
    """An input item could not be turned into a model input.

    The message names the modality, the item's index in the batch and its source
    (path or type), what was expected and what was found.
    """


def describe(item: Any) -> str:
    """A short human-readable identifier of an input item, for error messages."""
    if isinstance(item, (str, os.PathLike)):
        return str(item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"<{len(item)} bytes>"
    name = getattr(item, "name", None)
    if isinstance(name, str) and hasattr(item, "read"):
        return name
    shape = getattr(item, "shape", None)
    if shape is not None:
        return f"<{type(item).__module__.split('.')[0]}.{type(item).__name__} shape={tuple(shape)}>"
    return f"<{type(item).__name__}>"


SourceKind = Literal["path", "bytes", "file"]


def source_kind(item: Any) -> SourceKind | None:
    """Whether ``item`` is an encoded source: a ``"path"``, ``"bytes"`` or a ``"file"`` object.

    None for everything else (decoded data: arrays, tensors, PIL images, pairs, dicts).
    The one place every loader asks this.
    """
    if isinstance(item, (str, os.PathLike)):
        return "path"
    if isinstance(item, (bytes, bytearray, memoryview)):
        return "bytes"
    if callable(getattr(item, "read", None)):
        return "file"
    return None


def resolve_path(item: PathLike) -> Path:
    """A path that exists and is a regular file, else FileNotFoundError / InputError."""
    path = Path(os.fspath(item)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"expected a file, found a directory or special file: {path}")
    return path


def read_bytes(item: Source) -> bytes:
    """The raw bytes of a path, bytes-like object or binary file object."""
    kind = source_kind(item)
    if kind == "path":
        path = resolve_path(item)  # type: ignore[arg-type]
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
        return path.read_bytes()
    if kind == "bytes":
        return bytes(item)  # type: ignore[arg-type]
    if kind == "file":
        data = item.read()  # type: ignore[union-attr]
        if isinstance(data, str):
            raise InputError(_TEXT_MODE)
        return bytes(data)
    raise InputError(f"expected a path, bytes or a binary file object, got {type(item).__name__}")


def as_binary_stream(item: Source) -> BinaryIO:
    """A seekable binary stream over the item (paths are opened, bytes wrapped).

    The caller closes it when it is not ``item`` itself.
    """
    kind = source_kind(item)
    if kind == "path":
        return open(resolve_path(item), "rb")  # type: ignore[arg-type]
    if kind == "file" and isinstance(item, io.TextIOBase):
        raise InputError(_TEXT_MODE)
    if kind == "file" and getattr(item, "seekable", lambda: False)():
        return item  # type: ignore[return-value]
    return io.BytesIO(read_bytes(item))


def tensor_to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A torch tensor -> numpy on the CPU; float16/bfloat16 become float32 (numpy lacks bfloat16)."""
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.float()
    return tensor.numpy()


def check_finite(tensor: torch.Tensor, what: str = "input") -> torch.Tensor:
    """Raise InputError if a floating tensor holds NaN or infinity."""
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        n_nan = int(torch.isnan(tensor).sum())
        n_inf = int(torch.isinf(tensor).sum())
        raise InputError(f"{what} contains non-finite values ({n_nan} NaN, {n_inf} inf)")
    return tensor


def require_finite(values: np.ndarray | torch.Tensor, what: str) -> None:
    """InputError if ``values`` holds NaN or inf (checked in numpy: cheap on any thread count)."""
    array = values.numpy() if isinstance(values, torch.Tensor) else values
    if not np.isfinite(array).all():
        check_finite(torch.as_tensor(np.array(array)), what)  # raises, counting NaN and inf (a copy: may be read-only)
