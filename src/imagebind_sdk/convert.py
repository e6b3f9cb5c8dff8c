"""Converting a checkpoint to safetensors: one file or one shard per modality, optionally cast.

The output keeps the OFFICIAL key names (text mask included), so it loads here and
anywhere the official names are expected. A conversion is checked completely before
anything is written (every key mapped, shapes fit the config, text mask causal), is
streamed one modality at a time (peak memory ~ the largest modality, never the whole
state dict twice: converting the 4.8 GB imagebind_huge peaks at ~3.2 GB RSS), and
lands atomically: files are written under temporary names and renamed at the end,
so a failed run leaves no half-written checkpoint behind.

Example: ``convert_checkpoint("imagebind_huge.pth", "imagebind-huge-bf16", dtype="bf16", shard=True)``
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import struct
import sys
from pathlib import Path
from typing import Callable, Iterable

import torch
from safetensors import safe_open

from . import checkpoint, dtypes, hub, keymap
from .config import MODALITIES, ImageBindConfig, check_modalities
from .model import ImageBindModel

logger = logging.getLogger(__name__)

CONFIG_NAME = hub.CONFIG_NAME
SINGLE_NAME = "model.safetensors"
SHARD_PATTERN = "model-{}.safetensors"
INDEX_FORMAT = "imagebind-sdk per-modality shards"
TMP_SUFFIX = ".partial"

# safetensors' dtype codes (https://github.com/huggingface/safetensors, format spec).
ST_CODES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}
ST_DTYPES = {code: dtype for dtype, code in ST_CODES.items()}

Specs = dict[str, torch.Tensor]  # official key -> meta tensor with the shape and dtype to write


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """None, a torch dtype or a name ("bf16", "float16", ...) -> float32/bfloat16/float16 or None."""
    try:
        resolved = dtypes.as_dtype(dtype)
        if resolved in (None, torch.float32, torch.bfloat16, torch.float16):
            return resolved
    except ValueError:
        pass
    raise ValueError(f"unsupported dtype {dtype!r}; use float32, bfloat16 (bf16) or float16 (fp16)")


def convert_checkpoint(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    dtype: torch.dtype | str | None = None,
    shard: bool = False,
    overwrite: bool = False,
    modalities: Iterable[str] | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> list[Path]:
    """Write ``source`` (anything ``hub.resolve`` accepts) to ``out_dir`` as safetensors.

    Writes ``config.json`` and ``model.safetensors`` or, with ``shard=True``, one
    ``model-<modality>.safetensors`` per modality plus ``model.safetensors.index.json``.
    ``dtype`` casts floating tensors except 0-d logit scales and the text mask.
    ``modalities`` keeps a subset (default: all six). Existing checkpoint files in
    ``out_dir`` are refused unless ``overwrite=True``. Returns the files written.
    """
    target = as_dtype(dtype)
    wanted = check_modalities(modalities)
    resolved = hub.resolve(
        source, modalities=wanted, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
    )
    index = checkpoint.key_index(resolved.weight_files)
    specs = validate(resolved.config, index, wanted)
    specs = {k: _out_spec(k, v, target) for k, v in specs.items()}
    out = Path(out_dir).expanduser()
    plan = _plan_files(specs, shard)
    _refuse_existing(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    logger.info("converting %s -> %s (%s, %s)", resolved.source, out, target or "dtype kept",
                "one shard per modality" if shard else "one file")
    written = _write_all(out, plan, index, resolved.config, shard)
    _remove_stale(out, keep={p.name for p in written})
    logger.info("wrote %d files to %s", len(written), out)
    return written


def source_specs(index: dict[str, Path], keys: Iterable[str]) -> Specs:
    """Shapes and dtypes of official keys as meta tensors, without reading tensor data."""
    specs: Specs = {}
    by_file = itertools.groupby(sorted(keys, key=lambda k: str(index[k])), key=lambda k: index[k])
    for path, file_keys in by_file:
        if path.suffix in checkpoint.SAFETENSORS_SUFFIXES:
            with safe_open(str(path), framework="pt") as f:
                for k in file_keys:
                    sl = f.get_slice(k)
                    specs[k] = torch.empty(sl.get_shape(), dtype=ST_DTYPES[sl.get_dtype()], device="meta")
        else:  # .pth: memory-mapped, so touching shapes reads no tensor data
            state = checkpoint._load_pickle(path)
            specs.update({k: torch.empty_like(state[k], device="meta") for k in file_keys})
    return specs


def validate(config: ImageBindConfig, index: dict[str, Path], modalities: Iterable[str] = MODALITIES) -> Specs:
    """Check that the checkpoint fits ``config`` for ``modalities``; return specs of its keys.

    Raises ``CheckpointError`` (unmapped, missing or unexpected keys, wrong shapes) or
    ``ValueError`` (a text mask that is not causal), reading only the text mask.
    """
    modalities = tuple(modalities)
    selected, unexpected = checkpoint.select_keys(index, modalities)
    specs = source_specs(index, selected)
    with torch.device("meta"):
        model = ImageBindModel(config, modalities)
    clean = {keymap.to_clean(k): v for k, v in specs.items() if k != keymap.TEXT_MASK_KEY}
    checkpoint.check_fit(model, clean, unexpected)  # type: ignore[arg-type]
    if keymap.TEXT_MASK_KEY in specs:
        keymap.check_text_mask(checkpoint.read_tensors(index, [keymap.TEXT_MASK_KEY])[keymap.TEXT_MASK_KEY])
    return specs


def _keeps_dtype(key: str, spec: torch.Tensor) -> bool:
    """Logit scales (0-d), the text mask and non-float tensors are never cast."""
    return key == keymap.TEXT_MASK_KEY or spec.ndim == 0 or not spec.is_floating_point()


def _out_spec(key: str, spec: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return spec if dtype is None or _keeps_dtype(key, spec) else spec.to(dtype)


def _plan_files(specs: Specs, shard: bool) -> dict[str, Specs]:
    """Output file name -> the specs it holds (per modality when sharding)."""
    if not shard:
        return {SINGLE_NAME: specs}
    plan: dict[str, Specs] = {}
    for key, spec in specs.items():
        plan.setdefault(SHARD_PATTERN.format(keymap.modality_of(key)), {})[key] = spec
    return plan


def _refuse_existing(out: Path, overwrite: bool) -> None:
    """Refuse to replace a checkpoint (either layout) in ``out`` unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a directory")
    existing = [p.name for p in _own_files(out)]
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds {', '.join(existing)}; pass overwrite=True (CLI: --overwrite) to replace them"
        )


