"""Query terms -> one vector (embedding arithmetic) -> the nearest items; zero-shot and similarity of items.

Text and uploaded files are embedded by the server's :class:`~imagebind_sdk.server.service.Service`
(the batching engine, the same preprocessing as ``/v1/embed``), so a query file is decoded
exactly as an indexed one was; an id term takes the stored vector of that item.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

import torch

from ..vectors.ops import compose, similarity
from ..server.errors import ApiError, bad_request
from ..vectors.templates import templates_for
from ..vectors.zero_shot import zero_shot_probs
from .catalog import Catalog
from .query import Query, Term

MAX_COMPARE = 64  # items in one similarity matrix (the page asks for up to 16)
MAX_LABELS = 256


def _item_vectors(catalog: Catalog, ids: Sequence[int], where: str) -> torch.Tensor:
    try:
        return catalog.vectors(ids)
    except KeyError as exc:
        raise ApiError(404, f"{where}: {exc.args[0]}") from None


async def _term_vector(service: Any, catalog: Catalog, term: Term) -> torch.Tensor:
    if term.kind == "id":
        return _item_vectors(catalog, [term.value], term.where)[0]
    embedded = await service.embed({term.kind: [term.value]}, {term.kind: term.where})
    vector = embedded.vectors[term.kind][0].float().cpu()
    if catalog.dim is not None and vector.shape[0] != catalog.dim:
        raise ApiError(409, f"{term.where}: the model gives {vector.shape[0]}-d vectors but the index holds "
                            f"{catalog.dim}-d ones; serve it with the checkpoint that built it "
                            f"({catalog.checkpoint.get('source', 'unknown')})")
    return vector


async def query_vector(service: Any, catalog: Catalog, query: Query) -> torch.Tensor:
    """The unit vector of the weighted sum of the terms' unit vectors (``ops.compose``)."""
    vectors = await asyncio.gather(*(_term_vector(service, catalog, term) for term in query.terms))
    try:
        return compose(*vectors, weights=[term.weight for term in query.terms])
    except ValueError as exc:
        raise bad_request(f"query: {exc}") from None


async def search(service: Any, catalog: Catalog, query: Query) -> list[dict[str, Any]]:
    return catalog.search(await query_vector(service, catalog, query), query.top_k, query.kinds)


def check_ids(value: Any, where: str, most: int) -> list[int]:
    if not isinstance(value, list) or not value or len(value) > most:
        raise bad_request(f"{where}: expected an array of 1 to {most} item ids, got {value!r}")
    for i, item_id in enumerate(value):
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            raise bad_request(f"{where}[{i}]: expected an item id (an integer), got {item_id!r}")
    return value


def item_similarity(catalog: Catalog, ids: list[int]) -> list[list[float]]:
    """Cosine similarity between every pair of these items."""
    vectors = _item_vectors(catalog, ids, "ids")
    return similarity(vectors, vectors).tolist()


async def item_zero_shot(service: Any, catalog: Catalog, item_id: int, labels: list[str]) -> list[float]:
    """Probabilities over ``labels`` for one indexed item (softmax(text logit scale x cosine), as /v1/zero-shot)."""
    if not labels or len(labels) > MAX_LABELS:
        raise bad_request(f"labels: expected 1 to {MAX_LABELS} labels, got {len(labels)}")
    item = _item_vectors(catalog, [item_id], "id")
    kind = catalog.item(item_id).kind
    label_embeddings = await service.label_embeddings(labels, templates_for(kind))
    return zero_shot_probs(label_embeddings, item, service.logit_scale_text)[0].tolist()
