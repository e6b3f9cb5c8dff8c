"""Reading LoRA adapters in ImageBind-LoRA's file format, checked against the base model.

The format (``models/lora.py`` and ``save_module`` in github.com/fabawi/ImageBind-LoRA):

- ``imagebind-lora-{modality}{postfix}.safetensors``: ``w_a_NNN`` (rank x D) and
  ``w_b_NNN`` (D x rank), numbered over the adapted blocks of that modality's trunk
  (all blocks unless the trainer chose some; the file does not say which, so a
  partial adapter needs ``layers=``).
- optional ``imagebind-heads{postfix}.pth`` and ``imagebind-postprocessors{postfix}.pth``:
  state dicts of the reference's ``modality_heads`` / ``modality_postprocessors``
  (fine-tuned heads, logit scales), read with ``torch.load(weights_only=True)``.

``postfix`` is free (``_last``, ``_dreambooth_last`` ...); a folder holding several
needs ``postfix=``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from safetensors import safe_open

from . import keymap
from .checkpoint import CheckpointError
from ..model.config import MODALITIES
from ..model.encoder import ImageBindModel
from ..model.lora import Adapter, AdapterSet

LORA_FILE = re.compile(r"^imagebind-lora-(" + "|".join(MODALITIES) + r")(.*)\.safetensors$")
MODULE_FILE = re.compile(r"^imagebind-(heads|postprocessors)(.*)\.pth$")
HUB_PATTERNS = ["imagebind-lora-*.safetensors", "imagebind-heads*.pth", "imagebind-postprocessors*.pth"]
PAIR_KEY = re.compile(r"^w_([ab])_(\d{3,})$")


class AdapterError(CheckpointError):
    """An adapter's files are missing, malformed, or do not fit the base model."""


def adapter_folder(
    source: str | os.PathLike[str], *, revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """A local folder (or one adapter file's folder), else a Hub repo's snapshot of adapter files."""
    path = Path(source).expanduser()
    if path.is_file():
        return path.parent
    if path.is_dir():
        return path
    text = str(source)
    if text.count("/") != 1 or text.startswith((".", "/")):
        raise AdapterError(f"adapter {text!r}: no such file or folder, and not a Hub repo id (owner/name)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(text, revision=revision, cache_dir=cache_dir, allow_patterns=HUB_PATTERNS,
                                      local_files_only=bool(local_files_only)))
    except Exception as exc:  # noqa: BLE001 - the hub raises many types; one line says which
        raise AdapterError(f"adapter {text!r}: could not get it from the Hugging Face Hub: {type(exc).__name__}: {exc}") from None


def adapter_files(folder: Path, postfix: str | None = None) -> tuple[str, dict[str, Path], dict[str, Path]]:
    """(postfix, modality -> LoRA file, "heads"/"postprocessors" -> .pth) of the adapter in ``folder``."""
    found: dict[str, tuple[dict[str, Path], dict[str, Path]]] = {}
    for path in sorted(folder.iterdir()):
        lora, module = LORA_FILE.match(path.name), MODULE_FILE.match(path.name)
        if lora:
            found.setdefault(lora.group(2), ({}, {}))[0][lora.group(1)] = path
        elif module:
            found.setdefault(module.group(2), ({}, {}))[1][module.group(1)] = path
    if postfix is not None:
        if postfix not in found:
            raise AdapterError(f"{folder}: no adapter files with postfix {postfix!r} (found: {sorted(found) or 'none'})")
    elif len(found) != 1:
        what = f"several adapters (postfixes {sorted(found)}); pass postfix=" if found else (
            "no adapter files (imagebind-lora-<modality><postfix>.safetensors)")
        raise AdapterError(f"{folder}: {what}")
    postfix = postfix if postfix is not None else next(iter(found))
    trunks, modules = found[postfix]
    if not trunks and not modules:
        raise AdapterError(f"{folder}: no adapter files with postfix {postfix!r}")
    return postfix, trunks, modules


def _read_pairs(path: Path, width: int, depth: int, layers: list[int] | None) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    bad = sorted(k for k in tensors if not PAIR_KEY.match(k))
    if bad:
        raise AdapterError(f"{path.name}: unexpected tensors {bad[:5]} (expected only w_a_NNN and w_b_NNN)")
    count = len(tensors) // 2
    want = [f"w_{ab}_{i:03d}" for i in range(count) for ab in "ab"]
    if sorted(tensors) != sorted(want):
        raise AdapterError(f"{path.name}: expected pairs w_a_000..w_a_{count - 1:03d} and w_b_..., got {sorted(tensors)[:8]}")
    blocks = list(range(depth)) if layers is None else list(layers)
    if count != len(blocks) or any(not 0 <= i < depth for i in blocks):
        hint = "" if layers is not None else "; pass layers={modality: [block indices]} for a partial adapter"
        raise AdapterError(f"{path.name}: {count} adapted blocks for a trunk of {depth} (layers {blocks}){hint}")
    pairs, rank = {}, None
    for n, block in enumerate(blocks):
        a, b = tensors[f"w_a_{n:03d}"], tensors[f"w_b_{n:03d}"]
        rank = rank or a.shape[0]
        if a.ndim != 2 or b.ndim != 2 or a.shape != (rank, width) or b.shape != (width, rank):
            raise AdapterError(
                f"{path.name}: w_a_{n:03d} {tuple(a.shape)} / w_b_{n:03d} {tuple(b.shape)}: expected "
                f"({rank}, {width}) and ({width}, {rank}) for this base's {width}-wide trunk"
            )
        for key, t in ((f"w_a_{n:03d}", a), (f"w_b_{n:03d}", b)):
            if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
                raise AdapterError(f"{path.name}: {key} must be a finite float tensor")
        pairs[block] = (a, b)
    return pairs


