"""ImageBindConfig mirrors the reference constructor's keyword arguments."""

from __future__ import annotations

import json
import logging

import pytest

from imagebind_sdk import ImageBindConfig


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
    with pytest.raises(ValueError, match="multiple of num_heads"):
        ImageBindConfig(depth_embed_dim=30, depth_num_heads=4)
