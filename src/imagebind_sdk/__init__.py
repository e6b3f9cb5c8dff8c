"""imagebind-sdk: Meta's ImageBind for inference, six modalities into one embedding space.

>>> from imagebind_sdk import ImageBind
>>> model = ImageBind.load()                     # imagebind-huge from the Hub cache
>>> out = model.embed(text=["a dog"], audio=["bark.wav"])
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time each name loads on first use
    from .api import ImageBind, default_device
    from .bulk.files import BulkResult, embed_files
    from .bulk.store import load_bulk_output
    from .weights.checkpoint import CheckpointError
    from .model.config import MODALITIES, ImageBindConfig
    from .weights.convert import convert_checkpoint
    from .vectors.embeddings import Embeddings
    from .vectors.space import Space, SpaceMismatchError
    from .weights.hub import WeightsNotFoundError
    from .retrieval.index import EmbeddingIndex
    from .vectors.ops import compose, search, similarity
    from .preprocess import InputError
    from .weights.pretrained import Pretrained, list_pretrained
    from .weights.quantize import quantize_int8
    from .vectors.templates import templates_for
    from .preprocess.tokenizer import Tokenizer
    from .vectors.zero_shot import ZeroShotResult, build_label_embeddings, zero_shot_probs

# Public name -> the module that defines it. Loaded on first access (PEP 562), so that
# ``import imagebind_sdk`` -- and so ``imagebind-sdk --help`` -- does not import torch.
_LAZY = {
    "ImageBind": "api",
    "default_device": "api",
    "BulkResult": "bulk.files",
    "embed_files": "bulk.files",
    "load_bulk_output": "bulk.store",
    "CheckpointError": "weights.checkpoint",
    "MODALITIES": "model.config",
    "ImageBindConfig": "model.config",
    "convert_checkpoint": "weights.convert",
    "Embeddings": "vectors.embeddings",
    "Space": "vectors.space",
    "SpaceMismatchError": "vectors.space",
    "WeightsNotFoundError": "weights.hub",
    "EmbeddingIndex": "retrieval.index",
    "compose": "vectors.ops",
    "search": "vectors.ops",
    "similarity": "vectors.ops",
    "InputError": "preprocess",
    "Pretrained": "weights.pretrained",
    "list_pretrained": "weights.pretrained",
    "quantize_int8": "weights.quantize",
    "templates_for": "vectors.templates",
    "Tokenizer": "preprocess.tokenizer",
    "ZeroShotResult": "vectors.zero_shot",
    "build_label_embeddings": "vectors.zero_shot",
    "zero_shot_probs": "vectors.zero_shot",
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


from .version import __version__  # noqa: E402 - a leaf module without imports

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
    "Space",
    "SpaceMismatchError",
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
