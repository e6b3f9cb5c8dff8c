"""Heads: the trunk's output tokens -> one vector per input in the shared space."""

from __future__ import annotations

import torch
from torch import nn

HEAD_NORM_EPS = 1e-6


class Head(nn.Module):
    """LayerNorm -> pick one token -> Linear (no bias).

    The reference normalises every token and then selects one; LayerNorm works per
    token, so selecting first gives the same numbers for less work.
    """

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=HEAD_NORM_EPS)
        self.proj = nn.Linear(dim, out_dim, bias=False)

    def forward(self, tokens: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``index`` selects a token per row (text: end-of-text); default the CLS token."""
        return self.proj(self.pooled(tokens, index))

    def pooled(self, tokens: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """The selected token after the norm, before the projection (B, D)."""
        if index is None:
            picked = tokens[:, 0]
        else:
            picked = tokens[torch.arange(tokens.shape[0], device=tokens.device), index]
        return self.norm(picked)
