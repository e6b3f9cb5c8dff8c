"""Pure tensor helpers applied to embeddings: similarity, zero-shot, composition, search.

Every function accepts torch tensors, numpy arrays, 1-D vectors (one row) or lists
of those, normalises rows itself (cosine similarity), and never needs the model.

>>> import torch
>>> from imagebind_sdk.ops import similarity, search
>>> similarity(torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
tensor([[1., 0.]])
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from .inputs import all_finite
from .templates import templates_for

if TYPE_CHECKING:
    from .index import EmbeddingIndex

__all__ = [
    "ArrayLike",
    "similarity",
    "zero_shot_probs",
    "build_label_embeddings",
    "ZeroShotResult",
    "compose",
    "search",
]

logger = logging.getLogger(__name__)

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[Any]]

_QUERY_CHUNK = 256
_CORPUS_CHUNK = 65_536


def _as_matrix(x: ArrayLike, name: str = "input") -> torch.Tensor:
    """``x`` as a 2-D float32 tensor (on its own device); a 1-D vector becomes one row."""
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise ValueError(f"{name} is an empty list")
        if all(_is_number(v) for v in x):
            t = torch.tensor(x, dtype=torch.float32)
        else:
            t = torch.cat([_as_matrix(v, name) for v in x], dim=0)
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


def _normalize(x: torch.Tensor) -> torch.Tensor:
    """Unit-norm rows; all-zero rows stay zero."""
    return F.normalize(x, p=2.0, dim=-1)


def _check_same_dim(a: torch.Tensor, b: torch.Tensor, a_name: str, b_name: str) -> None:
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
    a_m = _as_matrix(a, "a")
    b_m = a_m if b is None else _as_matrix(b, "b")
    _check_same_dim(a_m, b_m, "a", "b")
    a_n = _normalize(a_m)
    b_n = a_n if b is None else _normalize(b_m.to(a_m.device))
    return (a_n @ b_n.T).cpu()


def zero_shot_probs(
    label_embeddings: ArrayLike,
    input_embeddings: ArrayLike,
    logit_scale: float | torch.Tensor,
) -> torch.Tensor:
    """Class probabilities ``softmax(logit_scale * cosine)`` over labels, shape (N_inputs, N_labels).

    >>> probs = zero_shot_probs(label_emb, out.vision, logit_scale=100.0)  # doctest: +SKIP
    >>> probs.sum(dim=1)  # doctest: +SKIP
    tensor([1.0000])
    """
    scale = float(logit_scale.item() if isinstance(logit_scale, torch.Tensor) else logit_scale)
    if not math.isfinite(scale):
        raise ValueError(f"logit_scale must be finite, got {scale}")
    logits = scale * similarity(input_embeddings, label_embeddings)
    return logits.softmax(dim=-1)


def build_label_embeddings(
    labels: str | Sequence[str],
    templates: str | Iterable[str],
    encode_text: Callable[[list[str]], torch.Tensor],
) -> torch.Tensor:
    """One unit embedding per label: mean of its normalised template embeddings, renormalised.

    Every template is filled with ``template.format(label)``; all strings are encoded
    in one ``encode_text(list_of_str) -> (n, D)`` call, in label-major order.

    >>> emb = build_label_embeddings(["dog", "cat"], ["a photo of a {}."],
    ...                              lambda s: model.embed(text=s).text)  # doctest: +SKIP
    >>> emb.shape  # doctest: +SKIP
    torch.Size([2, 1024])
    """
    labels = [labels] if isinstance(labels, str) else list(labels)
    if not labels:
        raise ValueError("labels must not be empty")
    bad = [lab for lab in labels if not isinstance(lab, str)]
    if bad:
        raise TypeError(f"labels must be strings, got {bad[0]!r}")
    if templates is None:
        raise ValueError("templates is required; see imagebind_sdk.templates.templates_for")
    temps = templates_for("", templates)
    texts = [t.format(label) for label in labels for t in temps]
    encoded = _as_matrix(encode_text(texts), "encode_text output")
    if encoded.shape[0] != len(texts):
        raise ValueError(
            f"encode_text returned {encoded.shape[0]} rows for {len(texts)} strings"
        )
    per_label = _normalize(encoded).reshape(len(labels), len(temps), -1)
    return _normalize(per_label.mean(dim=1)).cpu()


class ZeroShotResult:
    """Zero-shot classification result for one or many inputs.

    ``probs`` is (N_inputs, N_labels); ``sources`` names each input row.
    ``top_k`` (None = all labels) is how many labels printing and ``to_list``
    show by default; ``probs`` always holds every label.

    >>> res = ZeroShotResult(["dog", "cat"], torch.tensor([[0.9, 0.1]]), ["dog.jpg"])
    >>> res.top(1)
    [[('dog', 0.8999999761581543)]]
    >>> res.predictions
    ['dog']
    """

    def __init__(
        self,
        labels: Sequence[str],
        probs: torch.Tensor,
        sources: Sequence[str] | None = None,
        top_k: int | None = None,
    ) -> None:
        if top_k is not None:
            _check_top_k(top_k)
        self.top_k: int | None = top_k
        probs = _as_matrix(probs, "probs").cpu()
        self.labels: list[str] = list(labels)
        if probs.shape[1] != len(self.labels):
            raise ValueError(
                f"probs has {probs.shape[1]} columns but there are {len(self.labels)} labels"
            )
        self.probs: torch.Tensor = probs
        n = probs.shape[0]
        self.sources: list[str] = [str(i) for i in range(n)] if sources is None else list(sources)
        if len(self.sources) != n:
            raise ValueError(f"got {len(self.sources)} sources for {n} rows of probs")

    def __len__(self) -> int:
        return self.probs.shape[0]

    def __getitem__(self, i: int) -> ZeroShotResult:
        """The result of input ``i`` alone."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"input index {i} out of range for {n} inputs")
        i %= n
        return ZeroShotResult(self.labels, self.probs[i : i + 1], [self.sources[i]], top_k=self.top_k)

    def top(self, k: int = 1) -> list[list[tuple[str, float]]]:
        """Per input, the ``k`` most probable ``(label, prob)`` pairs, highest first.

        Ties keep label order. ``k`` larger than the number of labels returns all.
        """
        _check_top_k(k, "k")
        k = min(k, len(self.labels))
        values, order = torch.sort(self.probs, dim=1, descending=True, stable=True)
        return [
            [(self.labels[j], float(p)) for j, p in zip(idx[:k].tolist(), vals[:k].tolist())]
            for idx, vals in zip(order, values)
        ]

    @property
    def predictions(self) -> list[str]:
        """The top-1 label of each input."""
        return [row[0][0] for row in self.top(1)]

    def to_list(self, k: int | None = None) -> list[dict[str, Any]]:
        """JSON-friendly list: per input its source, top-1 label/prob and the top ``k``.

        ``k=None`` uses the result's ``top_k`` (all labels when that is None too).
        """
        k = k if k is not None else self.top_k
        rows = self.top(len(self.labels) if k is None else k)
        return [
            {
                "source": src,
                "label": row[0][0],
                "prob": row[0][1],
                "top": [{"label": lab, "prob": p} for lab, p in row],
            }
            for src, row in zip(self.sources, rows)
        ]

    def to_dict(self, k: int | None = None) -> dict[str, Any]:
        """JSON-friendly dict ``{"labels": [...], "results": to_list(k)}``."""
        return {"labels": list(self.labels), "results": self.to_list(k)}

    def __repr__(self) -> str:
        head = f"ZeroShotResult({len(self)} input(s), {len(self.labels)} label(s))"
        shown = min(len(self), 20)
        width = max((len(lab) for lab in self.labels), default=0)
        lines = [head]
        for src, row in zip(self.sources[:shown], self.top(self.top_k or 5)[:shown]):
            lines.append(f"  {src}")
            lines.extend(f"    {lab:<{width}}  {p:.4f}" for lab, p in row)
        if len(self) > shown:
            lines.append(f"  ... ({len(self) - shown} more)")
        return "\n".join(lines)

    __str__ = __repr__


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
    mats = [_normalize(_as_matrix(t, f"term {i}").cpu()) for i, t in enumerate(terms)]
    for i, m in enumerate(mats[1:], start=1):
        _check_same_dim(mats[0], m, "term 0", f"term {i}")
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


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _is_vector(x: Any) -> bool:
    """True for a plain (D,) vector: a 1-D tensor/array or a flat list of numbers."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return x.ndim == 1
    return isinstance(x, (list, tuple)) and all(_is_number(v) for v in x)


def _check_top_k(top_k: int, name: str = "top_k") -> None:
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


def _top_k(
    queries: torch.Tensor, corpus: torch.Tensor, top_k: int, chunk_size: int = _CORPUS_CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k cosine scores and corpus row ids per query, ties broken by lower row id.

    Inputs are 2-D float32 with unit rows. Returns two (Q, k) CPU tensors.
    """
    queries = queries.to(corpus.device)
    all_scores, all_ids = [], []
    for q0 in range(0, queries.shape[0], _QUERY_CHUNK):
        q = queries[q0 : q0 + _QUERY_CHUNK]
        best_s = torch.empty(q.shape[0], 0, device=corpus.device)
        best_i = torch.empty(q.shape[0], 0, dtype=torch.long, device=corpus.device)
        for c0 in range(0, corpus.shape[0], chunk_size):
            chunk_s, chunk_i = _chunk_top_k(q @ corpus[c0 : c0 + chunk_size].T, top_k)
            # Earlier candidates (lower ids) come first; a stable sort keeps them first on ties.
            cand_s = torch.cat([best_s, chunk_s], dim=1)
            cand_i = torch.cat([best_i, chunk_i + c0], dim=1)
            best_s, order = torch.sort(cand_s, dim=1, descending=True, stable=True)
            best_s, best_i = best_s[:, :top_k], cand_i.gather(1, order[:, :top_k])
        all_scores.append(best_s.cpu())
        all_ids.append(best_i.cpu())
    return torch.cat(all_scores), torch.cat(all_ids)


