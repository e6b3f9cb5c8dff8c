"""Tests for imagebind_sdk.vectors.embeddings.Embeddings."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from imagebind_sdk.vectors.embeddings import Embeddings
from imagebind_sdk.preprocess import Skipped


def _emb() -> Embeddings:
    text = torch.nn.functional.normalize(torch.arange(12, dtype=torch.float32).reshape(3, 4) + 1, dim=1)
    audio = torch.eye(4)[:2]
    return Embeddings(
        {"text": text, "audio": audio},
        sources={"text": ["a dog", "a cat", "a car"], "audio": ["bark.wav", "meow.wav"]},
        skipped={"audio": [Skipped(index=1, source="broken.wav", error="cannot decode")]},
    )


def test_mapping_protocol() -> None:
    out = _emb()
    assert list(out) == ["text", "audio"]
    assert len(out) == 2
    assert "text" in out and "vision" not in out
    assert out["audio"].shape == (2, 4)
    assert dict(out.items()).keys() == {"text", "audio"}
    assert out.get("vision") is None
    assert out.modalities == ["text", "audio"]
    with pytest.raises(KeyError, match="no embeddings for 'vision'; available: text, audio"):
        out["vision"]


def test_attribute_access() -> None:
    out = _emb()
    assert out.text is out["text"]
    with pytest.raises(AttributeError, match="available modalities: text, audio"):
        out.vision
    assert "text" in dir(out)
    assert not hasattr(out, "_missing_private")


def test_sources_default_and_given() -> None:
    out = Embeddings({"vision": torch.zeros(3, 2)})
    assert out.sources == {"vision": ["0", "1", "2"]}
    assert out.skipped == {"vision": []}
    assert _emb().sources["audio"] == ["bark.wav", "meow.wav"]


def test_skipped() -> None:
    out = _emb()
    assert out.skipped["text"] == []
    assert out.skipped["audio"] == [Skipped(1, "broken.wav", "cannot decode")]
    all_skipped = Embeddings({}, skipped={"audio": [Skipped(0, "x.wav", "bad")]})
    assert all_skipped.skipped == {"audio": [Skipped(0, "x.wav", "bad")]}


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match=r"must be 2-D \(N, D\), got shape \(4,\)"):
        Embeddings({"text": torch.zeros(4)})
    with pytest.raises(ValueError, match=r"sources\['text'\] has 1 entries but embeddings\['text'\] has 2"):
        Embeddings({"text": torch.zeros(2, 3)}, sources={"text": ["only"]})
    with pytest.raises(ValueError, match="without embeddings: \\['audio'\\]"):
        Embeddings({"text": torch.zeros(2, 3)}, sources={"audio": ["x"]})
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        Embeddings({"text": [[1.0, 2.0]]})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="Skipped"):
        Embeddings({}, skipped={"audio": ["oops"]})  # type: ignore[list-item]


def test_numpy() -> None:
    out = _emb()
    arrays = out.numpy()
    assert list(arrays) == ["text", "audio"]
    assert isinstance(arrays["text"], np.ndarray) and arrays["text"].dtype == np.float32
    np.testing.assert_array_equal(arrays["audio"], np.eye(4, dtype=np.float32)[:2])
    assert not hasattr(out, "to_numpy")  # the 0.1 alias is gone (CHANGELOG 0.2.0)
    assert Embeddings({"x": torch.ones(1, 2, dtype=torch.bfloat16)}).numpy()["x"].dtype == np.float32


def test_to_returns_new_object() -> None:
    out = _emb()
    half = out.to(torch.float16)
    assert isinstance(half, Embeddings) and half is not out
    assert half.text.dtype == torch.float16 and out.text.dtype == torch.float32
    assert half.sources == out.sources and half.skipped == out.skipped
    assert out.to("cpu") == out


def test_repr() -> None:
    assert repr(Embeddings({"text": torch.zeros(3, 1024), "audio": torch.zeros(2, 1024)})) == (
        "Embeddings(text=(3, 1024), audio=(2, 1024))"
    )
    assert repr(_emb()) == "Embeddings(text=(3, 4), audio=(2, 4), skipped={'audio': 1})"
    assert repr(Embeddings({})) == "Embeddings()"


def test_equality() -> None:
    assert _emb() == _emb()
    other = _emb()
    changed = Embeddings({"text": other.text + 1, "audio": other.audio}, sources=other.sources)
    assert _emb() != changed
    assert _emb() != {"text": 1}


def test_save_load_round_trip(tmp_path: Path) -> None:
    out = _emb()
    path = out.save(tmp_path / "emb.safetensors")
    assert path.is_file()
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == {"text", "audio"}
        info = json.loads(f.metadata()["imagebind_sdk.vectors.embeddings"])
    assert info["format_version"] == 1
    assert info["sources"]["text"] == ["a dog", "a cat", "a car"]
    assert info["skipped"]["audio"] == [{"index": 1, "source": "broken.wav", "error": "cannot decode"}]
    loaded = Embeddings.load(path)
    assert loaded == out
    assert list(loaded) == ["text", "audio"]  # insertion order restored
    assert loaded.skipped["audio"][0] == Skipped(1, "broken.wav", "cannot decode")


def test_save_shared_storage_views_and_empty(tmp_path: Path) -> None:
    big = torch.eye(4)
    out = Embeddings({"a": big[:2], "b": big[2:], "c": torch.empty(0, 4)})
    loaded = Embeddings.load(out.save(tmp_path / "views.safetensors"))
    assert loaded == out and loaded.c.shape == (0, 4)


def test_load_plain_safetensors_and_errors(tmp_path: Path) -> None:
    plain = tmp_path / "plain.safetensors"
    save_file({"vision": torch.ones(2, 3)}, str(plain))
    loaded = Embeddings.load(plain)
    assert loaded.sources == {"vision": ["0", "1"]}
    with pytest.raises(FileNotFoundError, match="not found"):
        Embeddings.load(tmp_path / "missing.safetensors")
    future = tmp_path / "future.safetensors"
    meta = {"imagebind_sdk.vectors.embeddings": json.dumps({"format_version": 99})}
    save_file({"vision": torch.ones(2, 3)}, str(future), metadata=meta)
    with pytest.raises(ValueError, match="format_version 99"):
        Embeddings.load(future)


def test_copy_and_deepcopy() -> None:
    out = _emb()
    assert copy.copy(out) == out
    assert copy.deepcopy(out) == out