def _own_files(out: Path) -> list[Path]:
    """Files in ``out`` with a name this module writes (either layout)."""
    names = [CONFIG_NAME, SINGLE_NAME, checkpoint.INDEX_NAME, *(SHARD_PATTERN.format(m) for m in MODALITIES)]
    return [out / n for n in names if (out / n).exists()]


def _remove_stale(out: Path, keep: set[str]) -> None:
    """After an overwrite, drop files of the other layout so the directory resolves unambiguously."""
    for path in _own_files(out):
        if path.name not in keep:
            logger.info("removing stale %s", path)
            path.unlink()


def _write_all(
    out: Path, plan: dict[str, Specs], index: dict[str, Path], config: ImageBindConfig, shard: bool
) -> list[Path]:
    """Write every file under a temporary name, then rename them all into place."""
    names = [CONFIG_NAME, *plan, *([checkpoint.INDEX_NAME] if shard else [])]
    tmp = {name: out / (name + TMP_SUFFIX) for name in names}
    try:
        config.to_json(tmp[CONFIG_NAME])
        sizes = [
            write_safetensors(tmp[name], specs, lambda keys: checkpoint.read_tensors(index, keys))
            for name, specs in plan.items()
        ]
        if shard:
            _write_index(tmp[checkpoint.INDEX_NAME], plan, sum(sizes))
    except BaseException:
        for path in tmp.values():
            path.unlink(missing_ok=True)
        raise
    for name in names:
        os.replace(tmp[name], out / name)
    return [out / name for name in names]


def _write_index(path: Path, plan: dict[str, Specs], total_size: int) -> None:
    weight_map = dict(sorted((key, name) for name, specs in plan.items() for key in specs))
    index = {"metadata": {"total_size": total_size, "format": INDEX_FORMAT}, "weight_map": weight_map}
    path.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def write_safetensors(
    path: Path, specs: Specs, read: Callable[[list[str]], dict[str, torch.Tensor]],
    metadata: dict[str, str] | None = None,
) -> int:
    """Stream tensors into a safetensors file, reading one (itemsize, modality) group at a time.

    The header is built from ``specs`` (shapes and output dtypes) first; tensors are
    laid out by decreasing item size (as safetensors itself does, so every tensor is
    aligned), then modality, then name. ``read(keys)`` returns tensors in any dtype;
    each is cast to its spec's dtype as it is written, and released. Returns the
    number of tensor bytes written.
    """
    if sys.byteorder != "little":  # pragma: no cover - safetensors data is little-endian
        raise RuntimeError("writing safetensors needs a little-endian machine")
    rank = {m: n for n, m in enumerate(MODALITIES)}

    def group(key: str) -> tuple[int, int]:
        return -specs[key].element_size(), rank.get(keymap.modality_of(key) or "", len(rank))

    order = sorted(specs, key=lambda k: (*group(k), k))
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for key in order:
        nbytes = _nbytes(specs[key])
        header[key] = {"dtype": ST_CODES[specs[key].dtype], "shape": list(specs[key].shape),
                       "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for _, keys in itertools.groupby(order, key=group):
            keys = list(keys)
            tensors = read(keys)
            for key in keys:
                f.write(_tensor_bytes(key, tensors.pop(key), specs[key]))
            logger.info("  %s <- %s: %d tensors, %.1f MB", path.name.removesuffix(TMP_SUFFIX),
                        keymap.modality_of(keys[0]), len(keys), sum(_nbytes(specs[k]) for k in keys) / 1e6)
    return offset


def _nbytes(spec: torch.Tensor) -> int:
    return spec.numel() * spec.element_size()


def _tensor_bytes(key: str, tensor: torch.Tensor, spec: torch.Tensor) -> memoryview:
    """A tensor's little-endian bytes in the spec's dtype, checked against the header's shape."""
    if tensor.shape != spec.shape:
        raise RuntimeError(f"{key}: read shape {tuple(tensor.shape)}, expected {tuple(spec.shape)}")
    flat = tensor.detach().to("cpu", spec.dtype).contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())
