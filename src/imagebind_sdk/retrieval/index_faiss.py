"""Search backends of :class:`~imagebind_sdk.retrieval.index.EmbeddingIndex`: brute force or FAISS.

``"torch"`` is the exact chunked matrix product of :mod:`imagebind_sdk.vectors.ops`.
``"faiss"`` is FAISS's ``IndexFlatIP``: the same exact top-k (inner product of unit
rows = cosine), faster on large corpora. ``"hnsw"`` is FAISS's approximate
``IndexHNSWFlat`` for millions of rows (recall, not exactness; see benchmarks/index.py).
``"auto"`` (the default) would use ``"faiss"`` once the index holds ``AUTO_MIN_ROWS`` rows
and faiss is installed, else ``"torch"``; ``AUTO_MIN_ROWS`` is None (never) because
FAISS's flat search was measured slower than the torch path at 10k-1M rows with
faiss-cpu 1.15 on the 2-core VM (benchmarks/RESULTS.md, section 5). FAISS is imported
only when used (``pip install 'imagebind-sdk[faiss]'``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..vectors.ops import ArrayLike, as_query, check_same_dim, check_top_k, normalize_rows

__all__ = ["BACKENDS", "AUTO_MIN_ROWS", "SearchBackend", "faiss_available", "import_faiss"]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "faiss", "hnsw")
# "auto" switches to FAISS flat from this many rows; None: never (no measured crossover yet;
# torch also keeps exact tie order, lower row first). Set an int where FAISS measures faster.
AUTO_MIN_ROWS: int | None = None
HNSW_M = 32  # graph degree: FAISS's usual choice for high-recall 1024-d data
# efSearch: random unit vectors (no clusters, the hard case) need a wide search: at 100k
# rows recall@10 was 0.756 at 1024, 0.926 at 2048, 0.990 at 4096 (benchmarks/RESULTS.md,
# section 5). Clustered real embeddings reach that recall with far less: lower it per index.
HNSW_EF_SEARCH = 4096
HNSW_EF_CONSTRUCTION = 200
HNSW_FILE = "hnsw.faiss"
INSTALL_HINT = "pip install 'imagebind-sdk[faiss]' (faiss-cpu)"


def import_faiss() -> Any:
    """The ``faiss`` module, or an ImportError saying how to install it."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(f"this index backend needs faiss: {INSTALL_HINT}") from exc
    return faiss


