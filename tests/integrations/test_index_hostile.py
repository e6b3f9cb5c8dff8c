"""Saved indexes are untrusted files: checksums, foreign graphs, NaN rows; zero queries; huge top_k."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

faiss = pytest.importorskip("faiss", reason="needs faiss: pip install 'imagebind-sdk[faiss]'")

from imagebind_sdk.vectors import ops  # noqa: E402
from imagebind_sdk.retrieval.index import EmbeddingIndex  # noqa: E402
from imagebind_sdk.retrieval.index_faiss import HNSW_EF_SEARCH, HNSW_FILE  # noqa: E402


def _unit(n: int, seed: int, dim: int = 16) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _saved(folder: Path, seed: int, n: int = 50, dim: int = 16) -> Path:
    index = EmbeddingIndex(backend="hnsw", ef_search=64, ef_construction=40)
    index.add(_unit(n, seed, dim))
    index.search(_unit(1, 99, dim), top_k=1)
    return index.save(folder)


def _vouch(folder: Path, name: str) -> None:
    """Rewrite index.json's checksum of ``name`` as an attacker who edits both files would."""
    info = json.loads((folder / "index.json").read_text())
    info["checksums"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "index.json").write_text(json.dumps(info))


def test_graph_of_another_index_with_the_same_row_count_is_refused(tmp_path: Path) -> None:
    mine, theirs = _saved(tmp_path / "mine", 0), _saved(tmp_path / "theirs", 1)
    (mine / HNSW_FILE).write_bytes((theirs / HNSW_FILE).read_bytes())
    with pytest.raises(ValueError, match=r"hnsw\.faiss: its sha256 differs"):
        EmbeddingIndex.load(mine)


def test_changed_rows_are_refused(tmp_path: Path) -> None:
    folder = _saved(tmp_path / "ix", 0)
    save_file({"embeddings": _unit(50, 5)}, str(folder / "embeddings.safetensors"))
    with pytest.raises(ValueError, match=r"embeddings\.safetensors: its sha256 differs"):
        EmbeddingIndex.load(folder)


def test_garbage_graph_is_a_value_error_naming_the_file(tmp_path: Path) -> None:
    folder = _saved(tmp_path / "ix", 0)
    (folder / HNSW_FILE).write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError, match=r"hnsw\.faiss: its sha256 differs"):
        EmbeddingIndex.load(folder)
    _vouch(folder, HNSW_FILE)  # even with a matching checksum: no raw RuntimeError
    with pytest.raises(ValueError, match=r"hnsw\.faiss: not a readable FAISS index"):
        EmbeddingIndex.load(folder)


def test_graph_of_another_dimension_is_a_value_error(tmp_path: Path) -> None:
    folder, other = _saved(tmp_path / "ix", 0), _saved(tmp_path / "other", 1, dim=8)
    (folder / HNSW_FILE).write_bytes((other / HNSW_FILE).read_bytes())
    _vouch(folder, HNSW_FILE)
    with pytest.raises(ValueError, match=r"hnsw\.faiss: a hnsw graph of 50 rows of dim 8, expected hnsw with 50 rows of dim 16"):
        EmbeddingIndex.load(folder)


def test_nan_row_is_refused_on_load(tmp_path: Path) -> None:
    folder = _saved(tmp_path / "ix", 0)
    rows = _unit(50, 0)
    rows[7, 3] = float("nan")
    save_file({"embeddings": rows}, str(folder / "embeddings.safetensors"))
    _vouch(folder, "embeddings.safetensors")
    with pytest.raises(ValueError, match=r"embeddings\.safetensors: row 7 \('7'\) holds NaN"):
        EmbeddingIndex.load(folder)


def test_index_without_checksums_rebuilds_its_graph(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Older indexes list no checksums: their rows load, their graph is not trusted but rebuilt."""
    mine, theirs = _saved(tmp_path / "mine", 0), _saved(tmp_path / "theirs", 1)
    q = _unit(3, 7)
    expected = EmbeddingIndex.load(mine).search(q, top_k=3)
    (mine / HNSW_FILE).write_bytes((theirs / HNSW_FILE).read_bytes())
    info = json.loads((mine / "index.json").read_text())
    del info["checksums"]
    (mine / "index.json").write_text(json.dumps(info))
    loaded = EmbeddingIndex.load(mine)
    assert "rebuilding the graph" in caplog.text
    assert loaded.search(q, top_k=3) == expected


def test_round_trip_keeps_the_saved_graph(tmp_path: Path) -> None:
    folder = _saved(tmp_path / "ix", 0)
    loaded = EmbeddingIndex.load(folder)
    assert loaded._backend._faiss_index is not None  # the graph was used, not rebuilt


@pytest.mark.parametrize("backend", ["torch", "faiss", "hnsw"])
def test_zero_query_is_refused(backend: str) -> None:
    index = EmbeddingIndex(backend=backend)
    index.add(_unit(5, 0))
    with pytest.raises(ValueError, match=r"query is an all-zero vector"):
        index.search(torch.zeros(16), top_k=2)
    with pytest.raises(ValueError, match=r"query\[1\] is an all-zero vector"):
        index.search(torch.stack([_unit(1, 1)[0], torch.zeros(16)]), top_k=2)
    with pytest.raises(ValueError, match=r"all-zero"):
        ops.search(torch.zeros(16), _unit(5, 0))
    with pytest.raises(ValueError, match=r"all-zero"):
        EmbeddingIndex(dim=16).search(torch.zeros(16))


def test_huge_top_k_is_clamped_before_faiss_sizes_its_search() -> None:
    """search(q, 10**8) on HNSW raised efSearch to 10**8 (+650 MB); k is clamped to the rows first."""
    index = EmbeddingIndex(backend="hnsw")
    index.add(_unit(20, 0))
    hits = index.search(_unit(1, 1), top_k=10**8)
    assert len(hits[0]) == 20
    assert index._backend._faiss_index.hnsw.efSearch == HNSW_EF_SEARCH
