"""ONE declarative mapping between official ImageBind state-dict names and this SDK's.

Official checkpoints (``imagebind_huge.pth`` and the Hub's safetensors copy) name
tensors after the reference module tree, accidents included (the audio and thermal
stems live under ``rgbt_stem``, the vision conv is ``proj.1``, the IMU head's Linear
is at index 3). This SDK uses ``encoders.<modality>.{stem,trunk,head}``. Each rule is
a pair of templates; ``{m}``, ``{i}`` and ``{p}`` are placeholders that match the
patterns in ``PLACEHOLDERS`` unless the rule narrows them. Checkpoint files keep the
official names; the mapping is applied when loading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from ..model.config import MODALITIES

PLACEHOLDERS = {
    "m": "|".join(MODALITIES),
    "i": r"\d+",
    "p": "weight|bias",
}

# The text trunk's causal mask is stored in official checkpoints; this SDK computes
# causal attention with SDPA instead, so the mask is verified and dropped.
TEXT_MASK_KEY = "modality_preprocessors.text.mask"


@dataclass(frozen=True)
class Rule:
    """An official key template and the SDK key template it maps to."""

    official: str
    sdk: str
    where: dict[str, str] = field(default_factory=dict)


RULES: tuple[Rule, ...] = (
    # stems
    Rule("modality_preprocessors.vision.rgbt_stem.proj.1.weight", "encoders.vision.stem.proj.weight"),
    Rule("modality_preprocessors.{m}.rgbt_stem.proj.weight", "encoders.{m}.stem.proj.weight", {"m": "audio|thermal"}),
    Rule("modality_preprocessors.{m}.rgbt_stem.norm_layer.{p}", "encoders.{m}.stem.norm.{p}", {"m": "audio|thermal"}),
    Rule("modality_preprocessors.depth.depth_stem.proj.weight", "encoders.depth.stem.proj.weight"),
    Rule("modality_preprocessors.depth.depth_stem.norm_layer.{p}", "encoders.depth.stem.norm.{p}"),
    Rule("modality_preprocessors.imu.imu_stem.proj.weight", "encoders.imu.stem.proj.weight"),
    Rule("modality_preprocessors.imu.imu_stem.norm_layer.{p}", "encoders.imu.stem.norm.{p}"),
    Rule("modality_preprocessors.{m}.cls_token", "encoders.{m}.stem.cls_token", {"m": "vision|audio|depth|thermal|imu"}),
    Rule(
        "modality_preprocessors.{m}.pos_embedding_helper.pos_embed",
        "encoders.{m}.stem.pos_embed",
        {"m": "vision|audio|depth|thermal"},
    ),
    Rule("modality_preprocessors.{m}.pos_embed", "encoders.{m}.stem.pos_embed", {"m": "imu|text"}),
    Rule("modality_preprocessors.text.token_embedding.weight", "encoders.text.stem.token_embedding.weight"),
    # trunks
    Rule("modality_trunks.vision.pre_transformer_layer.0.{p}", "encoders.vision.trunk.pre_norm.{p}"),
    Rule("modality_trunks.{m}.blocks.{i}.attn.in_proj_{p}", "encoders.{m}.trunk.blocks.{i}.attn.qkv.{p}"),
    Rule("modality_trunks.{m}.blocks.{i}.attn.out_proj.{p}", "encoders.{m}.trunk.blocks.{i}.attn.proj.{p}"),
    Rule("modality_trunks.{m}.blocks.{i}.attn.bias_{p}", "encoders.{m}.trunk.blocks.{i}.attn.bias_{p}", {"p": "k|v"}),
    Rule("modality_trunks.{m}.blocks.{i}.{p}", "encoders.{m}.trunk.blocks.{i}.{p}", {"p": r"(?:norm_[12]|mlp\.fc[12])\.(?:weight|bias)"}),
    # heads
    Rule("modality_heads.text.proj.0.{p}", "encoders.text.head.norm.{p}"),
    Rule("modality_heads.text.proj.1.weight", "encoders.text.head.proj.weight"),
    Rule("modality_heads.{m}.0.{p}", "encoders.{m}.head.norm.{p}", {"m": "vision|audio|depth|thermal|imu"}),
    Rule("modality_heads.{m}.2.weight", "encoders.{m}.head.proj.weight", {"m": "vision|audio|depth|thermal"}),
    Rule("modality_heads.imu.3.weight", "encoders.imu.head.proj.weight"),
    # postprocessors (vision has none: its scale is 1)
    Rule("modality_postprocessors.{m}.1.log_logit_scale", "encoders.{m}.log_logit_scale", {"m": "text|audio|depth|thermal|imu"}),
)


def _compile(template: str, where: dict[str, str]) -> re.Pattern[str]:
    parts = re.split(r"\{(\w)\}", template)
    pattern = ""
    for n, part in enumerate(parts):
        if n % 2:
            pattern += f"(?P<{part}>{where.get(part, PLACEHOLDERS[part])})"
        else:
            pattern += re.escape(part)
    return re.compile(pattern + r"\Z")


_FORWARD = [(_compile(r.official, r.where), r.sdk) for r in RULES]
_BACKWARD = [(_compile(r.sdk, r.where), r.official) for r in RULES]


def _apply(key: str, table: list[tuple[re.Pattern[str], str]]) -> str | None:
    for pattern, target in table:
        match = pattern.match(key)
        if match:
            return target.format(**match.groupdict())
    return None


def to_sdk(official_key: str) -> str | None:
    """The SDK name of an official key, or None if no rule covers it."""
    return _apply(official_key, _FORWARD)


def to_official(sdk_key: str) -> str | None:
    """The official name of an SDK key, or None if no rule covers it."""
    return _apply(sdk_key, _BACKWARD)


def modality_of(official_key: str) -> str | None:
    """The modality an official key belongs to (its second dotted component)."""
    parts = official_key.split(".")
    if len(parts) > 2 and parts[1] in MODALITIES:
        return parts[1]
    return None


def causal_mask(length: int = 77) -> torch.Tensor:
    """The reference text mask: -inf above the diagonal, 0 elsewhere."""
    return torch.full((length, length), float("-inf")).triu_(1)


def check_text_mask(mask: torch.Tensor) -> None:
    """The stored text mask must be the causal mask this SDK assumes."""
    expected = causal_mask(mask.shape[-1] if mask.ndim == 2 else 77)
    if mask.shape != expected.shape or not torch.equal(mask.float(), expected):
        raise ValueError(
            f"{TEXT_MASK_KEY}: expected the 77x77 causal mask (-inf above the diagonal), "
            f"got a tensor of shape {tuple(mask.shape)} with other values"
        )
