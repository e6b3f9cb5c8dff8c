"""The ImageBind network: its config, stems, transformer trunks and heads for six modalities.

``ImageBindModel`` and ``ModalityEncoder`` load on first use (PEP 562): ``model.config``
holds the input geometry that light modules (the CLI's ``--help``, argument checks) read,
and importing it must not import torch.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .encoder import ImageBindModel, ModalityEncoder

__all__ = ["ImageBindModel", "ModalityEncoder"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
