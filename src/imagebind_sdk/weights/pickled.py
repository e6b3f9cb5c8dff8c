"""Pickled fine-tunes (a whole ``torch.save(model)`` or a state dict) -> official tensors + config.

Read through :mod:`imagebind_sdk.weights.safe_pickle` (no code from the file runs). Keys lose a
``module.`` (DataParallel) or ``model.`` (training wrappers) prefix. The config comes
from, in order: ``config=`` (a ``config.json`` path), a ``config.json`` beside the file,
or the tensors themselves: widths, depths, kernels and the output size from shapes,
head counts from the pickled attention modules' ``num_heads`` (a bare state dict has
none: then its shapes must be imagebind_huge's, or a config is needed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError
from ..model.config import IMAGE_SIZE, MODALITIES, ImageBindConfig
from .safe_pickle import UnsafePickleError, safe_load, state_of

WRAPPER_PREFIXES = ("module.", "model.")
IMU_CHANNELS = 6


def _strip_prefixes(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    changed = True
    while changed and tensors:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in tensors):
                tensors = {k[len(prefix):]: v for k, v in tensors.items()}
                changed = True
    return tensors


def _shape(tensors: dict[str, torch.Tensor], key: str, path: Path) -> tuple[int, ...]:
    if key not in tensors:
        raise CheckpointError(f"{path.name}: no tensor {key!r}: not an ImageBind model (or pass a config)")
    return tuple(tensors[key].shape)


def infer_config(tensors: dict[str, torch.Tensor], attrs: dict[str, dict], path: Path) -> dict[str, Any]:
    """ImageBindConfig fields read off the tensors' shapes and the modules' attributes."""
    values: dict[str, Any] = {}
    missing_heads = []
    for m in MODALITIES:
        prefix = f"modality_trunks.{m}.blocks."
        blocks = {int(k[len(prefix):].split(".")[0]) for k in tensors if k.startswith(prefix)}
        values[f"{m}_num_blocks"] = max(blocks) + 1 if blocks else 0
        values[f"{m}_embed_dim"] = _shape(tensors, f"{prefix}0.norm_1.weight", path)[0]
        heads = attrs.get(f"{prefix}0.attn", {}).get("num_heads")
        if isinstance(heads, int):
            values[f"{m}_num_heads"] = heads
        else:
            missing_heads.append(m)
    values["out_embed_dim"] = _shape(tensors, "modality_heads.vision.2.weight", path)[0]
    kernel = list(_shape(tensors, "modality_preprocessors.vision.rgbt_stem.proj.1.weight", path)[2:])
    patches = _shape(tensors, "modality_preprocessors.vision.pos_embedding_helper.pos_embed", path)[1] - 1
    values["kernel_size"] = kernel
    values["video_frames"] = kernel[0] * patches // max((IMAGE_SIZE // kernel[1]) * (IMAGE_SIZE // kernel[2]), 1)
    values["audio_kernel_size"] = _shape(tensors, "modality_preprocessors.audio.rgbt_stem.proj.weight", path)[-1]
    stride = attrs.get("modality_preprocessors.audio.rgbt_stem.proj", {}).get("stride")
    if isinstance(stride, tuple) and stride and isinstance(stride[0], int):
        values["audio_stride"] = stride[0]
    values["depth_kernel_size"] = _shape(tensors, "modality_preprocessors.depth.depth_stem.proj.weight", path)[-1]
    values["thermal_kernel_size"] = _shape(tensors, "modality_preprocessors.thermal.rgbt_stem.proj.weight", path)[-1]
    values["imu_kernel_size"] = _shape(tensors, "modality_preprocessors.imu.imu_stem.proj.weight", path)[1] // IMU_CHANNELS
    if missing_heads:
        huge = ImageBindConfig.preset("imagebind_huge").to_dict()
        if any(values[f"{m}_embed_dim"] != huge[f"{m}_embed_dim"] for m in MODALITIES):
            raise CheckpointError(
                f"{path.name}: the head counts of {missing_heads} are not in this file (a state dict holds no "
                "attention modules): pass --config CONFIG.json (config= in Python) or put a config.json beside it"
            )
        values.update({f"{m}_num_heads": huge[f"{m}_num_heads"] for m in missing_heads})
    return values


def read_pickled(path: str | os.PathLike[str], config: str | os.PathLike[str] | None = None) -> tuple[dict[str, torch.Tensor], ImageBindConfig]:
    """(official state dict, config) of a pickled whole model or state dict, no code run."""
    path = Path(path)
    try:
        tensors, attrs = state_of(safe_load(path))
    except UnsafePickleError as exc:
        raise CheckpointError(f"{path.name}: {exc}") from None
    tensors = {k: v.clone() for k, v in _strip_prefixes(tensors).items()}  # own memory, not the archive's buffer
    beside = path.parent / "config.json"
    if config is not None or beside.is_file():
        chosen = Path(config) if config is not None else beside
        return tensors, ImageBindConfig.from_json(chosen)
    return tensors, ImageBindConfig.from_dict(infer_config(tensors, attrs, path))
