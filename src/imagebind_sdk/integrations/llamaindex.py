"""LlamaIndex: ``ImageBindEmbedding``, a ``llama_index.core.embeddings.MultiModalEmbedding``.

>>> from imagebind_sdk.integrations.llamaindex import ImageBindEmbedding
>>> embed_model = ImageBindEmbedding(checkpoint="imagebind-huge")                 # doctest: +SKIP
>>> index = VectorStoreIndex(nodes, embed_model=embed_model)                      # doctest: +SKIP
>>> embed_model.get_image_embedding("dog.jpg")                                    # doctest: +SKIP

Texts and queries go to the text encoder; images (paths or file objects, LlamaIndex's
``ImageType``) to the vision encoder, so a ``MultiModalVectorStoreIndex`` can hold both.
``get_kind_embedding_batch`` covers audio, video, depth, thermal and IMU.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Sequence

from ..pipeline.overflow import check_text_overflow
from .shared import LoadOptions, embed_rows, require, resolve_model

if TYPE_CHECKING:
    from ..api import ImageBind

_multi_modal = require("llama_index.core.embeddings", "llamaindex")
_pydantic = require("pydantic", "llamaindex")

__all__ = ["ImageBindEmbedding"]


class ImageBindEmbedding(_multi_modal.MultiModalEmbedding):
    """ImageBind vectors for LlamaIndex indexes and retrievers.

    Pass ``model=`` (a loaded ``ImageBind``, shared) or ``checkpoint=`` plus
    ``modalities``/``device``/``dtype``/``quantize``/``backend``; ``embed_batch_size`` is
    LlamaIndex's batch size (also the model's). ``normalize=False`` gives the
    reference model's raw output instead of unit vectors. ``adapters=``: LoRA adapters, as
    ``ImageBind.load(adapters=...)``; ``text_overflow``: texts past 77 tokens (see ``ImageBind.embed``).
    """

    normalize: bool = _pydantic.Field(default=True, description="unit vectors (False: reference raw output)")
    text_overflow: str = _pydantic.Field(default="truncate", description="texts past 77 tokens: truncate, "
                                         "chunk_mean or error")
    _model: Any = _pydantic.PrivateAttr()

    def __init__(self, model: "ImageBind | None" = None, *, normalize: bool = True, text_overflow: str = "truncate",
                 **kwargs: Any) -> None:
        """``kwargs``: the load options (``checkpoint``, ``modalities``, ``device``, ``dtype``,
        ``quantize``, ``backend``, ``adapters``; when no ``model``) and LlamaIndex's own fields
        (``embed_batch_size``, ...)."""
        check_text_overflow(text_overflow)
        loaded = resolve_model(model, LoadOptions.pop_from(kwargs))
        kwargs.setdefault("model_name", loaded.source or "imagebind")
        super().__init__(normalize=normalize, text_overflow=text_overflow, **kwargs)
        self._model = loaded

    @classmethod
    def class_name(cls) -> str:
        return "ImageBindEmbedding"

    @property
    def model(self) -> "ImageBind":
        return self._model

    def get_kind_embedding_batch(self, kind: str, items: Sequence[Any]) -> list[list[float]]:
        """Vectors of inputs of any ``embed()`` kind (``"audio"``, ``"video"``, ``"imu"``, ...)."""
        return embed_rows(self._model, kind, items, normalize=self.normalize, batch_size=self.embed_batch_size,
                          text_overflow=self.text_overflow)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.get_kind_embedding_batch("text", texts)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    def _get_image_embeddings(self, img_file_paths: list[Any]) -> list[list[float]]:
        return self.get_kind_embedding_batch("vision", img_file_paths)

    def _get_image_embedding(self, img_file_path: Any) -> list[float]:
        return self._get_image_embeddings([img_file_path])[0]

    # Async variants run the model in a worker thread so the event loop stays free.
    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_image_embeddings(self, img_file_paths: list[Any]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_image_embeddings, img_file_paths)

    async def _aget_image_embedding(self, img_file_path: Any) -> list[float]:
        return await asyncio.to_thread(self._get_image_embedding, img_file_path)