def _read_module(path: Path, prefix: str, model: ImageBindModel) -> dict[str, torch.Tensor]:
    """A heads/postprocessors state dict -> SDK names, for the loaded modalities."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except Exception as exc:  # noqa: BLE001 - a pickle that is not plain tensors is refused
        raise AdapterError(f"{path.name}: not a plain state dict of tensors ({type(exc).__name__})") from None
    if not isinstance(state, Mapping):
        raise AdapterError(f"{path.name}: expected a state dict, got {type(state).__name__}")
    own = dict(model.state_dict(keep_vars=True))
    out, unknown = {}, []
    for key, value in state.items():
        official = f"{prefix}.{key}"
        sdk = keymap.to_sdk(official)
        if sdk is None:
            unknown.append(key)
            continue
        if keymap.modality_of(official) not in model.encoders:
            continue  # an encoder this model did not load
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(own[sdk].shape):
            raise AdapterError(f"{path.name}: {key}: expected shape {tuple(own[sdk].shape)}, got "
                               f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
        if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
            raise AdapterError(f"{path.name}: {key} must be a finite float tensor")
        out[sdk] = value
    if unknown:
        raise AdapterError(f"{path.name}: tensors that are no {prefix} of ImageBind: {sorted(unknown)[:5]}")
    return out


def file_identity(paths: Iterable[Path]) -> str:
    """sha256 over the files' names and bytes, in name order: same files, same id, anywhere."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_adapter(
    folder: Path, model: ImageBindModel, *, name: str, postfix: str | None = None,
    layers: Mapping[str, list[int]] | None = None,
) -> Adapter:
    """The adapter in ``folder``, checked against ``model`` (trunk widths, depths, head shapes)."""
    postfix, trunk_files, module_files = adapter_files(folder, postfix)
    unknown_layers = sorted(set(layers or {}) - set(MODALITIES))
    if unknown_layers:
        raise AdapterError(f"layers: unknown modalities {unknown_layers}; expected some of {list(MODALITIES)}")
    trunks = {}
    for modality, path in trunk_files.items():
        if modality not in model.encoders:
            continue  # adapters for encoders this model did not load are ignored, like their weights
        encoder = model.encoders[modality]
        width, depth = encoder.trunk.blocks[0].norm_1.normalized_shape[0], len(encoder.trunk.blocks)
        trunks[modality] = _read_pairs(path, width, depth, (layers or {}).get(modality))
    overrides = {}
    for kind, path in module_files.items():
        overrides.update(_read_module(path, f"modality_{kind}", model))
    files = [*trunk_files.values(), *module_files.values()]
    return Adapter(name, file_identity(files), trunks, overrides, [p.name for p in files])


def named_sources(adapters: Any) -> list[tuple[str | None, Any]]:
    """``load(adapters=...)`` as (name or None, source) pairs: one source, a list of sources or of
    (name, source) pairs, or a dict name -> source."""
    if adapters is None:
        return []
    if isinstance(adapters, Mapping):
        return list(adapters.items())
    if isinstance(adapters, (str, os.PathLike)):
        return [(None, adapters)]
    return [tuple(a) if isinstance(a, tuple) else (None, a) for a in adapters]


def load_adapter(
    adapters: AdapterSet, source: str | os.PathLike[str], name: str | None, *, postfix: str | None,
    layers: Mapping[str, list[int]] | None, device: torch.device, dtype: torch.dtype, revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool | None = None,
) -> str:
    """Read the adapter at ``source`` for ``adapters.model`` and add it (inactive); return its name
    (default: the postfix without its leading ``_``, else the folder's name)."""
    folder = adapter_folder(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    if name is None:
        name = adapter_files(folder, postfix)[0].lstrip("_") or folder.name
    adapter = read_adapter(folder, adapters.model, name=name, postfix=postfix, layers=layers)
    adapters.add(adapter.to(device, dtype))
    return name


def save_adapter(
    folder: str | os.PathLike[str], pairs: Mapping[str, list[tuple[torch.Tensor, torch.Tensor]]], *,
    postfix: str = "_last",
) -> list[Path]:
    """Write LoRA pairs in ImageBind-LoRA's format: per modality, ``[(w_a (rank, D), w_b (D, rank)), ...]``
    one per adapted block, saved as ``imagebind-lora-{modality}{postfix}.safetensors``.
    For adapters trained elsewhere (PEFT, your own loop) that should load here and in ImageBind-LoRA."""
    from safetensors.torch import save_file

    unknown = sorted(set(pairs) - set(MODALITIES))
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; expected some of {list(MODALITIES)}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for modality, blocks in pairs.items():
        tensors = {}
        for i, (a, b) in enumerate(blocks):
            tensors[f"w_a_{i:03d}"], tensors[f"w_b_{i:03d}"] = a.detach().contiguous(), b.detach().contiguous()
        path = out / f"imagebind-lora-{modality}{postfix}.safetensors"
        save_file(tensors, str(path))
        written.append(path)
    return written
