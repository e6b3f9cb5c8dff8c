"""The three Ray Data stages of :func:`imagebind_sdk.distributed.embed_dataset`.

Batches are ``pyarrow.Table``. Each row carries a ``status``: ``todo`` (to embed),
``done`` (already in the output: counted as ``already_done``), ``unsupported`` (kind unknown) or
``failed`` (could not be read or embedded; ``error`` says why). Only this module's
functions run on Ray workers; none of them imports ray, so they are plain functions
that the tests can also call directly.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ..bulk.files import Collated, encode_batch
from ..bulk.format import FileStat, content_digest, records_table, stat_file, write_part
from ..kinds import ENCODER_OF, infer_kind
from ..preprocess import preprocess_one

logger = logging.getLogger(__name__)

Key = tuple[str, str, int | None, int | None, str | None]  # path, kind, size, mtime_ns, content_hash


def _stat_row(path: str, data: bytes | None) -> FileStat:
    """A dataset row's identity: the file's stat, or the size and hash of its given bytes."""
    return FileStat(path, len(data), None, content_digest(data)) if data is not None else stat_file(path)


def _prepare_row(path: str, data: bytes | None, kind_of_all: str | None, done: frozenset[Key],
                 options: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    stat = _stat_row(path, data)
    kind = kind_of_all or infer_kind(path)
    row: dict[str, Any] = {"path": stat.path, "kind": kind, "size": stat.size, "mtime_ns": stat.mtime_ns,
                           "content_hash": stat.digest, "input": None, "error": None, "status": "todo"}
    if kind is None:
        ext = os.path.splitext(path)[1] or "(none)"
        return dict(row, status="unsupported", error=f"unsupported file extension {ext}: pass kind=")
    if (stat.path, kind, stat.size, stat.mtime_ns, stat.digest) in done and stat.size is not None:
        return dict(row, status="done")
    try:
        tensor = preprocess_one(kind, data if data is not None else stat.path, **options.get(kind, {}))
    except Exception as exc:  # one unreadable file must not end the job
        return dict(row, status="failed", error=f"{type(exc).__name__}: {exc}")
    buffer = io.BytesIO()
    np.save(buffer, tensor.numpy(), allow_pickle=False)
    return dict(row, input=buffer.getvalue())


def prepare(batch: pa.Table, *, kind: str | None, done: frozenset[Key],
            options: Mapping[str, Mapping[str, Any]]) -> pa.Table:
    """Stateless task: stat, kind, resume check and preprocessing of each row."""
    paths = batch.column("path").to_pylist()
    data = batch.column("bytes").to_pylist() if "bytes" in batch.column_names else [None] * len(paths)
    rows = [_prepare_row(os.fspath(p), d, kind, done, options) for p, d in zip(paths, data)]
    return pa.Table.from_pylist(rows, schema=PREPARED)


PREPARED = pa.schema([("path", pa.string()), ("kind", pa.string()), ("size", pa.int64()),
                      ("mtime_ns", pa.int64()), ("content_hash", pa.string()), ("input", pa.binary()), ("error", pa.string()),
                      ("status", pa.string())])


class Encoder:
    """Actor-pool stage: the model is loaded once per actor, then embeds batch after batch."""

    def __init__(self, checkpoint: str, modalities: list[str], device: str, batch_size: int,
                 storage: Mapping[str, Any] | None = None, **load: Any) -> None:
        from ..api import ImageBind  # the heavy import happens in the actor, once

        self.storage = storage  # the output's info: its dtype (and int8 ranges) say how rows leave the actor

        # load: backend, dtype, quantize (checked on the driver by embed_dataset)
        self.model = ImageBind.load(checkpoint, device=device, modalities=modalities, **load)
        self.batch_size = batch_size
        self.node_id = _node_id()

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.drop_columns(["input"]).to_pylist()
        inputs = batch.column("input").to_pylist()
        results: dict[int, torch.Tensor | str] = {}
        by_kind: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            if row["status"] == "todo":
                by_kind.setdefault(row["kind"], []).append(i)
        for kind, indices in by_kind.items():
            tensor = torch.stack([torch.from_numpy(np.load(io.BytesIO(inputs[i]))) for i in indices])
            good, errors = encode_batch(self.model, kind, Collated(indices, tensor, []), self.batch_size)
            results.update(good)
            results.update(errors)
        return _encoded_table(rows, results, self.model.embedding_dim, self.node_id, self.storage)


def _encoded_table(rows: list[dict[str, Any]], results: Mapping[int, torch.Tensor | str], dim: int,
                   node_id: str, storage: Mapping[str, Any] | None = None) -> pa.Table:
    """Rows of the output schema plus ``status`` and the ``node`` that embedded them."""
    records, statuses = [], []
    for i, row in enumerate(rows):
        value = results.get(i, row["error"] or "")
        status = row["status"] if i not in results else ("failed" if isinstance(value, str) else "embedded")
        records.append((FileStat(row["path"], row["size"], row["mtime_ns"], row["content_hash"]), row["kind"] or "", value))
        statuses.append(status)
    table = records_table(records, dim, info=storage)
    table = table.append_column("status", pa.array(statuses, pa.string()))
    return table.append_column("node", pa.array([node_id if i in results else "" for i in range(len(rows))]))


def write(batch: pa.Table, *, out: str, info: Mapping[str, Any], run: int = 0) -> pa.Table:
    """Stateless task: commit the embedded and failed rows as one part; one row of counts."""
    statuses = batch.column("status").to_pylist()
    keep = pa.array([s in ("embedded", "failed") for s in statuses])
    part = batch.filter(keep).drop_columns(["status", "node"])
    if part.num_rows:
        write_part(out, part, info, run)
    counts = Counter(statuses)
    nodes = Counter(n for n in batch.column("node").to_pylist() if n)
    return pa.table({
        "embedded": [counts["embedded"]], "failed": [counts["failed"]], "already_done": [counts["done"]],
        "unsupported": [counts["unsupported"]], "nodes": [json.dumps(dict(nodes))],
    })


def _node_id() -> str:
    import ray  # only ever called inside a Ray actor

    return ray.get_runtime_context().get_node_id()


def modalities_for(kinds: list[str | None]) -> list[str]:
    """The encoders an actor must load for these input kinds."""
    return sorted({ENCODER_OF[k] for k in kinds if k is not None})
