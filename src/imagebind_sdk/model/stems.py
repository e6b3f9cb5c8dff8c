"""Stems: model inputs -> token sequences (CLS token first, positional embedding added).

The reference calls these "preprocessors"; in this SDK "preprocess" means the
input transforms in ``imagebind_sdk.preprocess``, which produce the stems' inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import IMAGE_SIZE, IMU_CHANNELS, IMU_LENGTH, TEXT_CONTEXT_LENGTH, TEXT_VOCAB_SIZE

STEM_NORM_EPS = 1e-5  # nn.LayerNorm's default, as the reference stems use


class TokenStem(nn.Module):
    """Base: prepend the CLS token and add the learned positional embedding."""

    def __init__(self, dim: int, num_patches: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, num_patches + 1, dim))

    def add_cls_and_positions(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, N, D) patch tokens -> (B, N + 1, D): CLS token first, positional embedding added."""
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embed

class VisionStem(TokenStem):
    """Images (B,3,H,W) or clips (B,3,T,H,W) -> Conv3d patches; images repeat to T frames."""

    def __init__(self, dim: int, kernel_size: tuple[int, ...], frames: int) -> None:
        kt, kh, kw = kernel_size
        super().__init__(dim, (frames // kt) * (IMAGE_SIZE // kh) * (IMAGE_SIZE // kw))
        self.frames = frames
        self.proj = nn.Conv3d(3, dim, kernel_size=kernel_size, stride=kernel_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            x = x.unsqueeze(2)
        if x.shape[2] == 1:
            x = x.expand(-1, -1, self.frames, -1, -1)
        return self.add_cls_and_positions(self.proj(x).flatten(2).transpose(1, 2))


class ConvStem(TokenStem):
    """One-channel maps (audio log-mel, depth, thermal) -> Conv2d patches -> LayerNorm."""

    def __init__(self, dim: int, kernel: int, stride: int, input_hw: tuple[int, ...]) -> None:
        grid = [(size - kernel) // stride + 1 for size in input_hw]
        super().__init__(dim, grid[0] * grid[1])
        self.proj = nn.Conv2d(1, dim, kernel_size=kernel, stride=stride, bias=False)
        self.norm = nn.LayerNorm(dim, eps=STEM_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add_cls_and_positions(self.norm(self.proj(x).flatten(2).transpose(1, 2)))


class IMUStem(TokenStem):
    """(B,6,2000) -> windows of ``kernel`` samples, channel-major -> Linear -> LayerNorm."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__(dim, IMU_LENGTH // kernel)
        self.kernel = kernel
        self.proj = nn.Linear(IMU_CHANNELS * kernel, dim, bias=False)
        self.norm = nn.LayerNorm(dim, eps=STEM_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A reshape, not x.unfold(-1, k, k): the same windows, and the ONNX exporter gets it right.
        windows = x[..., : IMU_LENGTH // self.kernel * self.kernel].reshape(*x.shape[:-1], -1, self.kernel)
        windows = windows.transpose(1, 2).flatten(2)
        return self.add_cls_and_positions(self.norm(self.proj(windows)))


class TextStem(nn.Module):
    """Token ids (B,L), L <= 77 -> embeddings + positional embedding (no CLS token)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        # _weight skips nn.Embedding's random init: weights always come from a checkpoint,
        # and normal_ on the meta device would import torch._dynamo (~2 s).
        self.token_embedding = nn.Embedding(TEXT_VOCAB_SIZE, dim, _weight=torch.empty(TEXT_VOCAB_SIZE, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, TEXT_CONTEXT_LENGTH, dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(ids) + self.pos_embed[:, : ids.shape[1]]
