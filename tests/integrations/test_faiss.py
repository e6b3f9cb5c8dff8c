"""EmbeddingIndex on real FAISS: exact flat search equals brute force, HNSW recall, save/load, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

faiss = pytest.importorskip("faiss", reason="needs faiss: pip install 'imagebind-sdk[faiss]'")

from imagebind_sdk.retrieval import index_faiss  # noqa: E402
from imagebind_sdk.retrieval.index import EmbeddingIndex  # noqa: E402

DIM = 64


def _unit(n: int, seed: int, dim: int = DIM) -> torch.Tensor:
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.normalize(x, dim=-1)


def _pairs(hits: list[list[dict]]) -> list[list[tuple[int, float]]]:
    return [[(h["corpus_id"], h["score"]) for h in row] for row in hits]


def _filled(backend: str, n: int = 2000, **options: int) -> EmbeddingIndex:
    index = EmbeddingIndex(backend=backend, **options)
    rows = _unit(n, 0)
    # Two adds: the FAISS index must follow rows appended after it was built.
    index.add(rows[: n // 2], metadata=[{"i": i} for i in range(n // 2)])
    index.search(rows[:1], top_k=1)
    index.add(rows[n // 2 :], metadata=[{"i": i} for i in range(n // 2, n)])
    return index


def test_flat_equals_brute_force() -> None:
    exact, flat = _filled("torch"), _filled("faiss")
    queries = _unit(20, 1)
    want, got = exact.search(queries, top_k=10), flat.search(queries, top_k=10)
    assert [[h["id"] for h in r] for r in got] == [[h["id"] for h in r] for r in want]
    assert [[h["metadata"] for h in r] for r in got] == [[h["metadata"] for h in r] for r in want]
    diff = np.abs(np.array([[s for _, s in r] for r in _pairs(got)]) - [[s for _, s in r] for r in _pairs(want)])
    assert diff.max() < 1e-5
    assert flat.backend == "faiss"


def test_top_k_above_size_and_empty() -> None:
    index = EmbeddingIndex(backend="faiss")
    assert index.search(_unit(1, 2), top_k=3) == [[]]
    index.add(_unit(4, 3))
    assert len(index.search(_unit(2, 4), top_k=10)[1]) == 4


def test_hnsw_recall() -> None:
    index, exact = _filled("hnsw", n=5000), _filled("torch", n=5000)
    queries = _unit(50, 5)
    want = [{h["corpus_id"] for h in r} for r in exact.search(queries, top_k=10)]
    got = [{h["corpus_id"] for h in r} for r in index.search(queries, top_k=10)]
    recall = np.mean([len(w & g) / 10 for w, g in zip(want, got)])
    assert recall >= 0.95, recall


def test_auto_switches_at_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    index = EmbeddingIndex()
    assert index.backend == "auto"
    index.add(_unit(30, 6))
    assert index._backend.active(len(index)) == "torch"
    monkeypatch.setattr(index_faiss, "AUTO_MIN_ROWS", 20)
    assert index._backend.active(len(index)) == "faiss"
    want = EmbeddingIndex(backend="torch")
    want.add(index.embeddings)
    q = _unit(3, 7)
    assert [[h["corpus_id"] for h in r] for r in index.search(q, 5)] == [
        [h["corpus_id"] for h in r] for r in want.search(q, 5)
    ]


@pytest.mark.parametrize("backend", ["faiss", "hnsw"])
def test_save_load_same_folder_format(tmp_path: Path, backend: str) -> None:
    index = _filled(backend, n=500)
    q = _unit(5, 8)
    before = index.search(q, top_k=5)
    index.save(tmp_path / "ix")
    info = json.loads((tmp_path / "ix" / "index.json").read_text())
    assert info["backend"] == backend and info["format_version"] == 1
    assert (tmp_path / "ix" / "embeddings.safetensors").is_file()
    assert (tmp_path / "ix" / index_faiss.HNSW_FILE).is_file() == (backend == "hnsw")
    loaded = EmbeddingIndex.load(tmp_path / "ix")
    assert loaded.backend == backend
    assert loaded.search(q, top_k=5) == before


def test_old_folder_loads_as_auto(tmp_path: Path) -> None:
    index = EmbeddingIndex(backend="torch")
    index.add(_unit(3, 9))
    index.save(tmp_path / "ix")
    info = json.loads((tmp_path / "ix" / "index.json").read_text())
    del info["backend"]  # as written before backends existed
    (tmp_path / "ix" / "index.json").write_text(json.dumps(info))
    assert EmbeddingIndex.load(tmp_path / "ix").backend == "auto"


@pytest.mark.parametrize("backend,cls", [("torch", "IndexFlatIP"), ("hnsw", "IndexHNSWFlat")])
def test_to_faiss(backend: str, cls: str) -> None:
    index = EmbeddingIndex(backend=backend)
    rows = _unit(300, 10)
    index.add(rows * 3.0)  # stored normalised, exported normalised
    exported = index.to_faiss()
    assert type(exported).__name__ == cls and exported.ntotal == 300
    scores, ids = exported.search(rows[:4].numpy(), 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3]
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)


def test_bad_backend_and_options() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        EmbeddingIndex(backend="annoy")
    with pytest.raises(ValueError, match="ef_search must be a positive int, got 0"):
        EmbeddingIndex(backend="hnsw", ef_search=0)
