"""Reading pickled checkpoints (``torch.save(model)`` or a state dict) without running their code.

``torch.load`` unpickles, and unpickling calls whatever callables the file names: a
pickled fine-tune can run any code. This reader resolves every global the file names
through three rules and refuses everything else, naming the global:

- **Helpers** (:data:`HELPERS`), matched exactly by module and name: how tensors,
  parameters and plain containers are rebuilt (``torch._utils._rebuild_tensor_v2`` ...,
  answered by this module's own functions, never torch's), ``collections.OrderedDict``,
  ``builtins.set``/``frozenset``, torch dtypes, storage types, numpy dtypes and scalars
  and ``_codecs.encode`` (how protocol-2 pickles hold bytes).
- **Model classes**: a class name (``CamelCase``) in a module of ``torch.nn``, the
  reference's ``imagebind``/``models`` packages or ``timm`` (:data:`MODEL_MODULES`) becomes an
  inert :class:`Record` of its pickled state. The real class is never imported or called,
  so a module-prefix trick (``torch.serialization.os.system``) has nothing to reach.
- Anything else raises :class:`UnsafePickleError`.

Tensors are rebuilt from the archive's raw storage bytes (``torch.frombuffer`` +
``as_strided``), so no torch code runs on the file's instructions either.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

# Modules whose classes are rebuilt as records (a prefix followed by "." or the whole name).
MODEL_MODULES = ("torch.nn.modules", "torch.nn.parameter", "imagebind.models", "models", "timm")
_CLASS_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}
TORCH_DTYPES = {name: getattr(torch, name) for name in (
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
    "float", "double", "half", "long", "int", "short")}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (it is never imported or called)."""


class Record:
    """An inert stand-in for a model class: its name and pickled state, nothing else."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"Record({self.qualname})"


def _record_class(module: str, name: str) -> type[Record]:
    return type(name, (Record,), {"qualname": f"{module}.{name}", "__module__": __name__})


class StorageType:
    """What a storage class named in the pickle stands for here: only its dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *rest: Any) -> torch.Tensor:
    """``_rebuild_tensor_v2`` on a flat storage tensor, with bounds checked before viewing."""
    if not isinstance(storage, torch.Tensor) or storage.ndim != 1:
        raise UnsafePickleError("a tensor whose storage is not a storage record")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if any(s < 0 for s in size) or any(s < 0 for s in stride) or int(offset) < 0:
        raise UnsafePickleError(f"a tensor with a negative size/stride/offset {size} {stride} {offset}")
    last = int(offset) + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else int(offset)
    if all(size) and last >= len(storage):
        raise UnsafePickleError(f"a tensor of size {size} reaches past its storage ({len(storage)} elements)")
    return torch.as_strided(storage, size, stride, int(offset))


def rebuild_parameter(data: torch.Tensor, *rest: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("a parameter whose data is not a tensor")
    return data


def rebuild_from_type(func: Any, new_type: Any, args: tuple, state: Any) -> torch.Tensor:
    """``torch._tensor._rebuild_from_type_v2``: only our own rebuild functions are ever called."""
    if func not in (rebuild_tensor, rebuild_parameter):
        raise UnsafePickleError("_rebuild_from_type_v2 with a function other than a tensor rebuild")
    return func(*args)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("numpy scalar of an object dtype")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(name: Any, *args: Any) -> np.dtype:
    dtype = np.dtype(name)
    if dtype.hasobject:
        raise UnsafePickleError("numpy object dtype")
    return dtype


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode(encoding)


HELPERS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type,
    ("torch", "Tensor"): torch.Tensor,
    ("torch", "Size"): tuple,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,  # protocol <= 2 names builtins by their Python 2 module
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    **{("torch", name): dtype for name, dtype in TORCH_DTYPES.items()},
    **{("torch", name): StorageType(dtype) for name, dtype in STORAGE_DTYPES.items()},
    **{("torch.storage", name): StorageType(dtype) for name, dtype in STORAGE_DTYPES.items()},
}


def _is_model_module(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in MODEL_MODULES)


