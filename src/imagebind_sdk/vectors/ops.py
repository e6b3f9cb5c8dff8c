"""Pure tensor helpers applied to embeddings: similarity, composition, top-k search.

Every function accepts torch tensors, numpy arrays, 1-D vectors (one row) or lists
of those, normalises rows itself (cosine similarity), and never needs the model.

>>> import torch
>>> from imagebind_sdk.vectors.ops import similarity, search
>>> similarity(torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
tensor([[1., 0.]])
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any, Protocol, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "ArrayLike",
    "as_matrix",
    "as_query",
    "check_same_dim",
    "check_top_k",
    "compose",
    "cosine_top_k",
    "normalize_rows",
    "search",
    "similarity",
    "top_k_hits",
]

logger = logging.getLogger(__name__)


ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[Any]]

QUERY_CHUNK = 256  # queries scored at once
CORPUS_CHUNK = 65_536  # corpus rows scored at once (bounds the score matrix)


def all_finite(x: torch.Tensor) -> bool:
    """No NaN or inf in ``x``. One pass in the common case: a finite float64 sum means
    none (they propagate); only a non-finite sum needs the exact, slower test."""
    return bool(torch.isfinite(x.sum(dtype=torch.float64))) or bool(torch.isfinite(x).all())


def as_matrix(x: ArrayLike, name: str = "input") -> torch.Tensor:
    """``x`` as a 2-D float32 tensor (on its own device); a 1-D vector becomes one row."""
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise ValueError(f"{name} is an empty list")
        if all(_is_real(v) for v in x):
            t = torch.tensor(x, dtype=torch.float32)
        else:
            t = torch.cat([as_matrix(v, name) for v in x], dim=0)
    elif isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    elif isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor, numpy array or list of those, got {type(x).__name__}"
        )
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 1-D (D,) or 2-D (N, D), got shape {tuple(t.shape)}")
    t = t.to(torch.float32)
    if not all_finite(t):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def as_query(query: ArrayLike, name: str = "query") -> torch.Tensor:
    """``query`` as :func:`as_matrix` does, refusing all-zero rows: a zero vector has no
    direction, so every cosine with it is 0 and its "best matches" would be arbitrary."""
    q = as_matrix(query, name)
    zero = (q == 0).all(dim=1)
    if bool(zero.any()):
        row = int(zero.nonzero()[0, 0])
        where = f"{name}[{row}]" if q.shape[0] > 1 else name
        raise ValueError(f"{where} is an all-zero vector: it has no direction to search by")
    return q


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """Unit-norm rows; all-zero rows stay zero."""
    return F.normalize(x, p=2.0, dim=-1)


def check_same_dim(a: torch.Tensor, b: torch.Tensor, a_name: str, b_name: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"embedding dimensions differ: {a_name} has shape {tuple(a.shape)}, "
            f"{b_name} has shape {tuple(b.shape)}"
        )


def similarity(a: ArrayLike, b: ArrayLike | None = None) -> torch.Tensor:
    """Cosine-similarity matrix of shape ``(len(a), len(b))`` as a float32 CPU tensor.

    Rows are normalised first, so non-unit inputs are fine (a zero row scores 0).
    ``b=None`` compares ``a`` with itself.

    >>> out = model.embed(text=["a dog", "a cat"], vision=["dog.jpg"])  # doctest: +SKIP
    >>> similarity(out.vision, out.text)  # doctest: +SKIP
    tensor([[0.31, 0.12]])
    """
    a_m = as_matrix(a, "a")
    b_m = a_m if b is None else as_matrix(b, "b")
    check_same_dim(a_m, b_m, "a", "b")
    a_n = normalize_rows(a_m)
    b_n = a_n if b is None else normalize_rows(b_m.to(a_m.device))
    return (a_n @ b_n.T).cpu()


def _as_weights(weights: Sequence[float] | torch.Tensor | None, n_terms: int) -> list[float]:
    if weights is None:
        return [1.0] * n_terms
    w = [float(v) for v in (weights.tolist() if isinstance(weights, torch.Tensor) else weights)]
    if len(w) != n_terms:
        raise ValueError(f"got {len(w)} weights for {n_terms} terms")
    if not all(math.isfinite(v) for v in w):
        raise ValueError(f"weights must be finite, got {w}")
    return w


def compose(*terms: ArrayLike, weights: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """Normalised weighted sum of embeddings (embedding arithmetic), as a float32 CPU tensor.

    Each term is normalised first, so weights are relative. Terms may be (D,), (1, D)
    or (N, D); (N, D) terms combine row-wise and the others broadcast. The result is
    (D,) when every term is 1-D, else (N, D), with unit rows.

    >>> query = compose(out.vision[0], out.text[0], weights=[1.0, 0.5])  # doctest: +SKIP
    >>> compose(a, b, weights=[1, 0])  # == a / |a|  # doctest: +SKIP
    """
    if not terms:
        raise ValueError("compose needs at least one term")
    w = _as_weights(weights, len(terms))
    mats = [normalize_rows(as_matrix(t, f"term {i}").cpu()) for i, t in enumerate(terms)]
    for i, m in enumerate(mats[1:], start=1):
        check_same_dim(mats[0], m, "term 0", f"term {i}")
    rows = {m.shape[0] for m in mats} - {1}
    if len(rows) > 1:
        raise ValueError(f"terms have incompatible row counts {sorted(rows)}; use (1, D) or (N, D)")
    total = torch.stack(torch.broadcast_tensors(*(wi * m for wi, m in zip(w, mats)))).sum(0)
    norms = total.norm(dim=-1)
    tol = 1e-6 * max(sum(abs(v) for v in w), 1e-12)
    if bool((norms <= tol).any()):
        raise ValueError("composed embedding has (near) zero norm; the terms cancel out")
    result = total / norms.unsqueeze(-1)
    return result[0] if all(_is_vector(t) for t in terms) else result


def _is_real(v: Any) -> bool:
    """A real number that is not a bool (a list of these is one vector)."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _is_vector(x: Any) -> bool:
    """True for a plain (D,) vector: a 1-D tensor/array or a flat list of numbers."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return x.ndim == 1
    return isinstance(x, (list, tuple)) and all(_is_real(v) for v in x)


def check_top_k(top_k: int, name: str = "top_k") -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise TypeError(f"{name} must be an int, got {type(top_k).__name__}")
    if top_k < 1:
        raise ValueError(f"{name} must be >= 1, got {top_k}")


def _chunk_top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of ``scores`` as (values, column ids): score desc, then id asc."""
    k = min(k, scores.shape[1])
    values, ids = torch.topk(scores, k, dim=1)
    if bool(((scores >= values[:, -1:]).sum(dim=1) > k).any()):
        # Ties straddle the cut, so topk's pick among them is arbitrary: sort exactly.
        values, ids = torch.sort(scores, dim=1, descending=True, stable=True)
        return values[:, :k], ids[:, :k]
    ids = ids.sort(dim=1).values  # ascending ids, then a stable sort by score
    values, order = torch.sort(scores.gather(1, ids), dim=1, descending=True, stable=True)
    return values, ids.gather(1, order)


