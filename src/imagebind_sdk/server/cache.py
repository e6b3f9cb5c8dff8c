"""The content cache of ``serve --cache-mb N``: identical items get the vectors computed before.

A key is the SHA-256 of the item's content (the text's UTF-8 bytes, or the media bytes)
together with its input kind, the preprocessing options (the server's defaults, named by
``PREPROCESS``) and the normalize flag, so an entry is only reused for exactly the answer it
was computed for. The value is the finished vector row as it left the pipeline (and, for
text, its token count), so a cached answer equals the fresh one bit for bit. Entries are
evicted least recently used first; the bytes held (vectors plus a fixed overhead per entry)
never exceed the bound. Only good vectors are cached: an item that failed is retried.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, NamedTuple

import torch

from .metrics import Metrics

# The server preprocesses every item with each kind's defaults; a change of those defaults
# must change this string (it is part of every key).
PREPROCESS = "defaults-v1"
# Bytes counted per entry besides its vector: the key, the dict slot, the tensor header.
ENTRY_OVERHEAD = 256


class Cached(NamedTuple):
    vector: torch.Tensor  # (D,) float32, as the pipeline finished it
    tokens: int  # text tokens of the item (0 for media)


def content_key(kind: str, item: Any, normalize: bool, context: str = "") -> bytes:
    """The SHA-256 of (kind, preprocess options, normalize, ``context``, content); ``context``
    names what else decides the vector (the LoRA adapter, a text's ``text_overflow``)."""
    data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
    digest = hashlib.sha256(f"{kind}\0{PREPROCESS}\0{int(normalize)}\0{context}\0".encode())
    digest.update(data)
    return digest.digest()


class ContentCache:
    """An LRU map key -> :class:`Cached`, bounded by ``max_bytes``; hits and misses counted by kind."""

    def __init__(self, max_bytes: int, metrics: Metrics) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[bytes, Cached] = OrderedDict()
        self._metrics = metrics

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def size_of(entry: Cached) -> int:
        return entry.vector.numel() * entry.vector.element_size() + ENTRY_OVERHEAD

    def get(self, kind: str, key: bytes) -> Cached | None:
        entry = self._entries.get(key)
        (self._metrics.cache_hits if entry is not None else self._metrics.cache_misses).labels(kind).inc()
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes, vector: torch.Tensor, tokens: int = 0) -> None:
        """Store a copy of ``vector`` (its own storage: a row view would pin the whole batch)."""
        entry = Cached(vector.detach().to("cpu", copy=True).contiguous(), tokens)
        size = self.size_of(entry)
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= self.size_of(old)
        while self._entries and self.bytes + size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= self.size_of(evicted)
        self._entries[key] = entry
        self.bytes += size
        self._metrics.cache_bytes.set(self.bytes)
        self._metrics.cache_entries.set(len(self._entries))
