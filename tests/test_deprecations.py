"""Renamed names keep working under their old names and warn once (issue 8)."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest
import torch

from imagebind_sdk import deprecation, keymap
from imagebind_sdk.config import ImageBindConfig
from imagebind_sdk.model import ModalityEncoder


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(deprecation, "_warned", set())


def _warns_once(call, match: str):
    with pytest.warns(DeprecationWarning, match=match):
        first = call()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = call()
    return first, second


def test_keymap_to_clean() -> None:
    key = "modality_trunks.audio.blocks.0.attn.in_proj_weight"
    first, second = _warns_once(lambda: keymap.to_clean(key), "keymap.to_clean is deprecated; use keymap.to_sdk")
    assert first == second == keymap.to_sdk(key) == "encoders.audio.trunk.blocks.0.attn.qkv.weight"


def test_token_stem_finish() -> None:
    config = ImageBindConfig(imu_embed_dim=16, imu_num_heads=2)
    encoder = ModalityEncoder(config.encoder("imu"))
    torch.nn.init.normal_(encoder.stem.cls_token)
    torch.nn.init.normal_(encoder.stem.pos_embed)
    patches = torch.randn(2, 250, 16)
    first, second = _warns_once(lambda: encoder.stem.finish(patches), "TokenStem.finish is deprecated")
    assert torch.equal(first, encoder.stem.add_cls_and_positions(patches)) and torch.equal(first, second)


def test_modality_encoder_old_signature() -> None:
    config = ImageBindConfig(depth_embed_dim=16, depth_num_heads=2, depth_num_blocks=1)
    with pytest.warns(DeprecationWarning, match=r"ModalityEncoder\(config.encoder\(modality\)\)"):
        old = ModalityEncoder(config, "depth")
    new = ModalityEncoder(config.encoder("depth"))
    assert {k: v.shape for k, v in old.state_dict().items()} == {k: v.shape for k, v in new.state_dict().items()}


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("imagebind_sdk.inputs", "imagebind_sdk.pipeline.model_inputs", ["check_model_input", "all_finite"]),
    ],
)
def test_old_modules(old: str, new: str, names: list[str]) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated"):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    for name in names:
        assert getattr(module, name) is getattr(target, name)


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
