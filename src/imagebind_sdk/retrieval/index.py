"""A small in-memory cosine-similarity index with ids, metadata, and save/load.

Rows are stored normalised (float32, CPU). Exact brute-force search, chunked over
the corpus; fine for up to a few million rows. Saved as a directory holding
``embeddings.safetensors`` and ``index.json`` (no pickle).

>>> index = EmbeddingIndex()
>>> index.add(torch.eye(3), ids=["a", "b", "c"], metadata=[{"n": 1}, {"n": 2}, {"n": 3}])
['a', 'b', 'c']
>>> index.search(torch.tensor([0.0, 1.0, 0.0]), top_k=1)[0][0]["id"]
'b'
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
from safetensors.torch import load_file, save_file

from .compact import (RESCORE_MULTIPLIER, CompactRows, compact_hits, compact_info, compact_of,
                      compact_spec)
from .index_faiss import HNSW_FILE, SearchBackend
from .index_files import EMBEDDINGS_FILE, FORMAT_VERSION, INDEX_FILE, read_info as _read_info, sha256 as _sha256
from .index_files import verify_checksums as _verify_checksums
from ..kinds import INPUT_KINDS
from ..vectors.space import Space, SpaceLike, as_space, check_space, space_of
from ..vectors.ops import ArrayLike, all_finite, as_matrix, as_query, check_top_k, normalize_rows, top_k_hits

__all__ = ["EmbeddingIndex", "FORMAT_VERSION"]

logger = logging.getLogger(__name__)

_TENSOR_KEY = "embeddings"
# Metadata key holding a row's input kind (add(Embeddings) writes it; search(kinds=) reads
# it). Indexes built by ``imagebind-sdk index build`` hold the kind under "modality".
KIND_KEYS = ("kind", "modality")


def _row_kind(metadata: dict[str, Any]) -> Any:
    return next((metadata[k] for k in KIND_KEYS if k in metadata), None)


def _embeddings_rows(
    embeddings: Mapping, ids: Sequence[str] | None, metadata: Sequence[dict[str, Any] | None] | None
) -> tuple[torch.Tensor, list[str], list[dict[str, Any]]]:
    """An ``Embeddings`` as rows: every kind's rows in order, its sources as ids, the kind in metadata."""
    kinds = [kind for kind in embeddings for _ in range(len(embeddings[kind]))]
    rows = torch.cat([as_matrix(embeddings[kind], f"embeddings[{kind!r}]") for kind in embeddings])
    if ids is None:
        ids = [source for kind in embeddings for source in embeddings.sources[kind]]
        if len(set(ids)) != len(ids):
            raise ValueError("the Embeddings' sources repeat (e.g. several in-memory tensors); pass unique ids=")
    if metadata is not None and len(list(metadata)) != len(kinds):
        raise ValueError(f"got {len(list(metadata))} metadata entries for {len(kinds)} embeddings")
    extra = list(metadata) if metadata is not None else [None] * len(kinds)
    return rows, list(ids), [{"kind": kind, **(entry or {})} for kind, entry in zip(kinds, extra)]


