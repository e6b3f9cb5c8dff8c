"""Reading official-format checkpoints into an ImageBindModel, strictly and selectively.

Formats: one ``.safetensors`` file, per-modality shards with a
``model.safetensors.index.json`` (Hugging Face's sharded layout), or a ``.pth``
state dict (read with ``torch.load(weights_only=True, mmap=True)``). Only the
tensors of the requested modalities are read; the model is built on the meta
device and the tensors are assigned, so nothing is randomly initialised.

Weight values. Every weight must be a float tensor (checked as it is read: the dtype
costs nothing) without NaN/inf. The value scan is not done inside ``load()``: the
weights are memory-mapped, so a plain load reads no weight data, and scanning them
first would double or triple a text-only imagebind_huge load (every page of 1.4 GB
read). A background thread overlapping the rest of the load was measured too: on a
busy CPU it slows ``load()`` as much (it competes for the cores and the GIL). So the
scan is lazy: :class:`WeightCheck` scans a modality's tensors at the first use of its
encoder (``ImageBind.encoder``, hence ``encode``/``embed``/``zero_shot``/export),
before the encoder runs. The trade-off: a corrupt checkpoint raises ``CheckpointError``
naming the tensor at the first use of the affected encoder (or at
``ImageBind.check_weights()``, which scans everything now), not in ``load()``, and the
first use pays the scan (about 0.2-0.5 s per GB, mostly pages that use reads anyway);
no vector computed from a non-finite weight ever leaves the SDK. ``read_tensors``
(used by ``convert``) still checks values as it reads. Measured in
benchmarks/RESULTS.md ("Weight check on load").
"""

from __future__ import annotations

import json
import logging
import pickle
import threading
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch
from safetensors import SafetensorError, safe_open

from . import keymap
from ..model.config import ImageBindConfig, regular_file_problem
from .dtypes import WEIGHT_DTYPES
from ..model import ImageBindModel

