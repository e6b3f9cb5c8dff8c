"""``EmbeddingIndex(embedding_dtype=...)`` and :mod:`imagebind_sdk.vectors.compact`: the quantisation
conventions, compact search with float rescoring, save/load, and the fixed calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from imagebind_sdk.retrieval.index import EmbeddingIndex
from imagebind_sdk.vectors.compact import CALIBRATION_PROMPTS, ENCODINGS, Ranges, calibrate, dequantize, quantize

DIM = 256


def unit(n: int, seed: int, dim: int = DIM) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


@pytest.fixture(scope="module")
def data():
    corpus, queries, calibration = unit(3000, 0), unit(40, 1), unit(500, 2)
    ranges = Ranges(calibration.min(0).values, calibration.max(0).values, "test set")
    truth = EmbeddingIndex(backend="torch")
    truth.add(corpus)
    return corpus, queries, ranges, [{h["corpus_id"] for h in row} for row in truth.search(queries, top_k=10)]


def test_conventions():
    x = torch.tensor([[-1.0, -0.5, 0.0, 0.25, 1.0, 2.0, -3.0, 0.5, 0.1]])
    ranges = Ranges(torch.full((9,), -1.0), torch.full((9,), 1.0))
    assert quantize(x, "uint8", ranges).tolist() == [[0, 64, 127, 159, 255, 255, 0, 191, 140]]  # clipped outside; 127.5 rounds to even
    assert quantize(x, "int8", ranges).tolist() == [[-128, -64, -1, 31, 127, 127, -128, 63, 12]]
    packed = np.packbits(x.numpy() > 0, axis=-1)  # numpy's order: the first dimension is the top bit
    assert quantize(x, "ubinary").tolist() == packed.tolist() == [[0b00011101, 0b10000000]]
    assert quantize(x, "binary").tolist() == (packed.astype(int) - 128).tolist()
    assert quantize(x, "float16").dtype == torch.float16
    assert dequantize(quantize(x, "binary"), "binary", dim=9).tolist() == [[-1, -1, -1, 1, 1, 1, -1, 1, 1]]
    back = dequantize(quantize(x, "int8", ranges), "int8", ranges)
    assert (back - x)[:, :5].abs().max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("encoding, least_recall, bytes_per_row", [
    ("float16", 1.0, DIM * 2), ("int8", 0.9, DIM), ("uint8", 0.9, DIM), ("binary", 0.15, DIM // 8),
    ("ubinary", 0.15, DIM // 8)])  # random data: chance is 0.003
def test_compact_search(data, tmp_path, encoding, least_recall, bytes_per_row):
    corpus, queries, ranges, truth = data
    index = EmbeddingIndex(embedding_dtype=encoding, ranges=ranges if "int8" in encoding else None)
    index.add(corpus[:1000])
    index.add(corpus[1000:])
    hits = index.search(queries, top_k=10)
    recall = np.mean([len({h["corpus_id"] for h in row} & t) / 10 for row, t in zip(hits, truth)])
    assert recall >= least_recall, recall
    assert index._compact.nbytes == len(corpus) * bytes_per_row and index.embedding_dtype == encoding
    # scores are the float query against the dequantised rows (the rescoring), best first
    rows = index.embeddings
    for q, row in zip(queries[:3], hits):
        assert [h["score"] for h in row] == pytest.approx([float(q @ rows[h["corpus_id"]]) for h in row], abs=1e-5)
        assert [h["score"] for h in row] == sorted((h["score"] for h in row), reverse=True)
    index.save(tmp_path)
    info = json.loads((tmp_path / "index.json").read_text())
    assert info["format_version"] == 2 and info["embedding_dtype"] == encoding
    assert load_file(str(tmp_path / "embeddings.safetensors"))["embeddings"].dtype == quantize(corpus[:1], encoding, ranges).dtype
    back = EmbeddingIndex.load(tmp_path)
    assert back.search(queries, top_k=10) == hits and back.embedding_dtype == encoding


def test_binary_rescoring_beats_hamming_alone(data):
    corpus, queries, _, truth = data
    index = EmbeddingIndex(embedding_dtype="binary", rescore_multiplier=1)  # no room to rescore
    index.add(corpus)
    wide = EmbeddingIndex(embedding_dtype="binary", rescore_multiplier=10)
    wide.add(corpus)
    def recall(ix):
        return np.mean([len({h["corpus_id"] for h in r} & t) for r, t in zip(ix.search(queries, top_k=10), truth)])
    assert recall(wide) > recall(index)


def test_compact_errors():
    with pytest.raises(ValueError, match="ranges="):
        EmbeddingIndex(dim=4, embedding_dtype="int8")
    with pytest.raises(ValueError, match="embedding_dtype: expected one of"):
        EmbeddingIndex(embedding_dtype="int4")
    with pytest.raises(ValueError, match="backend='auto'"):
        EmbeddingIndex(embedding_dtype="binary", backend="hnsw")
    with pytest.raises(ValueError, match="high must exceed low"):
        EmbeddingIndex(embedding_dtype="int8", ranges=[[0.0, 1.0], [1.0, 1.0]])
    index = EmbeddingIndex(embedding_dtype="int8", ranges=[[-1.0] * 4, [1.0] * 4])
    with pytest.raises(ValueError, match="ranges have dim 4"):
        index.add(unit(2, 0, dim=8))


def test_calibration_is_fixed_per_model(tiny_model):
    first, again = calibrate(tiny_model), calibrate(lambda texts: tiny_model.embed(text=texts).text)
    assert first.dim == tiny_model.embedding_dim and first.digest == again.digest
    vectors = tiny_model.embed(text=list(CALIBRATION_PROMPTS[:8])).text
    assert ((vectors >= first.low - 1e-5) & (vectors <= first.high + 1e-5)).all()  # its own vectors lie inside
    index = EmbeddingIndex(embedding_dtype="int8", ranges=first)
    index.add(tiny_model.embed(text=["a dog", "a car", "a bird"]).text, ids=["dog", "car", "bird"])
    assert index.search(tiny_model.embed(text="a car").text, top_k=1)[0][0]["id"] == "car"
    assert set(ENCODINGS) == {"float32", "float16", "int8", "uint8", "binary", "ubinary"}


@pytest.mark.parametrize("encoding", ["int8", "uint8", "binary", "ubinary"])
def test_faiss_and_torch_paths_agree(data, monkeypatch, encoding):
    """FAISS (codes held by its index) and the torch fallback give the same hits and scores."""
    pytest.importorskip("faiss", reason="pip install 'imagebind-sdk[faiss]'")
    import imagebind_sdk.retrieval.compact as compact

    corpus, queries, ranges, _ = data
    def build():
        index = EmbeddingIndex(embedding_dtype=encoding, ranges=ranges if "int8" in encoding else None)
        index.add(corpus[:1000])
        index.search(queries[:1], top_k=1)  # with faiss: the codes move into the FAISS index
        index.add(corpus[1000:])
        return index
    with_faiss = build()
    assert with_faiss._compact._faiss is not None
    hits = with_faiss.search(queries, top_k=10)
    monkeypatch.setattr(compact, "faiss_module", lambda: None)
    without = build()
    assert without._compact._faiss is None and torch.equal(without._compact.packed, with_faiss._compact.packed)
    plain = without.search(queries, top_k=10)
    if "int8" in encoding:
        for a, b in zip(hits, plain):
            assert [h["corpus_id"] for h in a] == [h["corpus_id"] for h in b]
            assert [h["score"] for h in a] == pytest.approx([h["score"] for h in b], abs=1e-5)
    else:  # the Hamming pass breaks distance ties at its cut differently: most candidates agree
        same = [len({h["corpus_id"] for h in a} & {h["corpus_id"] for h in b}) for a, b in zip(hits, plain)]
        assert np.mean(same) >= 8
