"""ImageBindConfig mirrors the reference constructor's keyword arguments."""

from __future__ import annotations

import json
import logging
import re
import shutil

import pytest

from imagebind_sdk import ImageBind, ImageBindConfig
from imagebind_sdk.model.config import ConfigError, config_problems


def test_defaults_are_the_reference_constructor_defaults():
    c = ImageBindConfig()
    assert c.kernel_size == (2, 14, 14) and c.video_frames == 2 and c.out_embed_dim == 768
    assert (c.audio_kernel_size, c.audio_stride, c.audio_num_mel_bins, c.audio_target_len) == (16, 10, 128, 204)
    assert (c.depth_embed_dim, c.depth_num_heads, c.imu_embed_dim, c.imu_kernel_size) == (384, 8, 512, 8)


def test_huge_preset():
    c = ImageBindConfig.preset("imagebind-huge")
    assert (c.vision_embed_dim, c.vision_num_blocks, c.text_embed_dim, c.text_num_blocks, c.out_embed_dim) == (
        1280, 32, 1024, 24, 1024,
    )


def test_lists_and_unknown_keys(tmp_path, caplog):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"kernel_size": [2, 14, 14], "model_type": "imagebind", "_name_or_path": "x"}))
    with caplog.at_level(logging.WARNING):
        c = ImageBindConfig.from_json(path)
    assert c.kernel_size == (2, 14, 14)
    assert "_name_or_path, model_type" in caplog.text
    c.to_json(tmp_path / "again.json")
    assert ImageBindConfig.from_json(tmp_path / "again.json") == c


def test_round_trip_of_golden_config(tiny_dir):
    c = ImageBindConfig.from_json(tiny_dir / "config.json")
    assert c.thermal_embed_dim == 28 and c.imu_num_heads == 4


def test_invalid_heads():
    with pytest.raises(ConfigError, match=r"field 'depth_num_heads' \(4\) must divide 'depth_embed_dim' \(30\)"):
        ImageBindConfig(depth_embed_dim=30, depth_num_heads=4)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("vision_num_blocks", 10_000_000, r"'vision_num_blocks' must be an integer in \[1, 256\], got 10000000"),
        ("kernel_size", [0, 0, 0], "'kernel_size' must be 3 positive integers"),
        ("kernel_size", [2, 14], "'kernel_size' must be 3 positive integers"),
        ("kernel_size", [3, 14, 14], r"'kernel_size' T=3 exceeds 'video_frames' \(2\)"),
        ("kernel_size", [2, 300, 14], r"H, W must be <= 224"),
        ("out_embed_dim", "32", r"'out_embed_dim' must be an integer in \[1, 8192\], got '32'"),
        ("out_embed_dim", None, "'out_embed_dim' must be an integer .*got None"),
        ("text_num_heads", 0, "'text_num_heads' must be an integer"),
        ("imu_embed_dim", True, "'imu_embed_dim' must be an integer"),
        ("depth_kernel_size", 0, "'depth_kernel_size' must be an integer in \\[1, 224\\]"),
        ("audio_kernel_size", 300, r"'audio_kernel_size' \(300\) must be <= 'audio_num_mel_bins' \(128\)"),
        ("audio_drop_path", 2.0, r"'audio_drop_path' must be a number in \[0, 1\]"),
        ("video_frames", 1e9, "'video_frames' must be an integer"),
    ],
)
def test_config_json_fields_checked_before_building(tmp_path, tiny_dir, field, value, match):
    values = json.loads((tiny_dir / "config.json").read_text())
    values[field] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: .*{match}"):
        ImageBindConfig.from_json(path)


def test_absurd_config_fails_at_once_on_load(tmp_path, tiny_dir):
    values = json.loads((tiny_dir / "config.json").read_text())
    values["vision_num_blocks"] = 10_000_000  # built for > 120 s, growing memory, before the check
    (tmp_path / "config.json").write_text(json.dumps(values))
    shutil.copy(tiny_dir / "model.safetensors", tmp_path)
    with pytest.raises(ConfigError, match="config.json: field 'vision_num_blocks'"):
        ImageBind.load(tmp_path, device="cpu")


@pytest.mark.parametrize("text", ["{not json", "", "\xff\xfe", '{"out_embed_dim": 32,}'])
def test_garbage_json_names_the_file(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: not valid JSON"):
        ImageBindConfig.from_json(path)


def test_every_shipped_config_is_within_the_bounds(tiny_dir):
    ImageBindConfig.preset("imagebind_huge")
    ImageBindConfig.from_json(tiny_dir / "config.json")
    assert config_problems(ImageBindConfig().to_dict()) == []


def test_config_has_one_encoder_config_per_modality() -> None:
    config = ImageBindConfig.preset("imagebind_huge")
    vision, audio = config.encoder("vision"), config.encoder("audio")
    assert (vision.width, vision.depth, vision.heads, vision.stem, vision.pre_norm) == (1280, 32, 16, "video_patches", True)
    assert (audio.stem, audio.kernel, audio.stride, audio.input_size, audio.bias_kv) == (
        "patches", (16, 16), (10, 10), (128, 204), True)
    assert config.encoders is config.encoders  # derived once
    assert config.embed_dim("text") == 1024 and config.num_blocks("imu") == 6 and config.num_heads("depth") == 8
    with pytest.raises(ValueError, match="unknown modality"):
        config.encoder("video")