def _check_metadata(metadata: Sequence[dict[str, Any] | None] | None, n: int) -> list[dict]:
    """Validated JSON-round-tripped copies of ``metadata`` (``{}`` where None)."""
    if metadata is None:
        return [{} for _ in range(n)]
    metadata = list(metadata)
    if len(metadata) != n:
        raise ValueError(f"got {len(metadata)} metadata entries for {n} embeddings")
    out = []
    for i, entry in enumerate(metadata):
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise TypeError(f"metadata[{i}] must be a dict, got {type(entry).__name__}")
        try:
            out.append(json.loads(json.dumps(entry, allow_nan=False)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata[{i}] is not JSON-serialisable: {exc}") from None
    return out


class EmbeddingIndex:
    """In-memory embedding index: add rows with ids and metadata, search by cosine.

    ``dim`` fixes the embedding size up front; otherwise the first :meth:`add` sets it.
    ``backend``: "auto" (FAISS from 50k rows when installed), "torch", "faiss" (exact)
    or "hnsw" (approximate; ``hnsw_m``/``ef_search``/``ef_construction``), see
    :mod:`imagebind_sdk.retrieval.index_faiss`.
    ``space``: the model space of the rows (:mod:`imagebind_sdk.vectors.space`); else the first
    rows added with a space set it. Rows or queries of another space are then refused.

    >>> index = EmbeddingIndex(dim=1024)
    >>> index.add(out.vision, ids=out.sources["vision"])  # doctest: +SKIP
    >>> index.search(out.text, top_k=3)  # doctest: +SKIP
    >>> index.save("my_index"); EmbeddingIndex.load("my_index")  # doctest: +SKIP
    """

    def __init__(self, dim: int | None = None, backend: str = "auto", *, space: SpaceLike = None,
                 embedding_dtype: str = "float32", ranges: Any = None, rescore_multiplier: int = RESCORE_MULTIPLIER,
                 **backend_options: int) -> None:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"dim must be a positive int or None, got {dim!r}")
        self._dim = dim
        self._compact = compact_spec(embedding_dtype, ranges, rescore_multiplier, backend)
        self._check_compact()
        self._chunks: list[torch.Tensor] = []
        self._ids: list[str] = []
        self._id_set: set[str] = set()
        self._metadata: list[dict[str, Any]] = []
        self._backend = SearchBackend(backend, **backend_options)
        self._space = as_space(space)

    @property
    def space(self) -> Space | None:
        """The model space of the rows, None while unknown (nothing is checked then)."""
        return self._space

    @property
    def backend(self) -> str:
        """The search backend as requested ("auto", "torch", "faiss" or "hnsw")."""
        return self._backend.name

    @property
    def dim(self) -> int | None:
        """The embedding dimension, or None while the index is empty and unsized."""
        return self._dim

    @property
    def ids(self) -> list[str]:
        """Row ids, in insertion order (a copy)."""
        return list(self._ids)

    @property
    def metadata(self) -> list[dict[str, Any]]:
        """Row metadata dicts, in insertion order (deep copies)."""
        return copy.deepcopy(self._metadata)

    @property
    def embedding_dtype(self) -> str:
        """How rows are held: "float32", or a compact encoding (see :mod:`imagebind_sdk.retrieval.compact`)."""
        return self._compact[0] if isinstance(self._compact, tuple) else getattr(self._compact, "encoding", "float32")

    def _check_compact(self) -> None:
        """Build the compact rows once the dimension is known (a dtype without one waits for add)."""
        if isinstance(self._compact, tuple) and self._dim is not None:
            self._compact = CompactRows(self._compact[0], self._dim, *self._compact[1:])

    @property
    def embeddings(self) -> torch.Tensor:
        """All rows as one (N, D) float32 tensor of unit rows (a compact index: dequantised rows)."""
        if isinstance(self._compact, CompactRows):
            return self._compact.rows()
        if len(self._chunks) != 1:
            dim = self._dim or 0
            self._chunks = [torch.cat(self._chunks) if self._chunks else torch.empty(0, dim)]
        return self._chunks[0]

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id: object) -> bool:
        return id in self._id_set

    def __repr__(self) -> str:
        return f"EmbeddingIndex(n={len(self)}, dim={self._dim})"

    def _new_ids(self, ids: Sequence[str] | None, n: int) -> list[str]:
        if ids is None:
            ids = [str(len(self._ids) + i) for i in range(n)]
        ids = list(ids)
        if len(ids) != n:
            raise ValueError(f"got {len(ids)} ids for {n} embeddings")
        bad = [i for i in ids if not isinstance(i, str)]
        if bad:
            raise TypeError(f"ids must be strings, got {bad[0]!r} (use str(...))")
        seen: set[str] = set()
        for i in ids:
            if i in self._id_set or i in seen:
                raise ValueError(f"duplicate id {i!r}; ids must be unique within the index")
            seen.add(i)
        return ids

    def add(
        self,
        embeddings: ArrayLike,
        ids: Sequence[str] | None = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        *,
        space: SpaceLike = None,
        allow_other_space: bool = False,
    ) -> list[str]:
        """Add (N, D) rows (or one (D,) row), or an ``Embeddings`` (``model.embed(...)``'s
        result: the rows of every kind, its sources as ids, ``{"kind": kind}`` merged into
        each row's metadata); returns their ids.

        ``ids`` default to running row numbers as strings ("0", "1", ...). Duplicate
        ids, a wrong dimension or non-JSON metadata raise ValueError; nothing is added
        on error. Rows of another space (``space``, else the ``Embeddings``' own) raise
        ``SpaceMismatchError`` unless ``allow_other_space=True``.

        >>> index.add(np.random.rand(2, 1024), ids=["x", "y"], metadata=[{"k": 1}, None])  # doctest: +SKIP
        ['x', 'y']
        """
        space = space_of(embeddings, space)
        check_space(self._space, space, what="adding to the index", allow_other_space=allow_other_space)
        if isinstance(embeddings, Mapping) and hasattr(embeddings, "sources"):  # an Embeddings
            embeddings, ids, metadata = _embeddings_rows(embeddings, ids, metadata)
        rows = as_matrix(embeddings, "embeddings").cpu()
        if self._dim is not None and rows.shape[1] != self._dim:
            raise ValueError(
                f"embedding dimensions differ: index has dim {self._dim}, "
                f"embeddings have shape {tuple(rows.shape)}"
            )
        new_ids = self._new_ids(ids, rows.shape[0])
        new_meta = _check_metadata(metadata, rows.shape[0])
        self._dim = rows.shape[1]
        self._check_compact()
        if isinstance(self._compact, CompactRows):
            self._compact.add(normalize_rows(rows))
        else:
            self._chunks.append(normalize_rows(rows).contiguous())
            self._backend.added(self._chunks[-1])
        self._ids.extend(new_ids)
        self._id_set.update(new_ids)
        self._metadata.extend(new_meta)
        if self._space is None and len(self) == rows.shape[0]:  # the first rows name the space
            self._space = space
        return new_ids

    def search(
        self, query: ArrayLike, top_k: int = 5, *, kinds: Iterable[str] | None = None, space: SpaceLike = None,
        allow_other_space: bool = False,
    ) -> list[list[dict[str, Any]]]:
        """Per query, the ``top_k`` best rows as dicts ``corpus_id``, ``id``, ``score``, ``metadata``.

        Sorted by score descending, ties by lower row first (as :func:`imagebind_sdk.vectors.ops.search`).
        ``kinds`` (e.g. ``["vision"]``) searches only rows of those input kinds (metadata
        ``"kind"``, or ``"modality"`` in indexes built by the CLI); exact search. A query of
        another space (``space``, or an ``Embeddings`` query's own) raises ``SpaceMismatchError``
        unless ``allow_other_space=True``.

        >>> index.search(out.text, top_k=2)[0]  # doctest: +SKIP
        [{'corpus_id': 4, 'id': 'dog.jpg', 'score': 0.33, 'metadata': {}}, ...]
        """
        check_space(self._space, space_of(query, space), what="searching the index", allow_other_space=allow_other_space)
        if isinstance(query, Mapping) and hasattr(query, "sources"):  # an Embeddings: all its rows
            query = torch.cat([as_matrix(query[kind], f"query[{kind!r}]") for kind in query])
        if kinds is not None:
            return self._search_kinds(query, top_k, kinds)
        if len(self) == 0:
            check_top_k(top_k)
            return [[] for _ in range(as_query(query).shape[0])]
        hits = (compact_hits(self._compact, query, top_k) if isinstance(self._compact, CompactRows)
                else self._backend.top_k_hits(query, self.embeddings, top_k))  # None: the torch path
        if hits is None:
            hits = top_k_hits(query, self.embeddings, top_k, corpus_name="index")
        for hit in (h for row in hits for h in row):  # key order: corpus_id, id, score, metadata
            r, score = hit["corpus_id"], hit.pop("score")
            hit.update(id=self._ids[r], score=score, metadata=copy.deepcopy(self._metadata[r]))
        return hits

    def _search_kinds(self, query: ArrayLike, top_k: int, kinds: Iterable[str]) -> list[list[dict[str, Any]]]:
        """Exact search over the rows whose kind is in ``kinds``; corpus ids are index rows."""
        wanted = [kinds] if isinstance(kinds, str) else list(kinds)
        present = {_row_kind(m) for m in self._metadata}
        unknown = sorted(k for k in wanted if k not in present and k not in INPUT_KINDS)
        if not wanted or unknown:
            raise ValueError(
                f"kinds must name input kinds ({', '.join(INPUT_KINDS)}), got {unknown or wanted}; "
                f"this index holds {sorted(map(str, present - {None}))}"
            )
        rows = [r for r, m in enumerate(self._metadata) if _row_kind(m) in wanted]
        if not rows:
            check_top_k(top_k)
            return [[] for _ in range(as_query(query).shape[0])]
        hits = top_k_hits(query, self.embeddings[rows], top_k, corpus_name="index")
        for hit in (h for row in hits for h in row):
            r, score = rows[hit["corpus_id"]], hit.pop("score")
            hit.update(corpus_id=r, id=self._ids[r], score=score, metadata=copy.deepcopy(self._metadata[r]))
        return hits

    def save(self, directory: str | Path) -> Path:
        """Write ``embeddings.safetensors`` and ``index.json`` into ``directory`` (created if needed).

        >>> index.save("my_index")  # doctest: +SKIP
        PosixPath('my_index')
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        rows = self._compact.packed if isinstance(self._compact, CompactRows) else self.embeddings
        save_file({_TENSOR_KEY: rows.contiguous()}, str(directory / EMBEDDINGS_FILE))
        self._backend.save(directory, self.embeddings)
        written = [EMBEDDINGS_FILE] + ([HNSW_FILE] if self._backend.saves_graph(len(self)) else [])
        info = {
            "format_version": FORMAT_VERSION,
            "dim": self._dim,
            "count": len(self),
            "ids": self._ids,
            "metadata": self._metadata,
            **self._backend.options(),
            **({"space": self._space.to_dict()} if self._space is not None else {}),
            **compact_info(self._compact),
            "checksums": {name: _sha256(directory / name) for name in written},
        }
        (directory / INDEX_FILE).write_text(json.dumps(info), encoding="utf-8")
        logger.info("saved index of %d rows to %s", len(self), directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> EmbeddingIndex:
        """Load an index written by :meth:`save`; ``ValueError`` naming the folder if it is unusable.

        >>> index = EmbeddingIndex.load("my_index")  # doctest: +SKIP
        """
        directory = Path(directory)
        try:
            return cls._load(directory)
        except FileNotFoundError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            message = " ".join(str(exc).split())
            if str(directory) in message:
                raise
            if not isinstance(exc, ValueError):  # the type says what broke: RecursionError, KeyError...
                message = f"{type(exc).__name__}: {message}"
            raise ValueError(f"{directory}: not a usable EmbeddingIndex ({message})") from None

    @classmethod
    def _load(cls, directory: Path) -> EmbeddingIndex:
        from safetensors import SafetensorError

        info = _read_info(directory)
        _verify_checksums(directory, info)
        try:
            tensors = load_file(str(directory / EMBEDDINGS_FILE))
        except SafetensorError as exc:
            raise ValueError(f"{directory / EMBEDDINGS_FILE}: not a readable safetensors file ({exc})") from None
        if _TENSOR_KEY not in tensors:
            raise ValueError(f"{directory / EMBEDDINGS_FILE} has no {_TENSOR_KEY!r} tensor")
        compact = compact_of(info, tensors[_TENSOR_KEY], info["dim"])
        rows = compact.rows() if compact is not None else tensors[_TENSOR_KEY].to(torch.float32)
        ids, metadata, dim = info["ids"], info["metadata"], info["dim"]
        if rows.ndim != 2 or rows.shape[0] != len(ids) or len(metadata) != len(ids):
            raise ValueError(
                f"inconsistent index in {directory}: embeddings shape {tuple(rows.shape)}, "
                f"{len(ids)} ids, {len(metadata)} metadata entries"
            )
        if dim is not None and len(ids) and rows.shape[1] != dim:
            raise ValueError(f"inconsistent index in {directory}: dim {dim} vs shape {tuple(rows.shape)}")
        if not all_finite(rows):
            bad = int((~torch.isfinite(rows)).any(dim=1).nonzero()[0, 0])
            raise ValueError(f"{directory / EMBEDDINGS_FILE}: row {bad} ({ids[bad]!r}) holds NaN or infinite values")
        index = cls(dim=dim, space=info.get("space"))  # indexes saved before spaces: unknown
        index._backend = SearchBackend.load(info, directory, rows.shape[1], len(ids))
        index._ids = index._new_ids(ids, len(ids))  # validates type and uniqueness
        index._id_set = set(index._ids)
        index._metadata = _check_metadata(metadata, len(ids))
        index._chunks = [rows.contiguous()] if len(ids) and compact is None else []
        index._compact = compact if compact is not None else index._compact
        return index

    def to_faiss(self) -> Any:
        """A new FAISS index of the rows (row i = FAISS id i): ``IndexFlatIP``, or ``IndexHNSWFlat`` for "hnsw".

        >>> faiss_index = index.to_faiss(); faiss_index.search(query_matrix, 5)  # doctest: +SKIP
        """
        return self._backend.to_faiss(self.embeddings)