logger = logging.getLogger(__name__)

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
INDEX_NAME = "model.safetensors.index.json"
MAX_LISTED = 20


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unreadable file, missing/unexpected keys, wrong shapes,
    non-float or non-finite tensors."""


def _open_check(path: Path) -> Path:
    """Only regular files are opened: a FIFO or device would block the read forever."""
    problem = regular_file_problem(path)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    return path


def check_dtype(key: str, tensor: torch.Tensor, path: Path) -> None:
    """A weight must be a float tensor (reads no data)."""
    if key != keymap.TEXT_MASK_KEY and not tensor.is_floating_point():
        raise CheckpointError(f"{path}: tensor {key} has dtype {tensor.dtype}; weights must be floating point")


def check_finite(key: str, tensor: torch.Tensor, path: Path) -> None:
    """A weight holds no NaN/inf. The float sum is one fast pass (NaN and inf propagate);
    only a non-finite sum, which a finite tensor can reach by overflow, needs the exact test."""
    if key == keymap.TEXT_MASK_KEY:  # the causal mask holds -inf by design; checked in _convert
        return
    if not bool(torch.isfinite(tensor.sum())) and not bool(torch.isfinite(tensor).all()):
        nan, inf = int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
        raise CheckpointError(
            f"{path}: tensor {key} holds non-finite values ({nan} NaN, {inf} inf of {tensor.numel()}); "
            "the checkpoint is corrupt: download or convert it again"
        )


def check_tensor(key: str, tensor: torch.Tensor, path: Path) -> None:
    """Both checks at once (for readers that consume every value anyway, e.g. convert)."""
    check_dtype(key, tensor, path)
    check_finite(key, tensor, path)


class WeightCheck:
    """The NaN/inf scan of loaded weights, per modality, at the first :meth:`wait` for it.

    ``wait(modality)`` scans that modality's tensors once (later calls return at once,
    or raise again) and raises the ``CheckpointError`` naming the first non-finite
    tensor. ``background=True`` scans every modality on a daemon thread instead
    (measured slower to load on a busy CPU, see the module doc).
    """

    def __init__(self, tensors: dict[str, torch.Tensor], index: dict[str, Path], modalities: Sequence[str],
                 background: bool = False) -> None:
        self._modalities = tuple(modalities)
        self._pending = {m: [(k, t) for k, t in tensors.items() if keymap.modality_of(k) == m] for m in modalities}
        self._index = index
        self._errors: dict[str, BaseException] = {}
        self._lock = threading.Lock()  # one scan per modality, also when threads (a server) call at once
        if background:
            threading.Thread(target=self._scan_all, name="imagebind-weight-check", daemon=True).start()

    def __getstate__(self) -> dict:
        """A copy (``copy.deepcopy(model)``, pickling) carries the finished scan: scan now,
        keep what was found (raised at the copy's first use), drop the lock and tensors."""
        self._scan_all()
        return {"_modalities": self._modalities, "_pending": {}, "_index": {}, "_errors": dict(self._errors)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _scan_all(self) -> None:
        for modality in self._modalities:
            try:
                self.wait(modality)
            except BaseException:  # noqa: BLE001 - kept in _errors, raised by the caller's wait()
                pass

    def wait(self, modality: str | None = None) -> None:
        """Scan ``modality``'s weights (default: all) unless done; raise what the scan found."""
        for name in [modality] if modality is not None else self._modalities:
            with self._lock:
                tensors = self._pending.pop(name, None)
                if tensors:
                    try:
                        for key, tensor in tensors:
                            check_finite(key, tensor, self._index[key])
                    except BaseException as exc:  # noqa: BLE001 - re-raised at every later use
                        self._errors[name] = exc
            if name in self._errors:
                raise self._errors[name]


def start_weight_check(
    tensors: dict[str, torch.Tensor], index: dict[str, Path], modalities: Sequence[str]
) -> WeightCheck | None:
    """The weight scan of a load (a module-level hook so the benchmark can replace it)."""
    return WeightCheck(tensors, index, modalities)


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    more = f", ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"{title} ({len(items)}): {shown}{more}"


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a library's low-level read error on a weights file into a CheckpointError naming it."""
    try:
        yield
    except CheckpointError:
        raise
    except (SafetensorError, OSError, RuntimeError, pickle.UnpicklingError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: cannot read this checkpoint file ({type(exc).__name__}: {exc}); "
            "it may be truncated or corrupt: delete it and download or convert it again"
        ) from exc


def _load_pickle(path: Path) -> dict[str, torch.Tensor]:
    _open_check(path)
    with _reading(path):
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    for wrapper in ("model", "state_dict", "module"):  # common training-checkpoint wrappers
        if isinstance(state, dict) and set(state) == {wrapper} and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def key_index(weight_files: Iterable[Path]) -> dict[str, Path]:
    """Official key -> the file that holds it (reads names only, not tensors)."""
    index: dict[str, Path] = {}
    for path in weight_files:
        if path.name.endswith(".index.json"):
            with _reading(_open_check(path)):
                weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
            index.update({k: path.parent / f for k, f in weight_map.items()})
        elif path.suffix in SAFETENSORS_SUFFIXES:
            with _reading(_open_check(path)), safe_open(str(path), framework="pt") as f:
                index.update(dict.fromkeys(f.keys(), path))
        elif path.suffix in PICKLE_SUFFIXES:
            index.update(dict.fromkeys(_load_pickle(path), path))
        else:
            raise CheckpointError(f"{path}: unknown checkpoint format (expected .safetensors or .pth)")
    return index


def read_tensors(index: dict[str, Path], keys: Iterable[str], values: bool = True) -> dict[str, torch.Tensor]:
    """Read the named official keys, opening each file once; each must be a float tensor and,
    with ``values``, finite (``values=False``: the caller scans them, see :class:`WeightCheck`)."""
    check = check_tensor if values else check_dtype
    by_file: dict[Path, list[str]] = defaultdict(list)
    for key in keys:
        by_file[index[key]].append(key)
    out: dict[str, torch.Tensor] = {}
    for path, file_keys in by_file.items():
        if path.suffix in SAFETENSORS_SUFFIXES:
            with _reading(_open_check(path)), safe_open(str(path), framework="pt") as f:
                for k in file_keys:
                    out[k] = f.get_tensor(k)
                    check(k, out[k], path)
        else:
            state = _load_pickle(path)
            for k in file_keys:
                check(k, state[k], path)
                out[k] = state[k]
    return out


def select_keys(index: dict[str, Path], modalities: Iterable[str]) -> tuple[list[str], list[str]]:
    """Official keys to read for ``modalities``, and keys no rule accounts for."""
    wanted = set(modalities)
    selected, unexpected = [], []
    for key in index:
        if key == keymap.TEXT_MASK_KEY:
            if "text" in wanted:
                selected.append(key)
        elif keymap.to_sdk(key) is None:
            unexpected.append(key)
        elif keymap.modality_of(key) in wanted:
            selected.append(key)
    return selected, unexpected


def weights_dtype(official: dict[str, torch.Tensor], dtype: torch.dtype | None) -> torch.dtype:
    """The one dtype every weight gets, so no layer mixes dtypes: ``dtype``, else the
    stored one if all weights share a supported one (a bf16 checkpoint stays bf16),
    else float32 (float64, or mixed float16/float32)."""
    if dtype is not None:
        return dtype
    stored = {t.dtype for k, t in official.items() if k != keymap.TEXT_MASK_KEY and t.ndim > 0}
    return stored.pop() if len(stored) == 1 and stored <= set(WEIGHT_DTYPES) else torch.float32


def _convert(official: dict[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    target = weights_dtype(official, dtype)
    sdk = {}
    for key, tensor in official.items():
        if key == keymap.TEXT_MASK_KEY:
            keymap.check_text_mask(tensor)
            continue
        # Scalars (log logit scales) are float32 so low-precision models keep exact scales.
        tensor = tensor.to(target if tensor.ndim > 0 else torch.float32)
        sdk[keymap.to_sdk(key)] = tensor  # type: ignore[index]
    return sdk


def check_fit(model: ImageBindModel, state: dict[str, torch.Tensor], unexpected: list[str]) -> None:
    """Raise CheckpointError listing missing keys, unexpected keys and shape mismatches."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(keymap.to_official(k) or k for k in expected if k not in state)
    extra = sorted(unexpected + [keymap.to_official(k) or k for k in state if k not in expected])
    shapes = sorted(
        f"{keymap.to_official(k)}: checkpoint {tuple(v.shape)}, model {expected[k]}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != expected[k]
    )
    problems = [
        _listing(title, items)
        for title, items in (("missing keys", missing), ("unexpected keys", extra), ("shape mismatches", shapes))
        if items
    ]
    if problems:
        hint = "; does config.json describe these weights (embed dims, blocks, heads)?" if shapes else ""
        raise CheckpointError("checkpoint does not fit the model: " + "; ".join(problems) + hint)


def load_model(
    config: ImageBindConfig,
    weight_files: list[Path],
    modalities: Iterable[str],
    dtype: torch.dtype | None = None,
) -> ImageBindModel:
    """Build the encoders for ``modalities`` on the meta device and assign their weights.

    The weights' NaN/inf scan is deferred to each encoder's first use (``model.weight_check``,
    see the module doc)."""
    modalities = tuple(modalities)
    with torch.device("meta"):
        model = ImageBindModel(config, modalities)
    index = key_index(weight_files)
    selected, unexpected = select_keys(index, modalities)
    official = read_tensors(index, selected, values=False)
    state = _convert(official, dtype)
    check_fit(model, state, unexpected)
    model.load_state_dict(state, strict=True, assign=True)
    model.weight_check = start_weight_check(official, index, modalities)
    logger.info("loaded %d tensors for %s from %s", len(state), ", ".join(modalities), weight_files[0].parent)
    return model.eval()
