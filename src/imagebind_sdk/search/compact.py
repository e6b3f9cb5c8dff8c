"""The rows of an ``EmbeddingIndex(embedding_dtype=...)`` held compact, and their search.

Only the packed rows are kept (no float32 copy): that is the memory saving. How each
encoding is searched (the quantisation itself is :mod:`imagebind_sdk.vectors.compact`):

* ``float16``: the float query against the rows cast to float32, chunk by chunk (exact up to
  float16 rounding of the rows).
* ``int8`` / ``uint8``: the float query against the dequantised rows, every row. Dequantising
  is affine (``low + level * step``), so ``q . row = (q * step) . level + q . low``: one cast
  of each chunk of levels, no float copy of the corpus. This *is* the float rescoring, done
  for all rows, so no candidate is lost to a coarse first pass.
* ``binary`` / ``ubinary``: a first pass by Hamming distance between the query's sign bits
  and the rows' (FAISS ``IndexBinaryFlat`` when faiss is installed, else the same count in
  torch), then the ``rescore_multiplier * top_k`` best candidates are rescored with the
  float query against the dequantised rows (signs +-1 / sqrt(dim), unit vectors): the
  rescoring of sentence-transformers' ``semantic_search_faiss``.

Scores are those float rescores: cosines with the dequantised rows, close to but not
equal to the float32 cosines.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..vectors.compact import BITS, Ranges, check_encoding, dequantize, needs_ranges, packed_dim, quantize

__all__ = ["CompactRows", "RESCORE_MULTIPLIER"]

RESCORE_MULTIPLIER = 4  # binary: candidates rescored per hit asked (sentence-transformers' default is 4)
CHUNK = 32_768  # rows cast to float at a time


class CompactRows:
    """Packed unit rows in ``encoding`` (not float32), with their search."""

    def __init__(self, encoding: str, dim: int, ranges: Ranges | None = None,
                 rescore_multiplier: int = RESCORE_MULTIPLIER) -> None:
        self.encoding = check_encoding(encoding, "embedding_dtype")
        if needs_ranges(encoding) and ranges is None:
            raise ValueError(f"embedding_dtype={encoding!r} needs ranges= fixed for the model: "
                             "imagebind_sdk.vectors.compact.calibrate(model), or (2, dim) low/high rows of your own")
        if ranges is not None and ranges.dim != dim:
            raise ValueError(f"ranges have dim {ranges.dim}, the index has dim {dim}")
        if isinstance(rescore_multiplier, bool) or not isinstance(rescore_multiplier, int) or rescore_multiplier < 1:
            raise ValueError(f"rescore_multiplier must be a positive int, got {rescore_multiplier!r}")
        self.dim, self.ranges, self.rescore_multiplier = dim, ranges, rescore_multiplier
        self._chunks: list[torch.Tensor] = []
        self._faiss: Any = None

    def add(self, unit_rows: torch.Tensor) -> None:
        self._chunks.append(quantize(unit_rows, self.encoding, self.ranges))
        self._faiss = None

    def set_packed(self, packed: torch.Tensor) -> None:
        if packed.ndim != 2 or packed.shape[1] != packed_dim(self.encoding, self.dim):
            raise ValueError(f"packed rows of shape {tuple(packed.shape)} do not fit {self.encoding} of dim {self.dim}")
        self._chunks, self._faiss = [packed.contiguous()], None

    @property
    def packed(self) -> torch.Tensor:
        if len(self._chunks) != 1:
            width = packed_dim(self.encoding, self.dim)
            dtype = quantize(torch.zeros(1, self.dim), self.encoding, self.ranges).dtype
            self._chunks = [torch.cat(self._chunks) if self._chunks else torch.empty(0, width, dtype=dtype)]
        return self._chunks[0]

    @property
    def nbytes(self) -> int:
        return self.packed.numel() * self.packed.element_size()

    def rows(self, ids: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """Dequantised rows (float32 approximations of the unit rows added)."""
        out = dequantize(self.packed[ids], self.encoding, self.ranges, self.dim)
        return out / math.sqrt(self.dim) if self.encoding in BITS else out

    def search(self, q: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q, k) scores and row ids of unit queries ``q``, best first (ties: lower row)."""
        k = min(top_k, len(self.packed))
        if self.encoding not in BITS:
            return self._scan(q, k)
        candidates = self._hamming(q, min(len(self.packed), k * self.rescore_multiplier))
        rescored = torch.einsum("qd,qcd->qc", q, self.rows(candidates.reshape(-1)).view(*candidates.shape, self.dim))
        order = _order(rescored, candidates, k)
        return rescored.gather(1, order), candidates.gather(1, order)

    def _scan(self, q: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every row scored in float: float16 cast, int8/uint8 via the affine dequantisation."""
        if self.ranges is not None:
            step = (self.ranges.high - self.ranges.low) / 255
            offset = q @ self.ranges.low + (128 if self.encoding == "int8" else 0) * (q @ step)
            q = q * step
        else:
            offset = torch.zeros(len(q))
        best_s, best_i = torch.empty(len(q), 0), torch.empty(len(q), 0, dtype=torch.long)
        for start in range(0, len(self.packed), CHUNK):
            scores = q @ self.packed[start:start + CHUNK].float().T + offset[:, None]
            s, i = scores.topk(min(k, scores.shape[1]), dim=1)
            best_s, best_i = torch.cat([best_s, s], 1), torch.cat([best_i, i + start], 1)
        order = _order(best_s, best_i, k)
        return best_s.gather(1, order), best_i.gather(1, order)

    def _hamming(self, q: torch.Tensor, n: int) -> torch.Tensor:
        """(Q, n) ids of the rows nearest by Hamming distance of sign bits."""
        bits = quantize(q, "ubinary")
        try:
            import faiss
        except ImportError:
            faiss = None
        if faiss is not None:
            if self._faiss is None:
                self._faiss = faiss.IndexBinaryFlat(self.dim)
                self._faiss.add(self.packed.to(torch.int16).add(128 if self.encoding == "binary" else 0)
                                .to(torch.uint8).numpy())
            return torch.from_numpy(self._faiss.search(bits.numpy(), n)[1]).long()
        signs = dequantize(bits, "ubinary", dim=self.dim)
        agree = torch.cat([signs @ self.rows(slice(s, s + CHUNK)).T for s in range(0, len(self.packed), CHUNK)], 1)
        return agree.topk(n, dim=1).indices


def _order(scores: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the k best per row: score descending, then lower id (a stable two-key sort)."""
    by_id = ids.argsort(dim=1, stable=True)
    by_score = scores.gather(1, by_id).argsort(dim=1, descending=True, stable=True)
    return by_id.gather(1, by_score)[:, :k]


COMPACT_FORMAT_VERSION = 2  # index.json of a compact index (readers of version 1 would misread its rows)


def compact_spec(embedding_dtype: str, ranges: Any, rescore_multiplier: int, backend: str) -> tuple | None:
    """The checked ``EmbeddingIndex`` options (None for float32), built into rows once dim is known."""
    check_encoding(embedding_dtype, "embedding_dtype")
    if embedding_dtype == "float32":
        if ranges is not None:
            raise ValueError("ranges= only applies to embedding_dtype='int8' or 'uint8'")
        return None
    if backend not in ("auto", "torch"):
        raise ValueError(f"embedding_dtype={embedding_dtype!r} has its own search; use backend='auto', "
                         f"got {backend!r}")
    return (embedding_dtype, None if ranges is None else Ranges.of(ranges), rescore_multiplier)


def compact_hits(rows: CompactRows, query: Any, top_k: int) -> list[list[dict[str, Any]]]:
    """``top_k_hits``' answer from compact rows."""
    from ..vectors.ops import as_query, check_same_dim, check_top_k, normalize_rows

    check_top_k(top_k)
    q = as_query(query)
    check_same_dim(q, torch.empty(0, rows.dim), "query", "index")
    scores, ids = rows.search(normalize_rows(q), top_k)
    return [[{"corpus_id": int(i), "score": float(s)} for i, s in zip(row_i, row_s)]
            for row_i, row_s in zip(ids.tolist(), scores.tolist())]


def compact_info(rows: Any) -> dict[str, Any]:
    """What ``index.json`` records of a compact index (nothing for float32)."""
    if not isinstance(rows, CompactRows):
        return {}
    return {"format_version": COMPACT_FORMAT_VERSION, "embedding_dtype": rows.encoding,
            "rescore_multiplier": rows.rescore_multiplier,
            "ranges": rows.ranges.to_json() if rows.ranges is not None else None}


def compact_of(info: dict[str, Any], packed: torch.Tensor, dim: int | None) -> CompactRows | None:
    """The compact rows an ``index.json`` describes, holding ``packed``; None for float32."""
    encoding = info.get("embedding_dtype", "float32")
    if encoding == "float32":
        return None
    if info.get("format_version") != COMPACT_FORMAT_VERSION or not isinstance(dim, int):
        raise ValueError(f"embedding_dtype {encoding!r} needs format_version {COMPACT_FORMAT_VERSION} and a dim")
    ranges = Ranges.of(info["ranges"]) if info.get("ranges") is not None else None
    rows = CompactRows(encoding, dim, ranges, info.get("rescore_multiplier", RESCORE_MULTIPLIER))
    if packed.dtype != quantize(torch.zeros(1, dim), encoding, ranges).dtype:
        raise ValueError(f"rows of dtype {packed.dtype} are not {encoding}")
    rows.set_packed(packed)
    return rows
