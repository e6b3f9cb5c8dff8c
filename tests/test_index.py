"""Tests for imagebind_sdk.retrieval.index.EmbeddingIndex."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from imagebind_sdk.retrieval.index import EmbeddingIndex

R2 = 1 / math.sqrt(2)


def _index() -> EmbeddingIndex:
    index = EmbeddingIndex(dim=2)
    index.add(
        torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]),
        ids=["right", "up", "diag"],
        metadata=[{"path": "r.jpg"}, {"path": "u.jpg", "tags": ["a"]}, None],
    )
    return index


def test_add_and_properties() -> None:
    index = _index()
    assert len(index) == 3 and index.dim == 2
    assert index.ids == ["right", "up", "diag"]
    assert index.metadata == [{"path": "r.jpg"}, {"path": "u.jpg", "tags": ["a"]}, {}]
    assert "up" in index and "left" not in index
    emb = index.embeddings
    assert emb.dtype == torch.float32 and emb.shape == (3, 2)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(emb[2], torch.tensor([R2, R2]))
    assert repr(index) == "EmbeddingIndex(n=3, dim=2)"


def test_default_ids_run_on_and_numpy_input() -> None:
    index = EmbeddingIndex()
    assert index.add(np.eye(3)[:2]) == ["0", "1"]
    assert index.add(np.array([0.0, 0.0, 1.0])) == ["2"]
    assert index.ids == ["0", "1", "2"] and index.dim == 3
    assert index.embeddings.shape == (3, 3)


def test_search_keys_order_and_metadata() -> None:
    hits = _index().search(torch.tensor([1.0, 0.0]), top_k=2)
    assert len(hits) == 1
    first, second = hits[0]
    assert first == {
        "corpus_id": 0, "id": "right", "score": pytest.approx(1.0), "metadata": {"path": "r.jpg"}
    }
    assert second["id"] == "diag" and second["score"] == pytest.approx(R2)


def test_search_multi_query_ties_and_top_k() -> None:
    index = _index()
    index.add(torch.tensor([[5.0, 0.0]]), ids=["right2"])
    hits = index.search(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), top_k=10)
    assert [h["id"] for h in hits[0]] == ["right", "right2", "diag", "up"]
    assert [h["corpus_id"] for h in hits[1]] == [1, 2, 0, 3]
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        index.search(torch.tensor([1.0, 0.0]), top_k=0)


def test_search_result_metadata_is_a_copy() -> None:
    index = _index()
    hit = index.search(torch.tensor([0.0, 1.0]), top_k=1)[0][0]
    hit["metadata"]["tags"].append("mutated")
    assert index.metadata[1] == {"path": "u.jpg", "tags": ["a"]}


def test_empty_index_search() -> None:
    assert EmbeddingIndex().search(torch.ones(2, 4)) == [[], []]


def test_add_errors_leave_index_unchanged() -> None:
    index = _index()
    with pytest.raises(ValueError, match="duplicate id 'up'"):
        index.add(torch.ones(1, 2), ids=["up"])
    with pytest.raises(ValueError, match="duplicate id 'x'"):
        index.add(torch.ones(2, 2), ids=["x", "x"])
    with pytest.raises(ValueError, match="dimensions differ"):
        index.add(torch.ones(1, 3))
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        index.add(torch.ones(1, 2), metadata=[{"t": torch.ones(1)}])
    with pytest.raises(ValueError, match="2 metadata entries for 1"):
        index.add(torch.ones(1, 2), metadata=[{}, {}])
    with pytest.raises(ValueError, match="1 ids for 2"):
        index.add(torch.ones(2, 2), ids=["z"])
    with pytest.raises(TypeError, match="ids must be strings"):
        index.add(torch.ones(1, 2), ids=[7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="NaN"):
        index.add(torch.tensor([[float("nan"), 1.0]]))
    assert len(index) == 3 and index.embeddings.shape == (3, 2)
    with pytest.raises(ValueError, match="dim must be"):
        EmbeddingIndex(dim=0)
    with pytest.raises(ValueError, match="dimensions differ"):
        index.search(torch.ones(3))


def test_save_load_round_trip(tmp_path: Path) -> None:
    index = _index()
    queries = torch.tensor([[1.0, 0.2], [-0.3, 1.0]])
    before = index.search(queries, top_k=3)
    out = index.save(tmp_path / "idx")
    assert (out / "embeddings.safetensors").is_file() and (out / "index.json").is_file()
    info = json.loads((out / "index.json").read_text())
    assert info["format_version"] == 1 and info["dim"] == 2 and info["ids"] == index.ids
    loaded = EmbeddingIndex.load(out)
    assert loaded.ids == index.ids and loaded.metadata == index.metadata and loaded.dim == 2
    assert torch.equal(loaded.embeddings, index.embeddings)
    assert loaded.search(queries, top_k=3) == before
    loaded.add(torch.tensor([[0.0, -1.0]]))  # still usable; default id continues
    assert loaded.ids[-1] == "3"


def test_save_load_empty(tmp_path: Path) -> None:
    EmbeddingIndex(dim=4).save(tmp_path)
    loaded = EmbeddingIndex.load(tmp_path)
    assert len(loaded) == 0 and loaded.dim == 4 and loaded.embeddings.shape == (0, 4)


def test_load_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="index directory not found"):
        EmbeddingIndex.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="missing embeddings.safetensors, index.json"):
        EmbeddingIndex.load(tmp_path)
    _index().save(tmp_path)
    (tmp_path / "index.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing index.json"):
        EmbeddingIndex.load(tmp_path)


def test_load_inconsistent(tmp_path: Path) -> None:
    _index().save(tmp_path)
    info_path = tmp_path / "index.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "ids": info["ids"][:2]}))
    with pytest.raises(ValueError, match=r"inconsistent index.*shape \(3, 2\), 2 ids"):
        EmbeddingIndex.load(tmp_path)
    info_path.write_text(json.dumps({**info, "format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        EmbeddingIndex.load(tmp_path)
    info_path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        EmbeddingIndex.load(tmp_path)
    info_path.write_text(json.dumps({**info, "ids": ["a", "a", "b"]}))
    with pytest.raises(ValueError, match="duplicate id"):
        EmbeddingIndex.load(tmp_path)


# -- issue 9 item 15: index model.embed() results as the CLI does ---------------------
def _mixed() -> "Embeddings":
    from imagebind_sdk import Embeddings

    return Embeddings(
        {"vision": torch.tensor([[1.0, 0.0], [0.6, 0.8]]), "thermal": torch.tensor([[0.99, 0.1]])},
        sources={"vision": ["a.jpg", "b.jpg"], "thermal": ["t.jpg"]},
    )


def test_add_embeddings_uses_sources_as_ids_and_kind_as_metadata() -> None:
    index = EmbeddingIndex()
    assert index.add(_mixed()) == ["a.jpg", "b.jpg", "t.jpg"]
    assert index.metadata == [{"kind": "vision"}, {"kind": "vision"}, {"kind": "thermal"}]
    assert torch.allclose(index.embeddings[2], torch.nn.functional.normalize(torch.tensor([0.99, 0.1]), dim=0))
    other = EmbeddingIndex()
    other.add(_mixed(), ids=["x", "y", "z"], metadata=[{"n": 1}, None, {"n": 3}])
    assert other.ids == ["x", "y", "z"] and other.metadata[2] == {"kind": "thermal", "n": 3}


def test_add_embeddings_with_repeated_sources_asks_for_ids() -> None:
    from imagebind_sdk import Embeddings

    same = Embeddings({"vision": torch.eye(2)}, sources={"vision": ["<torch.Tensor>", "<torch.Tensor>"]})
    with pytest.raises(ValueError, match="sources repeat .*pass unique ids="):
        EmbeddingIndex().add(same)


def test_search_kinds_filters_a_mixed_index() -> None:
    index = EmbeddingIndex()
    index.add(_mixed())
    query = torch.tensor([1.0, 0.05])
    assert [h["id"] for h in index.search(query, top_k=3)[0]] == ["a.jpg", "t.jpg", "b.jpg"]
    hits = index.search(query, top_k=3, kinds=["vision"])[0]
    assert [(h["id"], h["corpus_id"], h["metadata"]["kind"]) for h in hits] == [("a.jpg", 0, "vision"), ("b.jpg", 1, "vision")]
    assert [h["id"] for h in index.search(query, top_k=1, kinds="thermal")[0]] == ["t.jpg"]
    assert index.search(query, top_k=2, kinds=["audio"]) == [[]]  # a kind with no rows
    with pytest.raises(ValueError, match=r"kinds must name input kinds .*got \['image'\]; this index holds \['thermal', 'vision'\]"):
        index.search(query, kinds=["image"])


def test_search_kinds_reads_cli_modality_metadata(tmp_path: Path) -> None:
    index = EmbeddingIndex()
    index.add(torch.tensor([[1.0, 0.0], [1.0, 0.1]]), ids=["s.wav", "p.jpg"],
              metadata=[{"modality": "audio"}, {"modality": "vision"}])
    index.save(tmp_path / "idx")
    hits = EmbeddingIndex.load(tmp_path / "idx").search(torch.tensor([1.0, 0.0]), kinds=["vision"])[0]
    assert [h["id"] for h in hits] == ["p.jpg"]
