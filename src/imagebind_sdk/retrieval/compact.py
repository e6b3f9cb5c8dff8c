"""The rows of an ``EmbeddingIndex(embedding_dtype=...)`` held compact, and their search.

Only the packed rows are kept (no float32 copy): that is the memory saving. How each
encoding is searched (the quantisation itself is :mod:`imagebind_sdk.vectors.compact`):

* ``float16``: the float query against the rows cast to float32, chunk by chunk (exact up to
  float16 rounding of the rows).
* ``int8`` / ``uint8``: the float query against the dequantised rows, every row: FAISS's 8-bit
  ``IndexScalarQuantizer`` when faiss is installed (set up to decode exactly as
  :func:`~imagebind_sdk.vectors.compact.dequantize`; SIMD, no float copy), else torch:
  dequantising is affine (``low + level * step``), so ``q . row = (q * step) . level + q . low``,
  one cast per chunk of levels. This *is* the float rescoring, done for all rows, so no
  candidate is lost to a coarse first pass.
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

import numpy as np
import torch

from ..vectors.compact import (BITS, Ranges, check_encoding, dequantize, needs_ranges, packed_dim, quantize,
                               torch_dtype)

__all__ = ["CompactRows", "RESCORE_MULTIPLIER"]

RESCORE_MULTIPLIER = 4  # binary: candidates rescored per hit asked (sentence-transformers' default is 4)
CHUNK = 32_768  # rows cast to float at a time
UNSIGNED = {"int8": "uint8", "binary": "ubinary"}  # how rows are held: the same codes + 128


class CompactRows:
    """Packed unit rows in ``encoding`` (not float32), with their search.

    Held as unsigned codes (``uint8`` for int8, ``ubinary`` for binary: the same values + 128),
    which FAISS takes as they are: once searched with faiss installed, the codes live in the FAISS
    index (``IndexScalarQuantizer`` 8-bit, ``IndexBinaryFlat``) and nowhere else.
    """

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
        self.stored = UNSIGNED.get(encoding, encoding)
        self._chunks: list[torch.Tensor] = []  # codes not (yet) in the FAISS index
        self._faiss: Any = None

    def add(self, unit_rows: torch.Tensor) -> None:
        self._chunks.append(quantize(unit_rows, self.stored, self.ranges))

    def set_packed(self, packed: torch.Tensor) -> None:
        if packed.ndim != 2 or packed.shape[1] != packed_dim(self.encoding, self.dim):
            raise ValueError(f"packed rows of shape {tuple(packed.shape)} do not fit {self.encoding} of dim {self.dim}")
        codes = packed if self.stored == self.encoding else (packed.to(torch.int16) + 128).to(torch.uint8)
        self._chunks, self._faiss = [codes.contiguous()], None

    def _codes(self) -> torch.Tensor:
        """All stored codes, (N, packed_dim): a view of the FAISS index's own memory where it holds them."""
        self._sync()
        if self._faiss is None:
            return self._chunks[0]
        vector = self._faiss.xb if self.encoding in BITS else self._faiss.codes
        import faiss  # the index holds the codes: faiss is there

        flat = faiss.rev_swig_ptr(vector.data(), vector.size()) if vector.size() else np.empty(0, np.uint8)
        return torch.from_numpy(flat).view(-1, packed_dim(self.encoding, self.dim))

    def _sync(self) -> None:
        """Move added codes into the FAISS index (int8/uint8/bits, faiss installed), else into one tensor."""
        faiss = faiss_module() if self.encoding != "float16" or self._faiss is not None else None
        if faiss is None:
            if len(self._chunks) != 1:
                width = packed_dim(self.encoding, self.dim)
                dtype = torch.float16 if self.encoding == "float16" else torch.uint8
                self._chunks = [torch.cat(self._chunks) if self._chunks else torch.empty(0, width, dtype=dtype)]
            return
        if self._faiss is None:
            self._faiss = _new_faiss(faiss, self.encoding, self.dim, self.ranges)
        for chunk in self._chunks:
            codes = np.ascontiguousarray(chunk.numpy())
            self._faiss.add(codes) if self.encoding in BITS else self._faiss.add_sa_codes(codes)
        self._chunks = []

    @property
    def packed(self) -> torch.Tensor:
        """The rows in ``encoding`` (int8/binary: signed), as saved."""
        codes = self._codes()
        return codes if self.stored == self.encoding else (codes.to(torch.int16) - 128).to(torch.int8)

    @property
    def nbytes(self) -> int:
        codes = self._codes()
        return codes.numel() * codes.element_size()

    def __len__(self) -> int:
        return len(self._codes())

    def rows(self, ids: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """Dequantised rows (float32 approximations of the unit rows added)."""
        out = dequantize(self._codes()[ids], self.stored, self.ranges, self.dim)
        return out / math.sqrt(self.dim) if self.encoding in BITS else out

    def search(self, q: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q, k) scores and row ids of unit queries ``q``, best first (ties: lower row)."""
        k = min(top_k, len(self))
        if self.encoding not in BITS:
            return self._scan(q, k)
        candidates = self._hamming(q, min(len(self), k * self.rescore_multiplier))
        rescored = torch.einsum("qd,qcd->qc", q, self.rows(candidates.reshape(-1)).view(*candidates.shape, self.dim))
        order = _order(rescored, candidates, k)
        return rescored.gather(1, order), candidates.gather(1, order)

    def _scan(self, q: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every row scored in float: FAISS's 8-bit scalar quantizer (which decodes exactly as
        :func:`dequantize`), else chunks cast in torch (float16; int8 via the affine form)."""
        if self._faiss is not None:
            scores, ids = self._faiss.search(q.numpy(), k)
            scores, ids = torch.from_numpy(scores), torch.from_numpy(ids).long()
            order = _order(scores, ids, k)
            return scores.gather(1, order), ids.gather(1, order)
        codes, offset = self._codes(), torch.zeros(len(q))
        if self.ranges is not None:
            step = (self.ranges.high - self.ranges.low) / 255
            offset, q = q @ self.ranges.low, q * step
        best_s, best_i = torch.empty(len(q), 0), torch.empty(len(q), 0, dtype=torch.long)
        for start in range(0, len(codes), CHUNK):
            scores = q @ codes[start:start + CHUNK].float().T + offset[:, None]
            s, i = scores.topk(min(k, scores.shape[1]), dim=1)
            best_s, best_i = torch.cat([best_s, s], 1), torch.cat([best_i, i + start], 1)
        order = _order(best_s, best_i, k)
        return best_s.gather(1, order), best_i.gather(1, order)

    def _hamming(self, q: torch.Tensor, n: int) -> torch.Tensor:
        """(Q, n) ids of the rows nearest by Hamming distance of sign bits."""
        bits = quantize(q, "ubinary")
        codes = self._codes()
        if self._faiss is not None:
            return torch.from_numpy(self._faiss.search(bits.numpy(), n)[1]).long()
        signs = dequantize(bits, "ubinary", dim=self.dim)
        agree = torch.cat([signs @ self.rows(slice(s, s + CHUNK)).T for s in range(0, len(codes), CHUNK)], 1)
        return agree.topk(n, dim=1).indices


def faiss_module() -> Any:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _new_faiss(faiss: Any, encoding: str, dim: int, ranges: Ranges | None) -> Any:
    """An empty FAISS index over our codes. Its 8-bit scalar quantizer decodes code c as
    ``vmin + (c + 0.5) / 255 * vdiff``; with ``vmin = low - step / 2`` and ``vdiff = 255 * step``
    that is ``low + c * step``, our dequantisation."""
    if encoding in BITS:
        return faiss.IndexBinaryFlat(dim)
    index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    step = (ranges.high - ranges.low) / 255
    faiss.copy_array_to_vector(torch.cat([ranges.low - step / 2, 255 * step]).numpy().astype(np.float32),
                               index.sq.trained)
    index.is_trained = True
    return index


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
    if packed.dtype != torch_dtype(encoding):
        raise ValueError(f"rows of dtype {packed.dtype} are not {encoding}")
    rows.set_packed(packed)
    return rows
