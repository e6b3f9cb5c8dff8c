"""LangChain: ``ImageBindEmbeddings``, a ``langchain_core.embeddings.Embeddings``.

>>> from imagebind_sdk.integrations.langchain import ImageBindEmbeddings
>>> emb = ImageBindEmbeddings(checkpoint="imagebind-huge", device="cpu")   # doctest: +SKIP
>>> store = InMemoryVectorStore.from_texts(["a dog", "a car"], emb)         # doctest: +SKIP
>>> store.similarity_search_by_vector(emb.embed_audio(["bark.wav"])[0])     # doctest: +SKIP

Texts go to the text encoder; ``embed_image`` / ``embed_audio`` (and ``embed_kind`` for
video, depth, thermal, IMU) put other inputs into the same space, as LangChain's
``OpenCLIPEmbeddings.embed_image`` does for images, so a text-built store can be
searched with a sound and the other way round.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Sequence

from ..pipeline.overflow import check_text_overflow
from .shared import LoadOptions, embed_rows, require, resolve_model

if TYPE_CHECKING:
    from ..api import ImageBind

_embeddings = require("langchain_core.embeddings", "langchain")

__all__ = ["ImageBindEmbeddings"]


class ImageBindEmbeddings(_embeddings.Embeddings):
    """ImageBind vectors for LangChain vector stores and retrievers.

    Pass ``model=`` (a loaded ``ImageBind``, shared) or ``checkpoint=`` plus
    ``modalities``/``device``/``dtype``/``quantize``/``backend``/``adapters`` (LoRA adapters, as
    ``ImageBind.load(adapters=...)``). ``normalize=False`` returns the reference model's raw output
    instead of unit vectors (see ``ImageBind.embed``). ``text_overflow``: texts past 77 tokens,
    ``"truncate"`` (default), ``"chunk_mean"`` or ``"error"`` (see ``ImageBind.embed``).
    """

    def __init__(
        self, model: "ImageBind | None" = None, *, normalize: bool = True, batch_size: int = 32,
        text_overflow: str = "truncate", **load: Any
    ) -> None:
        """``load``: ``checkpoint``, ``modalities``, ``device``, ``dtype``, ``quantize``, ``backend``,
        ``adapters`` (when no ``model``)."""
        check_text_overflow(text_overflow)
        self.model = resolve_model(model, LoadOptions.of(**load))
        self.normalize = normalize
        self.batch_size = batch_size
        self.text_overflow = text_overflow

    def __repr__(self) -> str:
        return f"ImageBindEmbeddings(model={self.model!r}, normalize={self.normalize})"

    def embed_kind(self, kind: str, items: Sequence[Any]) -> list[list[float]]:
        """Vectors of inputs of one kind (``"vision"``, ``"audio"``, ``"video"``, ``"depth"``, ...)."""
        return embed_rows(self.model, kind, items, normalize=self.normalize, batch_size=self.batch_size,
                          text_overflow=self.text_overflow)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_kind("text", texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_kind("text", [text])[0]

    def embed_image(self, uris: list[Any]) -> list[list[float]]:
        """Images (paths, bytes, file objects, PIL images) -> vectors, in order."""
        return self.embed_kind("vision", uris)

    def embed_audio(self, uris: list[Any]) -> list[list[float]]:
        """Sounds (paths, bytes, ``(waveform, sr)``, ``{"array", "sampling_rate"}``) -> vectors."""
        return self.embed_kind("audio", uris)

    # The base class would run these in LangChain's executor too; to_thread keeps the
    # event loop free while torch works, without depending on that private helper.
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)

    async def aembed_image(self, uris: list[Any]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_image, uris)

    async def aembed_audio(self, uris: list[Any]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_audio, uris)
