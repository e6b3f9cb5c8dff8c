#!/usr/bin/env python
"""EmbeddingIndex query time: brute force (torch) vs FAISS flat (exact) vs FAISS HNSW (approximate).

    python benchmarks/index.py [--sizes 10000,100000,1000000] [--hnsw-sizes 10000,100000] [--out index.json]
    python benchmarks/index.py --compact [--sizes 100000,1000000] [--encodings float16,int8,binary]

Rows are random unit vectors (dim 1024, seeded), queries too: the hardest case for an
approximate index (no clusters), so HNSW recall here is a floor. Per size: the time
of one ``index.search(q, top_k=10)`` for a single query and for a batch of
``--batch`` queries (median of ``--repeats``), FAISS build time, HNSW build time and
recall@10 against the exact top-10. Both sides run with torch's thread count
(faiss via ``omp_set_num_threads``).

``--compact``: ``EmbeddingIndex(embedding_dtype=...)`` against the float32 torch index of
the same rows: bytes held by the rows, search time (single query, batch), and recall@10
against the float32 search. int8 ranges are calibrated (per-dimension min/max) on 10,000
other seeded random unit vectors; binary rescores 4 x top_k Hamming candidates in float.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from imagebind_sdk.retrieval.index import EmbeddingIndex

logger = logging.getLogger("bench.index")

DIM = 1024
TOP_K = 10
CHUNK = 100_000
EF_SWEEP = (128, 256, 512, 1024, 2048)


def unit_rows(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(n, DIM)
    for start in range(0, n, CHUNK):  # chunked: no second full-size temporary
        block = torch.randn(min(CHUNK, n - start), DIM, generator=gen)
        out[start : start + len(block)] = torch.nn.functional.normalize(block, dim=-1)
    return out


def query_times(index: EmbeddingIndex, queries: torch.Tensor, repeats: int) -> dict[str, float]:
    index.search(queries[:1], top_k=TOP_K)  # warm-up (builds a FAISS index)
    single, batch = [], []
    for r in range(repeats):
        start = time.perf_counter()
        index.search(queries[r : r + 1], top_k=TOP_K)
        single.append(time.perf_counter() - start)
        start = time.perf_counter()
        index.search(queries, top_k=TOP_K)
        batch.append(time.perf_counter() - start)
    return {"single_ms": 1e3 * statistics.median(single), "batch_ms_per_query": 1e3 * statistics.median(batch) / len(queries)}


def top_ids(index: EmbeddingIndex, queries: torch.Tensor) -> list[set[int]]:
    return [{h["corpus_id"] for h in row} for row in index.search(queries, top_k=TOP_K)]


def build(n: int, backend: str, queries: torch.Tensor) -> tuple[EmbeddingIndex, float]:
    """An index of the seeded rows (regenerated, so no two full copies live at once) and its build time."""
    index = EmbeddingIndex(backend=backend)
    index.add(unit_rows(n, seed=n))
    start = time.perf_counter()
    index.search(queries[:1], top_k=TOP_K)  # builds the FAISS index
    return index, time.perf_counter() - start


def recall(found: list[set[int]], truth: list[set[int]]) -> float:
    return statistics.mean(len(a & b) / TOP_K for a, b in zip(found, truth))


def ef_sweep(index: EmbeddingIndex, queries: torch.Tensor, truth: list[set[int]]) -> list[dict[str, float]]:
    """Recall@10 and batched ms/query of the built HNSW graph at several efSearch values."""
    rows = []
    for ef in EF_SWEEP:
        index._backend.ef_search = ef  # benchmark only: vary efSearch without rebuilding the graph
        start = time.perf_counter()
        found = top_ids(index, queries)
        rows.append({"ef_search": ef, "recall_at_10": recall(found, truth),
                     "batch_ms_per_query": 1e3 * (time.perf_counter() - start) / len(queries)})
        logger.info("  hnsw ef_search %d: %s", ef, rows[-1])
    return rows


def one_size(n: int, queries: torch.Tensor, repeats: int, hnsw: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": n}
    truth: list[set[int]] = []
    for backend in ("torch", "faiss", "hnsw") if hnsw else ("torch", "faiss"):
        index, build_s = build(n, backend, queries)
        out[backend] = {"build_s": build_s, **query_times(index, queries, repeats)}
        found = top_ids(index, queries)
        truth = truth or found
        out[backend]["recall_at_10"] = recall(found, truth)
        if backend == "hnsw":
            out["hnsw_ef_sweep"] = ef_sweep(index, queries, truth)
        logger.info("%8d rows %-5s %s", n, backend, {k: round(v, 4) for k, v in out[backend].items()})
        del index
        gc.collect()
    return out


def unit_chunks(n: int, seed: int) -> Any:
    """The rows of ``unit_rows(n, seed)``, a chunk at a time (no full float copy for compact indexes)."""
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, CHUNK):
        yield torch.nn.functional.normalize(torch.randn(min(CHUNK, n - start), DIM, generator=gen), dim=-1)


def compact_size(n: int, queries: torch.Tensor, repeats: int, encodings: list[str]) -> dict[str, Any]:
    """Float32 torch search vs each compact encoding over the same n rows."""
    from imagebind_sdk.vectors.compact import Ranges

    index = EmbeddingIndex(backend="torch")
    for chunk in unit_chunks(n, seed=n):
        index.add(chunk)
    out: dict[str, Any] = {"rows": n, "float32": {"bytes": index.embeddings.numel() * 4,
                                                   **query_times(index, queries, repeats)}}
    truth = top_ids(index, queries)
    del index
    gc.collect()
    calibration = unit_rows(10_000, seed=7)
    ranges = Ranges(calibration.min(0).values, calibration.max(0).values, "10k other random unit vectors")
    for name in encodings:  # "binary*16": binary rescoring 16 x top_k candidates
        encoding, _, multiplier = name.partition("*")
        compact = EmbeddingIndex(embedding_dtype=encoding, ranges=ranges if "int8" in encoding else None,
                                 rescore_multiplier=int(multiplier or 4))
        start = time.perf_counter()
        for chunk in unit_chunks(n, seed=n):
            compact.add(chunk)
        build_s = time.perf_counter() - start
        out[name] = {"bytes": compact._compact.nbytes, "build_s": build_s,
                         **query_times(compact, queries, repeats), "recall_at_10": recall(top_ids(compact, queries), truth)}
        logger.info("%8d rows %-8s %s", n, name, {k: round(v, 4) for k, v in out[name].items()})
        del compact
        gc.collect()
    logger.info("%8d rows float32  %s", n, {k: round(v, 4) for k, v in out["float32"].items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--hnsw-sizes", default="100000", help="HNSW build is slow: 1M rows takes hours on 2 cores")
    parser.add_argument("--batch", type=int, default=100, help="queries per batched search")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument("--compact", action="store_true", help="compact vectors (embedding_dtype) vs float32")
    parser.add_argument("--encodings", default="float16,int8,binary,binary*16,binary*64",
                        help="binary*M: binary rescoring M x top_k candidates (default M: 4)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import faiss

    faiss.omp_set_num_threads(torch.get_num_threads())
    queries = unit_rows(args.batch, seed=1)
    hnsw_sizes = {int(s) for s in args.hnsw_sizes.split(",") if s}
    if args.compact:
        results = {"dim": DIM, "top_k": TOP_K, "threads": torch.get_num_threads(), "compact": [
            compact_size(int(n), queries, args.repeats, args.encodings.split(",")) for n in args.sizes.split(",")]}
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2))
        return
    results = {
        "dim": DIM, "top_k": TOP_K, "threads": torch.get_num_threads(), "faiss": faiss.__version__,
        "sizes": [one_size(int(n), queries, args.repeats, int(n) in hnsw_sizes) for n in args.sizes.split(",")],
    }
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
