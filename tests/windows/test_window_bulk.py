"""embed_files(..., windows=True): one Windows per recording, rows into an index with timestamps."""

from __future__ import annotations

import shutil
from fractions import Fraction

import pytest
import torch

from imagebind_sdk.bulk.files import embed_files, load_bulk_output
from imagebind_sdk.retrieval.index import EmbeddingIndex


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
    with pytest.raises(ValueError, match="num_workers=2 is not supported with windows=True"):
        tiny_model.embed_files(tmp_path, windows=True, num_workers=2)


def test_windows_to_folder_resume_and_read_back(tiny_model, assets_dir, tmp_path):
    """Windows committed to a Parquet folder; a re-run skips them; read back = in-memory embed_windows."""
    import pyarrow.parquet as pq

    media = tmp_path / "media"
    media.mkdir()
    shutil.copyfile(assets_dir / "long_48k_mono_0.wav", media / "a_talk.wav")
    shutil.copyfile(assets_dir / "video" / "wind_noise.mp4", media / "b_clip.mp4")
    (media / "d_broken.wav").write_bytes(b"not audio")
    out = tmp_path / "out"
    first = embed_files(tiny_model, media, windows=True, out=out, hop_s=Fraction(3, 2))
    assert first.summary() == {"files": 3, "embedded": 2, "already_done": 0, "failed": 1, "unsupported": 0,
                               "windows": 8 + 7}
    table = pq.read_table(out)  # any Parquet reader: one row per window (+ the failed file's row)
    assert table.num_rows == 16 and table.column("start_s").null_count == 1

    second = embed_files(tiny_model, media, windows=True, out=out, hop_s=Fraction(3, 2))
    assert (second.embedded, second.already_done, len(second.failed)) == (0, 2, 1)
    loaded = load_bulk_output(out)
    assert [w.source for w in loaded] == [str(media / "a_talk.wav"), str(media / "b_clip.mp4")]
    assert [p.endswith("d_broken.wav") for p, _ in loaded.failed] == [True]
    alone = tiny_model.embed_windows(audio=str(media / "a_talk.wav"), video=str(media / "b_clip.mp4"),
                                     hop_s=Fraction(3, 2))
    for got, resumed, want in zip(loaded, second.windows, alone):
        assert (got.kind, len(got)) == (want.kind, len(want))
        assert torch.equal(got.vectors, want.vectors) and torch.equal(resumed.vectors, want.vectors)
        assert torch.equal(got.start_s, want.start_s) and torch.equal(got.end_s, want.end_s)

    (media / "a_talk.wav").touch()  # changed mtime: windowed again, the old rows dropped
    third = embed_files(tiny_model, media, windows=True, out=out, hop_s=Fraction(3, 2))
    assert (third.embedded, third.already_done) == (1, 1)
    assert pq.read_table(out).num_rows == 16
    with pytest.raises(ValueError, match="records windows .* this job embeds windows"):
        embed_files(tiny_model, media, windows=True, out=out)  # other spans (hop 1 s)
    with pytest.raises(ValueError, match="this job embeds whole files"):
        embed_files(tiny_model, media, out=out)


def test_whole_file_parts_have_no_window_columns(tiny_model, assets_dir, tmp_path):
    """Whole-file parts keep the older column set (older versions read them); window parts add start_s/end_s."""
    import pyarrow.parquet as pq

    wav = tmp_path / "a.wav"
    shutil.copyfile(assets_dir / "long_48k_mono_0.wav", wav)
    whole = embed_files(tiny_model, [wav], out=tmp_path / "whole")
    (part,) = (tmp_path / "whole").glob("part-*.parquet")
    assert "start_s" not in pq.read_schema(part).names
    assert torch.equal(load_bulk_output(tmp_path / "whole").audio, whole.embeddings.audio)
    embed_files(tiny_model, [wav, tmp_path / "missing.wav"], windows=True, out=tmp_path / "win")
    assert all({"start_s", "end_s"} <= set(pq.read_schema(p).names) for p in (tmp_path / "win").glob("part-*"))
