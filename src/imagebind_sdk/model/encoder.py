"""ModalityEncoder (stem -> trunk -> head) and the ImageBind model that holds them."""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MODALITIES, ImageBindConfig
from .heads import Head
from .stems import ConvStem, IMUStem, TextStem, VisionStem
from .transformer import Transformer

MAX_LOGIT_SCALE = 100.0
# Initial (and, but for text, fixed) logit scales of the reference postprocessors.
LOGIT_SCALE_INIT = {"vision": 1.0, "text": 1 / 0.07, "audio": 20.0, "depth": 5.0, "thermal": 10.0, "imu": 5.0}
# Modalities whose trunk attention has a learned extra key/value token.
BIAS_KV = {"audio", "depth", "thermal", "imu"}


def build_stem(config: ImageBindConfig, modality: str) -> nn.Module:
    dim = config.embed_dim(modality)
    if modality == "vision":
        return VisionStem(dim, config.kernel_size, config.video_frames)
    if modality == "text":
        return TextStem(dim)
    if modality == "audio":
        hw = (config.audio_num_mel_bins, config.audio_target_len)
        return ConvStem(dim, config.audio_kernel_size, config.audio_stride, hw)
    if modality in ("depth", "thermal"):
        kernel = int(getattr(config, f"{modality}_kernel_size"))
        return ConvStem(dim, kernel, kernel, (224, 224))
    if modality == "imu":
        return IMUStem(dim, config.imu_kernel_size)
    raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")


class ModalityEncoder(nn.Module):
    """One modality's tower: stem -> transformer -> head -> unit vector."""

    def __init__(self, config: ImageBindConfig, modality: str) -> None:
        super().__init__()
        dim = config.embed_dim(modality)
        self.modality = modality
        # Text only: run up to the last end-of-text token of the batch (exact, see forward).
        self.trim_text = True
        self.stem = build_stem(config, modality)
        self.trunk = Transformer(
            dim,
            config.num_blocks(modality),
            config.num_heads(modality),
            bias_kv=modality in BIAS_KV,
            pre_norm=modality == "vision",
        )
        self.head = Head(dim, config.out_embed_dim)
        if modality != "vision":  # vision's scale is a constant 1, not stored in checkpoints
            init = torch.tensor(math.log(LOGIT_SCALE_INIT[modality]))
            self.register_buffer("log_logit_scale", init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of model inputs -> (B, out_dim) unit vectors."""
        if self.modality == "text":
            eot = x.argmax(dim=-1)  # end-of-text has the largest id
            # Causal attention: positions after the last end-of-text never affect it.
            if self.trim_text:
                x = x[:, : int(eot.max()) + 1]
            tokens = self.trunk(self.stem(x), causal=True)
            out = self.head(tokens, eot)
        else:
            out = self.head(self.trunk(self.stem(x)))
        return F.normalize(out.float(), dim=-1)

    def logit_scale(self) -> float:
        """The reference's output scale: min(exp(log_logit_scale), 100)."""
        if self.modality == "vision":
            return 1.0
        return min(math.exp(float(self.log_logit_scale)), MAX_LOGIT_SCALE)


class ImageBindModel(nn.Module):
    """Encoders for a subset of the six modalities, under ``encoders.<modality>``."""

    def __init__(self, config: ImageBindConfig, modalities: Iterable[str] = MODALITIES) -> None:
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleDict({m: ModalityEncoder(config, m) for m in modalities})

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders.keys())

    def forward(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        return self.encoders[modality](x)
