"""imagebind-sdk: Meta's ImageBind for inference, six modalities into one embedding space.

>>> from imagebind_sdk import ImageBind
>>> model = ImageBind.load()                     # imagebind-huge from the Hub cache
>>> out = model.embed(text=["a dog"], audio=["bark.wav"])
"""

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