class RestrictedUnpickler(pickle.Unpickler):
    """``find_class`` by the rules of the module doc; storages read from the zip archive."""

    def __init__(self, file: io.BufferedIOBase, read_storage: Callable[[str, torch.dtype], torch.Tensor] | None) -> None:
        super().__init__(file)
        self._read_storage = read_storage
        self._records: dict[tuple[str, str], type[Record]] = {}
        self._storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in HELPERS:
            return HELPERS[(module, name)]
        if _MODULE_NAME.match(module) and _CLASS_NAME.match(name) and _is_model_module(module):
            return self._records.setdefault((module, name), _record_class(module, name))
        raise UnsafePickleError(f"refused global {module}.{name}: not on the allow-list (it was not imported or run)")

    def persistent_load(self, pid: Any) -> Any:
        if self._read_storage is None or not isinstance(pid, tuple) or len(pid) < 3 or pid[0] != "storage":
            raise UnsafePickleError(f"unexpected persistent id {str(pid)[:80]}")
        kind, key = pid[1], str(pid[2])
        if not isinstance(kind, StorageType) or not re.fullmatch(r"[0-9A-Za-z_]+", key):
            raise UnsafePickleError(f"a storage record of type {type(kind).__name__} with key {key[:40]!r}")
        dtype = kind.dtype
        if key not in self._storages:
            self._storages[key] = self._read_storage(key, dtype)
        return self._storages[key]


def _zip_loader(archive: zipfile.ZipFile) -> tuple[bytes, Callable[[str, torch.dtype], torch.Tensor]]:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise UnsafePickleError(f"not a torch.save archive: expected one data.pkl, found {len(pickles)}")
    root = pickles[0][: -len("data.pkl")]

    def read_storage(key: str, dtype: torch.dtype) -> torch.Tensor:
        name = f"{root}data/{key}"
        if name not in names:
            raise UnsafePickleError(f"storage {key} is missing from the archive")
        raw = bytearray(archive.read(name))
        if len(raw) % dtype.itemsize:
            raise UnsafePickleError(f"storage {key}: {len(raw)} bytes is no whole number of {dtype} values")
        return torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)

    return archive.read(pickles[0]), read_storage


def safe_load(path: str | Path) -> Any:
    """Unpickle ``path`` (a ``torch.save`` archive, or a plain pickle) by the rules above."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            data, read_storage = _zip_loader(archive)
            return RestrictedUnpickler(io.BytesIO(data), read_storage).load()
    with open(path, "rb") as f:
        first = RestrictedUnpickler(f, None).load()
    if isinstance(first, int) and first == 0x1950A86A20F9469CFC6C:  # torch's legacy (pre-1.6) magic number
        raise UnsafePickleError(f"{path.name}: the legacy torch.save format; re-save it with torch >= 1.6")
    return first


def _walk_record(record: Record, prefix: str, out: dict[str, torch.Tensor], attrs: dict[str, dict]) -> None:
    state = record.state if isinstance(record.state, dict) else {}
    attrs[prefix.rstrip(".")] = {"class": record.qualname, **{k: v for k, v in state.items() if isinstance(v, (int, float, str, bool, tuple))}}
    skip = state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if isinstance(value, torch.Tensor) and name not in skip:
                out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if isinstance(child, Record):
            _walk_record(child, f"{prefix}{name}.", out, attrs)


def state_of(obj: Any) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """(state dict, module path -> plain attributes) of an unpickled module record or state dict."""
    if isinstance(obj, Record):
        tensors: dict[str, torch.Tensor] = {}
        attrs: dict[str, dict] = {}
        _walk_record(obj, "", tensors, attrs)
        return tensors, attrs
    if isinstance(obj, dict):
        for wrapper in ("model", "state_dict", "module"):
            if set(obj) == {wrapper}:
                return state_of(obj[wrapper])
        bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
        if bad:
            raise UnsafePickleError(f"a state dict with non-tensor entries {[str(b) for b in bad[:5]]}")
        return dict(obj), {}
    raise UnsafePickleError(f"expected a pickled module or a state dict, got {type(obj).__name__}")
