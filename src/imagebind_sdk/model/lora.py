"""LoRA adapters on a loaded model: several held at once, one active, switched in place.

An adapter is what ImageBind-LoRA (github.com/fabawi/ImageBind-LoRA) trains: per
modality, a low-rank pair ``(w_a, w_b)`` for some trunk blocks (the path
``w_b(w_a(norm_1(x)))`` beside each block's attention, see ``transformer.Block``), and
optionally fine-tuned heads and logit scales. Switching never reloads the base: the
pairs are set on the blocks, and the few head tensors an adapter replaces are swapped,
the base's own kept aside to swap back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .encoder import ImageBindModel


@dataclass
class Adapter:
    """One adapter's tensors, already checked against the base they were loaded for.

    ``trunks``: modality -> {block index: (w_a (rank, D), w_b (D, rank))}.
    ``overrides``: SDK tensor name (``encoders.text.head.proj.weight`` ...) -> tensor.
    ``identity``: a content hash of its files (part of the model's space id).
    """

    name: str
    identity: str
    trunks: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=dict)
    overrides: dict[str, torch.Tensor] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def to(self, device: torch.device, dtype: torch.dtype) -> "Adapter":
        """The same adapter with every tensor on ``device`` in ``dtype`` (float32 for scales)."""
        trunks = {
            m: {i: (a.to(device, dtype), b.to(device, dtype)) for i, (a, b) in pairs.items()}
            for m, pairs in self.trunks.items()
        }
        overrides = {
            k: v.to(device, torch.float32 if k.endswith("log_logit_scale") else dtype) for k, v in self.overrides.items()
        }
        return Adapter(self.name, self.identity, trunks, overrides, list(self.files))


def _owner(model: nn.Module, key: str) -> tuple[nn.Module, str]:
    path, _, leaf = key.rpartition(".")
    return model.get_submodule(path), leaf


def _swap_tensor(model: nn.Module, key: str, value: torch.Tensor) -> torch.Tensor:
    """Put ``value`` in place of the parameter or buffer ``key``; return what was there."""
    module, leaf = _owner(model, key)
    if leaf in module._parameters:
        old = module._parameters[leaf]
        module._parameters[leaf] = nn.Parameter(value, requires_grad=False)
        return old.data
    old = module._buffers[leaf]
    module._buffers[leaf] = value
    return old


class AdapterSet:
    """The adapters loaded on one model and which one is active (None: the base)."""

    def __init__(self, model: ImageBindModel) -> None:
        self.model = model
        self.adapters: dict[str, Adapter] = {}
        self.active: str | None = None
        self._base: dict[str, torch.Tensor] = {}  # the base's tensors an active adapter replaced

    def add(self, adapter: Adapter) -> None:
        if adapter.name in self.adapters:
            raise ValueError(f"an adapter named {adapter.name!r} is already loaded; pass another name=")
        self.adapters[adapter.name] = adapter

    def activate(self, name: str | None) -> None:
        """Make ``name`` the active adapter (None: the base model alone)."""
        if name is not None and name not in self.adapters:
            raise ValueError(f"no adapter named {name!r}; loaded: {sorted(self.adapters) or 'none'}")
        self._restore_base()
        self.active = name
        adapter = self.adapters[name] if name is not None else None
        for modality, encoder in self.model.encoders.items():
            pairs = adapter.trunks.get(modality, {}) if adapter is not None else {}
            for index, block in enumerate(encoder.trunk.blocks):
                block.lora = pairs.get(index)
            # ImageBind-LoRA's wrapped text trunk runs without the causal mask.
            encoder.masked = not (encoder.causal and pairs)
        if adapter is not None:
            for key, value in adapter.overrides.items():
                self._base[key] = _swap_tensor(self.model, key, value)

    def _restore_base(self) -> None:
        for key, value in self._base.items():
            _swap_tensor(self.model, key, value)
        self._base = {}
