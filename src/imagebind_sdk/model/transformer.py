"""The pre-norm transformer trunk shared by every modality."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-6
MLP_RATIO = 4


class Attention(nn.Module):
    """Multi-head self-attention, numerically ``nn.MultiheadAttention``.

    ``bias_kv`` adds one learned key and value token after the projection (the
    reference's ``add_bias_kv=True``), so keys and values have length L + 1.
    """

    def __init__(self, dim: int, num_heads: int, bias_kv: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_k = nn.Parameter(torch.empty(1, 1, dim)) if bias_kv else None
        self.bias_v = nn.Parameter(torch.empty(1, 1, dim)) if bias_kv else None

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if self.bias_k is not None and self.bias_v is not None:
            k = torch.cat([k, self.bias_k.expand(batch, 1, dim)], dim=1)
            v = torch.cat([v, self.bias_v.expand(batch, 1, dim)], dim=1)
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dim))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU, as the reference


class Block(nn.Module):
    """``x + attn(norm_1(x))`` then ``x + mlp(norm_2(x))``.

    ``lora`` is the active LoRA adapter's ``(w_a, w_b)`` for this block, or None: a
    low-rank path ``w_b(w_a(h))`` beside the attention on the same normalised input
    ``h``, unscaled (ImageBind-LoRA's math). A plain attribute, not a parameter: adapters
    are switched by :mod:`imagebind_sdk.model.lora` without touching the state dict.
    """

    def __init__(self, dim: int, num_heads: int, bias_kv: bool = False) -> None:
        super().__init__()
        self.norm_1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads, bias_kv)
        self.norm_2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = MLP(dim, MLP_RATIO * dim)
        self.lora: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        h = self.norm_1(x)
        out = self.attn(h, causal)
        if self.lora is not None:
            out = out + F.linear(F.linear(h, self.lora[0]), self.lora[1])
        x = x + out
        return x + self.mlp(self.norm_2(x))


class Transformer(nn.Module):
    """A stack of blocks, optionally preceded by a LayerNorm (the vision trunk)."""

    def __init__(
        self, dim: int, depth: int, num_heads: int, *, bias_kv: bool = False, pre_norm: bool = False
    ) -> None:
        super().__init__()
        self.pre_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS) if pre_norm else None
        self.blocks = nn.ModuleList(Block(dim, num_heads, bias_kv) for _ in range(depth))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        if self.pre_norm is not None:
            x = self.pre_norm(x)
        for block in self.blocks:
            x = block(x, causal)
        return x
