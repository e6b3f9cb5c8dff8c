"""ModalityEncoder (stem -> trunk -> head) and the ImageBind model that holds them."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .config import MODALITIES, EncoderConfig, ImageBindConfig
from .heads import Head
from .stems import ConvStem, IMUStem, TextStem, VisionStem
from .transformer import Transformer

MAX_LOGIT_SCALE = 100.0

# Stem kind (EncoderConfig.stem) -> how to build it.
STEMS: dict[str, Callable[[EncoderConfig], nn.Module]] = {
    "video_patches": lambda c: VisionStem(c.width, c.kernel, c.frames),
    "tokens": lambda c: TextStem(c.width),
    "patches": lambda c: ConvStem(c.width, c.kernel[0], c.stride[0], c.input_size),
    "imu_windows": lambda c: IMUStem(c.width, c.kernel[0]),
}


class ModalityEncoder(nn.Module):
    """One modality's tower: stem -> transformer -> head -> unit vector."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.modality = config.modality
        self.causal = config.causal
        # Text only: run up to the last end-of-text token of the batch (exact, see forward).
        self.trim_text = True
        # Text only: False while a LoRA text adapter is active. ImageBind-LoRA's wrapped trunk
        # drops the attention mask, so its text vectors come from unmasked attention.
        self.masked = True
        self.stem = STEMS[config.stem](config)
        self.trunk = Transformer(
            config.width, config.depth, config.heads, bias_kv=config.bias_kv, pre_norm=config.pre_norm
        )
        self.head = Head(config.width, config.out_dim)
        if config.logit_scale_init is not None:  # vision's scale is a constant 1, not stored
            self.register_buffer("log_logit_scale", torch.tensor(math.log(config.logit_scale_init)))

    def forward(self, x: torch.Tensor, output: str = "embedding") -> torch.Tensor:
        """A batch of model inputs -> (B, out_dim) unit vectors, or the features before them.

        ``output="pooled"``: the selected token (CLS, text: end-of-text) after the head's
        norm, before the projection, (B, width). ``output="tokens"``: every token after that
        norm, (B, L, width); text then runs all its positions (no trimming).
        """
        eot = x.argmax(dim=-1) if self.causal else None  # text: end-of-text has the largest id
        if self.causal and self.masked and self.trim_text and output != "tokens":
            # Causal attention: positions after the last end-of-text never affect it.
            x = x[:, : int(eot.max()) + 1]
        tokens = self.trunk(self.stem(x), causal=self.causal and self.masked)
        if output == "tokens":
            return self.head.norm(tokens)
        pooled = self.head.pooled(tokens, eot)
        if output == "pooled":
            return pooled
        return F.normalize(self.head.proj(pooled).float(), dim=-1)

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """torch.compile this encoder. Text compiles its stem, trunk and head, not ``forward``:
        the trim to the batch's last end-of-text token is a data-dependent length, a graph
        break inside a compiled ``forward``; in eager code it costs nothing."""
        if not self.causal:
            super().compile(*args, **kwargs)
            return
        for part in (self.stem, self.trunk, self.head):
            part.compile(*args, **kwargs)

    def logit_scale(self) -> float:
        """The reference's output scale: min(exp(log_logit_scale), 100); 1 without one."""
        if not hasattr(self, "log_logit_scale"):
            return 1.0
        return min(math.exp(float(self.log_logit_scale)), MAX_LOGIT_SCALE)


class ImageBindModel(nn.Module):
    """Encoders for a subset of the six modalities, under ``encoders.<modality>``."""

    def __init__(self, config: ImageBindConfig, modalities: Iterable[str] = MODALITIES) -> None:
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleDict({m: ModalityEncoder(config.encoder(m)) for m in modalities})
        # The loader's deferred NaN/inf scan of the weights (checkpoint.WeightCheck), if any.
        self.weight_check: Any = None

    def check_weights(self, modality: str | None = None) -> None:
        """Scan the weights of ``modality`` (default: all) unless done; raise what the scan found."""
        if self.weight_check is not None:
            self.weight_check.wait(modality)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders.keys())
