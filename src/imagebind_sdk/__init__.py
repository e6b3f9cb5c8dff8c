"""imagebind-sdk: Meta's ImageBind for inference, six modalities into one embedding space.

>>> from imagebind_sdk import ImageBind
>>> model = ImageBind.load()                     # imagebind-huge from the Hub cache
>>> out = model.embed(text=["a dog"], audio=["bark.wav"])
"""

from .api import ImageBind, default_device
from .bulk.files import BulkResult, embed_files
from .bulk.store import load_bulk_output
from .weights.checkpoint import CheckpointError
from .model.config import MODALITIES, ImageBindConfig
from .weights.convert import convert_checkpoint
from .vectors.embeddings import Embeddings
from .weights.hub import WeightsNotFoundError
from .search.index import EmbeddingIndex
from .vectors.ops import compose, search, similarity
from .preprocess import InputError
from .weights.pretrained import Pretrained, list_pretrained
from .weights.quantize import quantize_int8
from .vectors.templates import templates_for
from .preprocess.tokenizer import Tokenizer
from .vectors.zero_shot import ZeroShotResult, build_label_embeddings, zero_shot_probs
from .version import __version__

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
