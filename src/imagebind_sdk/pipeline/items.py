"""Items of one input kind -> vectors with an outcome per item: the loop behind
``ImageBind.embed``, the integrations and ``find_moments``' query.

Texts are tokenised and batched sorted by length (trimmed batches stay short; trimming
is exact). Other items are preprocessed batch by batch (:func:`preprocess_batch`), then
encoded. An item that cannot be read, or whose vector comes out NaN/inf, raises an
:class:`InputError` naming it (``kind[index] (source): why``) with ``on_error="raise"``;
with ``"skip"`` it is left out and listed in :attr:`KindResult.skipped`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import torch

from ..kinds import ENCODER_OF
from ..preprocess import InputError, OnError, Skipped, as_item_list, preprocess_batch
from .batching import chunks, closing_bar
from .encoding import Pipeline, Rows
from .overflow import check_fits, check_text_overflow, text_rows, warn_cut

logger = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")


@dataclass
class KindResult:
    """The vectors of one kind's items in input order, the items left out, and who is who."""

    vectors: torch.Tensor  # (K, D): one row per kept item
    sources: list[str]  # the source of each row
    kept: list[int]  # the input index of each row
    skipped: list[Skipped] = field(default_factory=list)


def text_list(value: Any) -> list[str]:
    """``text=...`` as a list of str; TypeError naming what was given otherwise."""
    if isinstance(value, str):
        return [value]
    # bytes iterate as ints: never text (decode them first).
    if isinstance(value, (bytes, bytearray, memoryview)) or not isinstance(value, Iterable):
        raise TypeError(f"text must be a str or a list of str, got {type(value).__name__}")
    texts = list(value)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"text must be a str or a list of str, got text[{bad}] of type {type(texts[bad]).__name__}")
    return texts


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def embed_kind(
    pipeline: Pipeline,
    kind: str,
    value: Any,
    *,
    batch_size: int = 32,
    on_error: OnError = "raise",
    progress: bool | None = None,
    options: Mapping[str, Any] | None = None,
    normalize: bool = True,
    text_overflow: str = "truncate",
) -> KindResult:
    """Items of ``kind`` (one or a list, as ``embed(<kind>=value)`` takes them) -> :class:`KindResult`.
    ``text_overflow``: texts past the 77-token context, see :mod:`.overflow`."""
    check_on_error(on_error)
    check_text_overflow(text_overflow)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pipeline.loaded(ENCODER_OF[kind])  # fail fast on an unloaded encoder, before any item is read
    if kind == "text":
        return _embed_text(pipeline, text_list(value), batch_size, progress, normalize, on_error, text_overflow)
    return _embed_items(pipeline, kind, value, batch_size, on_error, progress, dict(options or {}), normalize)


def keep_rows(
    kind: str, rows: Rows, indices: list[int], sources: list[str], on_error: OnError, skipped: list[Skipped]
) -> list[int]:
    """Positions of the rows that hold a vector; a failed row raises naming its item
    (``kind[index] (source): why``), or is logged and listed in ``skipped``."""
    bad = sorted(rows.failed)
    if bad and on_error == "raise":
        raise InputError(f"{kind}[{indices[bad[0]]}] ({sources[bad[0]]}): {rows.failed[bad[0]]}")
    for j in bad:
        logger.warning("skipping %s[%d] (%s): %s", kind, indices[j], sources[j], rows.failed[j])
        skipped.append(Skipped(indices[j], sources[j], rows.failed[j]))
    return rows.good()


def _embed_text(
    pipeline: Pipeline, texts: list[str], batch_size: int, progress: bool | None, normalize: bool, on_error: OnError,
    overflow: str,
) -> KindResult:
    if overflow == "error":  # refuse before any work
        check_fits(pipeline.tokenizer, texts)
    # Sorting by length keeps trimmed batches short (text trimming is exact).
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.zeros(len(texts), pipeline.embedding_dim)
    keep = torch.ones(len(texts), dtype=torch.bool)
    skipped: list[Skipped] = []
    cut = 0
    with closing_bar(len(texts), "embedding text", progress) as bar:
        for _, chunk in chunks(order, batch_size):
            chunk_texts = [texts[i] for i in chunk]
            prepared = text_rows(pipeline.tokenizer, chunk_texts, overflow, chunk)
            cut += prepared.cut
            rows = pipeline.encode_rows("text", prepared.ids, batch_size=batch_size, normalize=normalize,
                                        isolate=on_error == "skip")
            rows = prepared.merge(rows, len(chunk), normalize)
            good = set(keep_rows("text", rows, list(chunk), chunk_texts, on_error, skipped))
            keep[[i for j, i in enumerate(chunk) if j not in good]] = False
            out[list(chunk)] = rows.vectors
            bar.update(len(chunk))
    warn_cut(cut, len(texts))
    skipped.sort(key=lambda s: s.index)
    kept = [i for i, k in enumerate(keep.tolist()) if k]
    return KindResult(out[keep], [texts[i] for i in kept], kept, skipped)


def _embed_items(
    pipeline: Pipeline, kind: str, value: Any, batch_size: int, on_error: OnError, progress: bool | None,
    options: Mapping[str, Any], normalize: bool,
) -> KindResult:
    items = as_item_list(kind, value)
    parts, sources, kept, skipped = [], [], [], []
    with closing_bar(len(items), f"embedding {kind}", progress) as bar:
        for start, chunk in chunks(items, batch_size):
            batch = preprocess_batch(kind, chunk, on_error=on_error, start=start, **options)
            lost = {s.index for s in batch.skipped}  # indices in the whole list, as reported
            skipped += batch.skipped
            if batch.tensor is not None:
                rows = pipeline.encode_rows(ENCODER_OF[kind], batch.tensor, batch_size=batch_size,
                                            normalize=normalize, isolate=on_error == "skip")
                indices = [i for i in range(start, start + len(chunk)) if i not in lost]
                good = keep_rows(kind, rows, indices, batch.sources, on_error, skipped)
                parts.append(rows.vectors[good])
                sources += [batch.sources[j] for j in good]
                kept += [indices[j] for j in good]
            bar.update(len(chunk))
    skipped.sort(key=lambda s: s.index)
    out = torch.cat(parts) if parts else torch.empty(0, pipeline.embedding_dim)
    return KindResult(out, sources, kept, skipped)
