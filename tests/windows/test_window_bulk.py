"""embed_files(..., windows=True): one Windows per recording, rows into an index with timestamps."""

from __future__ import annotations

import shutil

import pytest
import torch

from imagebind_sdk.index import EmbeddingIndex


def test_embed_files_windows(tiny_model, assets_dir, tmp_path):
    shutil.copyfile(assets_dir / "long_48k_mono_0.wav", tmp_path / "a_talk.wav")
    shutil.copyfile(assets_dir / "video" / "wind_noise.mp4", tmp_path / "b_clip.mp4")
    shutil.copyfile(assets_dir / "dog_image.jpg", tmp_path / "c_dog.jpg")
    (tmp_path / "d_broken.wav").write_bytes(b"not audio")
    result = tiny_model.embed_files(tmp_path, windows=True)
    assert [w.kind for w in result.windows] == ["audio", "video"]
    assert [len(w) for w in result.windows] == [11, 10]
    assert [p.endswith("c_dog.jpg") for p, _ in result.unsupported] == [True]
    assert [p.endswith("d_broken.wav") for p, _ in result.failed] == [True]
    alone = tiny_model.embed_windows(audio=str(tmp_path / "a_talk.wav"))[0]
    assert torch.equal(result.windows[0].vectors, alone.vectors)
    index = EmbeddingIndex()
    result.windows.add_to(index)
    hit = index.search(alone.vectors[7], top_k=1)[0][0]
    assert hit["metadata"] == {"source": str(tmp_path / "a_talk.wav"), "kind": "audio", "start_s": 7.0, "end_s": 9.0}
    with pytest.raises(ValueError, match="out= is not supported"):
        tiny_model.embed_files(tmp_path, windows=True, out=tmp_path / "out")
