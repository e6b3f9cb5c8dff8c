"""ImageBindConfig: the keyword arguments of the reference ``ImageBindModel``.

Field names and defaults are exactly the reference constructor's, so a reference
config (e.g. the Hub's ``config.json``) loads unchanged. Drop-path rates are kept
for fidelity but unused: this SDK is inference-only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

logger = logging.getLogger(__name__)

MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")

# Overrides of the reference defaults that give the released imagebind_huge model.
PRESETS: dict[str, dict[str, Any]] = {
    "imagebind_huge": dict(
        vision_embed_dim=1280,
        vision_num_blocks=32,
        vision_num_heads=16,
        text_embed_dim=1024,
        text_num_blocks=24,
        text_num_heads=16,
        out_embed_dim=1024,
    ),
}


@dataclass(frozen=True)
class ImageBindConfig:
    video_frames: int = 2
    kernel_size: tuple[int, int, int] = (2, 14, 14)
    audio_kernel_size: int = 16
    audio_stride: int = 10
    out_embed_dim: int = 768
    vision_embed_dim: int = 1024
    vision_num_blocks: int = 24
    vision_num_heads: int = 16
    audio_embed_dim: int = 768
    audio_num_blocks: int = 12
    audio_num_heads: int = 12
    audio_num_mel_bins: int = 128
    audio_target_len: int = 204
    audio_drop_path: float = 0.1
    text_embed_dim: int = 768
    text_num_blocks: int = 12
    text_num_heads: int = 12
    depth_embed_dim: int = 384
    depth_kernel_size: int = 16
    depth_num_blocks: int = 12
    depth_num_heads: int = 8
    depth_drop_path: float = 0.0
    thermal_embed_dim: int = 768
    thermal_kernel_size: int = 16
    thermal_num_blocks: int = 12
    thermal_num_heads: int = 12
    thermal_drop_path: float = 0.0
    imu_embed_dim: int = 512
    imu_kernel_size: int = 8
    imu_num_blocks: int = 6
    imu_num_heads: int = 8
    imu_drop_path: float = 0.7

    def __post_init__(self) -> None:
        # JSON has no tuples: accept a list for kernel_size.
        object.__setattr__(self, "kernel_size", tuple(int(k) for k in self.kernel_size))
        if len(self.kernel_size) != 3:
            raise ValueError(f"kernel_size must have 3 entries (T, H, W), got {self.kernel_size}")
        for m in MODALITIES:
            dim, heads = self.embed_dim(m), self.num_heads(m)
            if dim <= 0 or heads <= 0 or dim % heads:
                raise ValueError(f"{m}: embed_dim {dim} must be a positive multiple of num_heads {heads}")

    def embed_dim(self, modality: str) -> int:
        return int(getattr(self, f"{modality}_embed_dim"))

    def num_blocks(self, modality: str) -> int:
        return int(getattr(self, f"{modality}_num_blocks"))

    def num_heads(self, modality: str) -> int:
        return int(getattr(self, f"{modality}_num_heads"))

    @classmethod
    def preset(cls, name: str) -> "ImageBindConfig":
        """A named preset, e.g. ``ImageBindConfig.preset("imagebind_huge")``."""
        key = name.replace("-", "_")
        if key not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
        return cls(**PRESETS[key])

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ImageBindConfig":
        """Build from a mapping; unknown keys (Hub bookkeeping) are ignored with a warning."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in values if k not in names)
        if unknown:
            logger.warning("ignoring unknown ImageBind config keys: %s", ", ".join(unknown))
        return cls(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> "ImageBindConfig":
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object, got {type(values).__name__}")
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["kernel_size"] = list(self.kernel_size)
        return out

    def to_json(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")


def check_modalities(modalities: Iterable[str] | str | None) -> tuple[str, ...]:
    """The requested modalities in canonical order (None: all six); unknown or none is an error."""
    wanted = MODALITIES if modalities is None else ([modalities] if isinstance(modalities, str) else list(modalities))
    unknown = [m for m in wanted if m not in MODALITIES]
    if unknown or not wanted:
        raise ValueError(f"unknown modalities {unknown}; choose from {list(MODALITIES)}")
    return tuple(m for m in MODALITIES if m in wanted)
