"""Hugging Face datasets feature values as embed() inputs, with the real datasets and torchcodec.

A local Dataset is built from ../shared/assets (no network). Values that datasets
decodes itself (PIL images; torchcodec decoders that remember their file) must give
exactly the vectors of embed(path); hand-made torchcodec decoders are compared with
stated tolerances (see each test).
"""

from __future__ import annotations

import numpy as np
import pytest

datasets = pytest.importorskip("datasets", reason="pip install 'imagebind-sdk[datasets]'")

from datasets import Audio, Dataset, Image, Video

from conftest import ASSETS, require_system_library
from imagebind_sdk.preprocess.hf_datasets import dataset_value

EXACT = 1e-6
IMAGES = ["dog_image.jpg", "car_image.jpg", "bird_image.jpg"]
SOUNDS = ["dog_audio.wav", "mid_22k_stereo_0.flac", "bird_audio.wav"]


FFMPEG_APT = "libavcodec59 libavformat59 libavutil57 libswresample4 libswscale6 libavdevice59 libavfilter8"


def _decode_with_torchcodec():
    """torchcodec's decoders, after decoding one sample file: torchcodec imports without FFmpeg
    and loads FFmpeg's shared libraries only at the first decode."""
    from torchcodec.decoders import AudioDecoder, VideoDecoder

    AudioDecoder(str(ASSETS / SOUNDS[0])).get_all_samples()
    return AudioDecoder, VideoDecoder


def _torchcodec():
    """torchcodec's decoders, or a skip (a failure under CI) naming FFmpeg's apt packages."""
    return require_system_library(_decode_with_torchcodec, FFMPEG_APT, needed_for="torchcodec (datasets' decoder)")


@pytest.fixture(scope="module")
def assets_ds(assets_dir):
    _torchcodec()
    data = {"image": [str(assets_dir / n) for n in IMAGES], "audio": [str(assets_dir / n) for n in SOUNDS]}
    return Dataset.from_dict(data).cast_column("image", Image()).cast_column("audio", Audio())


def test_map_adds_embedding_column_equal_to_embed(assets_ds, tiny_model, assets_dir):
    def embed_batch(batch):
        out = tiny_model.embed(vision=batch["image"], audio=batch["audio"])
        return {"image_embedding": out.vision.numpy(), "audio_embedding": out.audio.numpy()}

    # 2: the last batch is partial. new_fingerprint: datasets would otherwise pickle the model to hash embed_batch.
    mapped = assets_ds.map(embed_batch, batched=True, batch_size=2, new_fingerprint="tiny-test")
    direct = tiny_model.embed(vision=[assets_dir / n for n in IMAGES], audio=[assets_dir / n for n in SOUNDS])
    np.testing.assert_allclose(np.array(mapped["image_embedding"]), direct.vision.numpy(), atol=EXACT)
    np.testing.assert_allclose(np.array(mapped["audio_embedding"]), direct.audio.numpy(), atol=EXACT)


def test_undecoded_values_and_sources(assets_ds, tiny_model, assets_dir):
    raw = assets_ds.cast_column("image", Image(decode=False)).cast_column("audio", Audio(decode=False))
    row = raw[0]
    assert set(row["image"]) == {"bytes", "path"} and set(row["audio"]) == {"bytes", "path"}
    with_bytes = {"bytes": (assets_dir / IMAGES[1]).read_bytes(), "path": IMAGES[1]}  # as in a pushed dataset
    out = tiny_model.embed(vision=[row["image"], with_bytes], audio=raw[:]["audio"])
    direct = tiny_model.embed(vision=[assets_dir / IMAGES[0], assets_dir / IMAGES[1]],
                              audio=[assets_dir / n for n in SOUNDS])
    np.testing.assert_allclose(out.vision.numpy(), direct.vision.numpy(), atol=EXACT)
    np.testing.assert_allclose(out.audio.numpy(), direct.audio.numpy(), atol=EXACT)
    assert out.sources["vision"] == [str(assets_dir / IMAGES[0]), IMAGES[1]]  # rows named by their files


def test_array_dicts_and_handmade_audio_decoder(tiny_model, assets_dir):
    """{"array", "sampling_rate"} dicts (datasets < 4) and a hand-made AudioDecoder.

    Both carry float samples, the path's vector comes from soundfile's int16 -> float
    conversion of the same samples: equal to float32 rounding (1e-5 on unit vectors).
    """
    AudioDecoder, _ = _torchcodec()
    path = assets_dir / SOUNDS[0]
    samples = AudioDecoder(str(path)).get_all_samples()
    as_dict = {"path": str(path), "array": samples.data.numpy(), "sampling_rate": samples.sample_rate}
    out = tiny_model.embed(audio=[as_dict, AudioDecoder(str(path))])
    direct = tiny_model.embed(audio=[path]).audio
    np.testing.assert_allclose(out.audio.numpy(), direct.expand(2, -1).numpy(), atol=1e-5)


def test_video_decoders(tiny_model, assets_dir):
    """datasets' Video decoder (remembers its file): exact. A hand-made one names no file: refused."""
    _, VideoDecoder = _torchcodec()
    path = str(assets_dir / "video" / "wind_noise.mp4")
    ds = Dataset.from_dict({"video": [path]}).cast_column("video", Video())
    decoder = ds[0]["video"]
    direct = tiny_model.embed(video=[path]).video
    np.testing.assert_allclose(tiny_model.embed(video=[decoder]).video.numpy(), direct.numpy(), atol=EXACT)
    with pytest.raises(TypeError, match="VideoDecoder made by hand .* pass the video's path or bytes"):
        tiny_model.embed(video=[VideoDecoder(path)])


def test_other_items_pass_unchanged():
    for item in ["a.jpg", b"bytes", {"array": [0.0], "sampling_rate": 16000}, ({"x": 1}, 16000)]:
        assert dataset_value(item) is item
