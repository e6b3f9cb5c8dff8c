"""imagebind-sdk: Meta's ImageBind for inference, six modalities into one embedding space.

>>> from imagebind_sdk import ImageBind
>>> model = ImageBind.load()                     # imagebind-huge from the Hub cache
>>> out = model.embed(text=["a dog"], audio=["bark.wav"])
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time each name loads on first use
    from .api import ImageBind, default_device
    from .bulk import BulkResult, embed_files
    from .bulk_store import load_bulk_output
    from .checkpoint import CheckpointError
    from .config import MODALITIES, ImageBindConfig
    from .convert import convert_checkpoint
    from .embeddings import Embeddings
    from .hub import WeightsNotFoundError
    from .index import EmbeddingIndex
    from .ops import compose, search, similarity
    from .preprocess import InputError
    from .pretrained import Pretrained, list_pretrained
    from .quantize import quantize_int8
    from .templates import templates_for
    from .tokenizer import Tokenizer
    from .zero_shot import ZeroShotResult, build_label_embeddings, zero_shot_probs

# Public name -> the module that defines it. Loaded on first access (PEP 562), so that
# ``import imagebind_sdk`` -- and so ``imagebind-sdk --help`` -- does not import torch.
_LAZY = {
    "ImageBind": "api",
    "default_device": "api",
    "BulkResult": "bulk",
    "embed_files": "bulk",
    "load_bulk_output": "bulk_store",
    "CheckpointError": "checkpoint",
    "MODALITIES": "config",
    "ImageBindConfig": "config",
    "convert_checkpoint": "convert",
    "Embeddings": "embeddings",
    "WeightsNotFoundError": "hub",
    "EmbeddingIndex": "index",
    "compose": "ops",
    "search": "ops",
    "similarity": "ops",
    "InputError": "preprocess",
    "Pretrained": "pretrained",
    "list_pretrained": "pretrained",
    "quantize_int8": "quantize",
    "templates_for": "templates",
    "Tokenizer": "tokenizer",
    "ZeroShotResult": "zero_shot",
    "build_label_embeddings": "zero_shot",
    "zero_shot_probs": "zero_shot",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "BulkResult",
    "CheckpointError",
    "EmbeddingIndex",
    "Embeddings",
    "ImageBind",
    "ImageBindConfig",
    "InputError",
    "MODALITIES",
    "Pretrained",
    "Tokenizer",
    "WeightsNotFoundError",
    "ZeroShotResult",
    "__version__",
    "build_label_embeddings",
    "compose",
    "convert_checkpoint",
    "default_device",
    "embed_files",
    "list_pretrained",
    "load_bulk_output",
    "quantize_int8",
    "search",
    "similarity",
    "templates_for",
    "zero_shot_probs",
]
