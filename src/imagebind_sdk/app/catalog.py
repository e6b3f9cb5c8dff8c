"""The searchable items of the page: every row of one or more bulk outputs, numbered.

An item is one embedded row: a whole file, or one window of a long recording (then
``start_s``/``end_s`` say where). Item ids are row numbers (0..N-1) in a fixed
order: outputs in the order given, paths sorted inside each. The catalog is the
only source of file paths the media routes open, so an id is all a client names.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterable, Sequence

import torch

from ..bulk.format import INFO, load_bulk_output, read_info
from ..retrieval.index import EmbeddingIndex
from ..vectors.space import check_space
from ..vectors.ops import normalize_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One searchable row: its id, the file it came from, its input kind, its window (or None)."""

    id: int
    path: str
    kind: str
    start_s: float | None = None
    end_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "kind": self.kind, "start_s": self.start_s, "end_s": self.end_s}


def output_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """The bulk outputs under ``root``: ``root`` itself if it is one, else its sub-folders that are.

    ``imagebind-sdk app`` writes whole files to ``ROOT/files`` and windows to ``ROOT/windows``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"index directory {root} does not exist")
    if (root / INFO).is_file():
        return [root]
    found = sorted(d for d in root.iterdir() if d.is_dir() and (d / INFO).is_file())
    if not found:
        raise ValueError(f"{root} is not a bulk output (no {INFO} in it or in a sub-folder); "
                         "write one with embed_files(..., out=DIR) or imagebind-sdk app")
    return found


def _rows(out: Any) -> tuple[list[tuple[str, str, float | None, float | None]], list[torch.Tensor]]:
    """(path, kind, start, end) and vectors of one loaded bulk output (whole files or windows)."""
    rows, vectors = [], []
    if hasattr(out, "sources"):  # Embeddings: whole files by kind
        for kind in out:
            rows += [(path, kind, None, None) for path in out.sources[kind]]
            vectors.append(out[kind])
    else:  # WindowEmbeddings: one Windows per file
        for windows in out:
            rows += [(windows.source, windows.kind, float(a), float(b))
                     for a, b in zip(windows.start_s.tolist(), windows.end_s.tolist())]
            vectors.append(windows.vectors)
    return rows, vectors


class Catalog:
    """Items and their unit vectors, searchable by cosine similarity (an :class:`EmbeddingIndex`)."""

    def __init__(self, items: Sequence[Item], vectors: torch.Tensor, checkpoint: dict[str, Any] | None = None,
                 space: Any = None) -> None:
        self.items = list(items)
        self.checkpoint = checkpoint or {}
        self.index = EmbeddingIndex(dim=int(vectors.shape[1]) if vectors.ndim == 2 else None, space=space)
        if self.items:
            self.index.add(vectors, ids=[str(i) for i in range(len(self.items))],
                           metadata=[{"kind": item.kind} for item in self.items])
        self.kinds = sorted({item.kind for item in self.items})
        self.paths = frozenset(item.path for item in self.items)  # the only files media routes open
        self._masks: dict[frozenset[str], torch.Tensor] = {}  # rows of each set of kinds searched

    @classmethod
    def load(cls, roots: Iterable[str | os.PathLike[str]], only: Collection[str] | None = None) -> Catalog:
        """Read every bulk output under ``roots`` (see :func:`output_dirs`); ``only``: keep just these paths."""
        rows: list[tuple[str, str, float | None, float | None]] = []
        vectors: list[torch.Tensor] = []
        checkpoint: dict[str, Any] | None = None
        space = None  # the first known one; outputs of other spaces are refused (unknown: not checked)
        for directory in (d for root in roots for d in output_dirs(root)):
            info = read_info(directory)
            checkpoint = checkpoint or info["checkpoint"]
            check_space(space, info.get("space"), what=f"reading the bulk output {directory} with the others")
            space = space or info.get("space")
            more_rows, more_vectors = _rows(load_bulk_output(directory))
            keep = [i for i, row in enumerate(more_rows) if only is None or row[0] in only]
            rows += [more_rows[i] for i in keep]
            if keep:
                vectors.append(torch.cat(more_vectors).to(torch.float32)[keep])
        items = [Item(i, *row) for i, row in enumerate(rows)]
        matrix = torch.cat(vectors) if vectors else torch.empty(0, 0)
        logger.info("catalog: %d items (%s)", len(items), ", ".join(sorted({i.kind for i in items})) or "empty")
        return cls(items, matrix, checkpoint, space)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def dim(self) -> int | None:
        return self.index.dim

    def item(self, item_id: int) -> Item:
        """The item with this id; ``KeyError`` naming the valid range otherwise."""
        if not 0 <= item_id < len(self.items):
            raise KeyError(f"no item {item_id}: ids are 0..{len(self.items) - 1}" if self.items
                           else f"no item {item_id}: the index is empty")
        return self.items[item_id]

    def vectors(self, ids: Sequence[int]) -> torch.Tensor:
        """(len(ids), D) unit vectors of these items."""
        for item_id in ids:
            self.item(item_id)
        return self.index.embeddings[list(ids)]

    def search(self, query: torch.Tensor, top_k: int, kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The ``top_k`` items nearest ``query`` (a (D,) vector), best first (ties: lower id), as result dicts."""
        if not self.items:
            return []
        wanted = frozenset(kinds or self.kinds) & set(self.kinds)
        if wanted == set(self.kinds):  # every kind: the index's own search
            hits = self.index.search(query.unsqueeze(0), top_k=top_k)[0]
            return [{**self.items[hit["corpus_id"]].to_dict(), "score": hit["score"]} for hit in hits]
        if not wanted:
            return []
        # Some kinds: score every row once and drop the others (no copy of the rows per query).
        mask = self._kind_mask(wanted)
        scores = (self.index.embeddings @ normalize_rows(query.float()))
        scores = scores.masked_fill(~mask, float("-inf"))
        count = min(top_k, int(mask.sum()))
        cut = torch.topk(scores, count).values[-1]
        # Every row at or above the cut (ties included), in id order; a stable sort by score
        # then orders equal scores by lower id, as EmbeddingIndex.search does.
        candidates = torch.nonzero(scores >= cut).squeeze(1)
        values, order = torch.sort(scores[candidates], descending=True, stable=True)
        ids, values = candidates[order[:count]].tolist(), values[:count].tolist()
        return [{**self.items[i].to_dict(), "score": v} for i, v in zip(ids, values)]

    def _kind_mask(self, kinds: frozenset[str]) -> torch.Tensor:
        if kinds not in self._masks:
            self._masks[kinds] = torch.tensor([item.kind in kinds for item in self.items], dtype=torch.bool)
        return self._masks[kinds]
