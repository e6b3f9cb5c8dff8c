"""imagebind-sdk: Meta's ImageBind for inference, six modalities into one embedding space.

>>> from imagebind_sdk import ImageBind
>>> model = ImageBind.load()                     # imagebind-huge from the Hub cache
>>> out = model.embed(text=["a dog"], audio=["bark.wav"])
"""

from .api import ImageBind, default_device
from .checkpoint import CheckpointError
from .config import MODALITIES, ImageBindConfig
from .embeddings import Embeddings
from .hub import WeightsNotFoundError
from .preprocess import InputError
from .tokenizer import Tokenizer

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Embeddings",
    "ImageBind",
    "ImageBindConfig",
    "InputError",
    "MODALITIES",
    "Tokenizer",
    "WeightsNotFoundError",
    "__version__",
    "default_device",
]