def cosine_top_k(
    queries: torch.Tensor, corpus: torch.Tensor, k: int, chunk_size: int = CORPUS_CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k cosine scores and corpus row ids per query, ties broken by lower row id.

    Inputs are 2-D float32 with unit rows. Returns two (Q, k) CPU tensors.
    """
    queries = queries.to(corpus.device)
    all_scores, all_ids = [], []
    for q0 in range(0, queries.shape[0], QUERY_CHUNK):
        q = queries[q0 : q0 + QUERY_CHUNK]
        best_s = torch.empty(q.shape[0], 0, device=corpus.device)
        best_i = torch.empty(q.shape[0], 0, dtype=torch.long, device=corpus.device)
        for c0 in range(0, corpus.shape[0], chunk_size):
            chunk_s, chunk_i = _chunk_top_k(q @ corpus[c0 : c0 + chunk_size].T, k)
            # Earlier candidates (lower ids) come first; a stable sort keeps them first on ties.
            cand_s = torch.cat([best_s, chunk_s], dim=1)
            cand_i = torch.cat([best_i, chunk_i + c0], dim=1)
            best_s, order = torch.sort(cand_s, dim=1, descending=True, stable=True)
            best_s, best_i = best_s[:, :k], cand_i.gather(1, order[:, :k])
        all_scores.append(best_s.cpu())
        all_ids.append(best_i.cpu())
    return torch.cat(all_scores), torch.cat(all_ids)


class SupportsSearch(Protocol):
    """Anything with an ``EmbeddingIndex``-like ``search(query, top_k=...)``."""

    def search(self, query: ArrayLike, top_k: int = 5) -> list[list[dict[str, Any]]]: ...


def top_k_hits(
    query: ArrayLike, corpus: torch.Tensor, top_k: int, chunk_size: int = CORPUS_CHUNK, corpus_name: str = "corpus"
) -> list[list[dict[str, Any]]]:
    """The top-k search both :func:`search` and ``EmbeddingIndex.search`` run.

    ``corpus`` is a 2-D float32 tensor of unit rows; per query the best rows as
    ``{"corpus_id", "score"}`` dicts, score descending, ties by lower ``corpus_id``.
    """
    check_top_k(top_k)
    q = as_query(query)
    check_same_dim(q, corpus, "query", corpus_name)
    scores, ids = cosine_top_k(normalize_rows(q), corpus, top_k, chunk_size)
    return [
        [{"corpus_id": int(i), "score": float(s)} for i, s in zip(row_i, row_s)]
        for row_i, row_s in zip(ids.tolist(), scores.tolist())
    ]


def search(
    query: ArrayLike,
    corpus: ArrayLike | SupportsSearch,
    top_k: int = 5,
    chunk_size: int = CORPUS_CHUNK,
) -> list[list[dict[str, Any]]]:
    """Cosine top-k search: per query a list of ``{"corpus_id", "score"}`` dicts, best first.

    Mirrors sentence-transformers' ``util.semantic_search``. Equal scores are ordered
    by lower ``corpus_id`` first. ``top_k`` above the corpus size returns every row.
    The corpus is scored ``chunk_size`` rows at a time to bound memory. If ``corpus``
    is an :class:`~imagebind_sdk.retrieval.index.EmbeddingIndex`, its ``search`` is used and hits
    also carry ``"id"`` and ``"metadata"``.

    >>> hits = search(out.text, out.vision, top_k=3)  # doctest: +SKIP
    >>> hits[0][0]  # doctest: +SKIP
    {'corpus_id': 2, 'score': 0.41}
    """
    check_top_k(top_k)
    if not isinstance(corpus, (torch.Tensor, np.ndarray, list, tuple)) and hasattr(corpus, "search"):
        return corpus.search(query, top_k=top_k)  # an EmbeddingIndex (duck-typed: no import of index.py)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    return top_k_hits(query, normalize_rows(as_matrix(corpus, "corpus")), top_k, chunk_size)
