"""The ImageBind network: stems, transformer trunks and heads for six modalities."""

from .encoder import ImageBindModel, ModalityEncoder

__all__ = ["ImageBindModel", "ModalityEncoder"]