def search(
    query: ArrayLike,
    corpus: ArrayLike | EmbeddingIndex,
    top_k: int = 5,
    chunk_size: int = _CORPUS_CHUNK,
) -> list[list[dict[str, Any]]]:
    """Cosine top-k search: per query a list of ``{"corpus_id", "score"}`` dicts, best first.

    Mirrors sentence-transformers' ``util.semantic_search``. Equal scores are ordered
    by lower ``corpus_id`` first. ``top_k`` above the corpus size returns every row.
    The corpus is scored ``chunk_size`` rows at a time to bound memory. If ``corpus``
    is an :class:`~imagebind_sdk.index.EmbeddingIndex`, its ``search`` is used and hits
    also carry ``"id"`` and ``"metadata"``.

    >>> hits = search(out.text, out.vision, top_k=3)  # doctest: +SKIP
    >>> hits[0][0]  # doctest: +SKIP
    {'corpus_id': 2, 'score': 0.41}
    """
    from .index import EmbeddingIndex

    _check_top_k(top_k)
    if isinstance(corpus, EmbeddingIndex):
        return corpus.search(query, top_k=top_k)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    q = _as_matrix(query, "query")
    c = _as_matrix(corpus, "corpus")
    _check_same_dim(q, c, "query", "corpus")
    scores, ids = _top_k(_normalize(q), _normalize(c), top_k, chunk_size)
    return _hits(scores, ids)


def _hits(scores: torch.Tensor, ids: torch.Tensor) -> list[list[dict[str, Any]]]:
    return [
        [{"corpus_id": int(i), "score": float(s)} for i, s in zip(row_i, row_s)]
        for row_i, row_s in zip(ids.tolist(), scores.tolist())
    ]