def faiss_available() -> bool:
    try:
        import_faiss()
    except ImportError:
        return False
    return True


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class SearchBackend:
    """Which top-k an index uses, and the FAISS index it keeps in step with its rows.

    The FAISS index is built on first search and extended by :meth:`added`; the rows
    themselves stay in the EmbeddingIndex (the single source of truth that is saved).
    """

    def __init__(self, name: str = "auto", *, hnsw_m: int = HNSW_M, ef_search: int = HNSW_EF_SEARCH,
                 ef_construction: int = HNSW_EF_CONSTRUCTION) -> None:
        if name not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {name!r}")
        if name in ("faiss", "hnsw"):
            import_faiss()  # fail at construction, not at the first search
        self.name = name
        self.hnsw_m = _check_positive("hnsw_m", hnsw_m)
        self.ef_search = _check_positive("ef_search", ef_search)
        self.ef_construction = _check_positive("ef_construction", ef_construction)
        self._faiss_index: Any = None

    def __repr__(self) -> str:
        return f"SearchBackend({self.name!r})"

    def active(self, rows: int) -> str:
        """The backend that searches an index of ``rows`` rows (resolves ``"auto"``)."""
        if self.name != "auto":
            return self.name
        large = AUTO_MIN_ROWS is not None and rows >= AUTO_MIN_ROWS
        return "faiss" if large and faiss_available() else "torch"

    def options(self) -> dict[str, Any]:
        """What ``index.json`` records to rebuild this backend."""
        out: dict[str, Any] = {"backend": self.name}
        if self.name == "hnsw":
            out.update(hnsw_m=self.hnsw_m, ef_search=self.ef_search, ef_construction=self.ef_construction)
        return out

    def new_faiss_index(self, dim: int, kind: str) -> Any:
        """An empty FAISS index of the given kind ("faiss" = flat, "hnsw")."""
        faiss = import_faiss()
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            return index
        return faiss.IndexFlatIP(dim)

    def added(self, rows: torch.Tensor) -> None:
        """Keep a built FAISS index in step with rows appended to the EmbeddingIndex."""
        if self._faiss_index is not None:
            self._faiss_index.add(_as_numpy(rows))

    def reset(self) -> None:
        self._faiss_index = None

    def top_k_hits(self, query: ArrayLike, corpus: torch.Tensor, k: int) -> list[list[dict[str, Any]]] | None:
        """As :func:`imagebind_sdk.vectors.ops.top_k_hits` (``corpus_id``/``score`` dicts), searched by FAISS;
        None when the torch path should search."""
        if self.active(corpus.shape[0]) == "torch":
            return None
        check_top_k(k)
        q = as_query(query)
        check_same_dim(q, corpus, "query", "index")
        scores, ids = self.top_k(normalize_rows(q), corpus, k)
        return [
            [{"corpus_id": int(i), "score": float(s)} for i, s in zip(row_i, row_s)]
            for row_i, row_s in zip(ids.tolist(), scores.tolist())
        ]

    def top_k(self, queries: torch.Tensor, corpus: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """FAISS top-k (scores, row ids) of unit ``queries`` against ``corpus`` (built on first use)."""
        kind = "hnsw" if self.name == "hnsw" else "faiss"
        index = self._faiss_index
        if index is None or index.ntotal != corpus.shape[0] or _kind_of(index) != kind:
            index = self.new_faiss_index(corpus.shape[1], kind)
            index.add(_as_numpy(corpus))
            self._faiss_index = index
        k = min(k, corpus.shape[0])  # first: FAISS sizes its result and search buffers by k
        if kind == "hnsw":
            index.hnsw.efSearch = max(self.ef_search, k)  # efSearch < k would return fewer hits
        scores, ids = index.search(_as_numpy(queries), k)
        return torch.from_numpy(scores), torch.from_numpy(ids.astype(np.int64))

    def to_faiss(self, corpus: torch.Tensor) -> Any:
        """A new FAISS index holding ``corpus``: this backend's kind ("hnsw" or flat)."""
        index = self.new_faiss_index(corpus.shape[1], "hnsw" if self.name == "hnsw" else "faiss")
        if corpus.shape[0]:
            index.add(_as_numpy(corpus))
        return index

    def saves_graph(self, rows: int) -> bool:
        """Whether :meth:`save` writes ``HNSW_FILE`` for an index of ``rows`` rows."""
        return self.name == "hnsw" and rows > 0

    def save(self, directory: Path, corpus: torch.Tensor) -> None:
        """Write the HNSW graph beside the rows so loading skips rebuilding it."""
        if self.saves_graph(corpus.shape[0]):
            faiss = import_faiss()
            self.top_k(corpus[:1], corpus, 1)  # builds it if needed
            faiss.write_index(self._faiss_index, str(directory / HNSW_FILE))

    @classmethod
    def load(cls, info: dict[str, Any], directory: Path, dim: int, rows: int) -> SearchBackend:
        """The backend recorded in ``index.json`` (old files: ``"auto"``), with its saved graph.

        The graph is used only when ``index.json`` vouches for it (its sha256, checked by the
        caller): without one it is rebuilt from the rows, as it cannot be told apart from
        another index's graph of the same size.
        """
        options = {k: info[k] for k in ("hnsw_m", "ef_search", "ef_construction") if k in info}
        backend = cls(info.get("backend", "auto"), **options)
        path = directory / HNSW_FILE
        if backend.name != "hnsw" or not path.is_file():
            return backend
        if HNSW_FILE not in info.get("checksums", {}):
            logger.warning("%s has no checksum in index.json (an older index): rebuilding the graph", path)
            return backend
        try:
            index = import_faiss().read_index(str(path))
        except RuntimeError as exc:
            raise ValueError(f"{path}: not a readable FAISS index ({str(exc).splitlines()[0]})") from None
        if _kind_of(index) != "hnsw" or index.d != dim or index.ntotal != rows:
            raise ValueError(f"{path}: a {_kind_of(index)} graph of {index.ntotal} rows of dim {index.d}, "
                             f"expected hnsw with {rows} rows of dim {dim}")
        backend._faiss_index = index
        return backend


def _kind_of(index: Any) -> str:
    return "hnsw" if hasattr(index, "hnsw") else "faiss"


def _as_numpy(rows: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(rows.detach().cpu().numpy(), dtype=np.float32)
