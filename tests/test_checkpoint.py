"""Strict, selective loading: every official key accounted for, clear errors otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from imagebind_sdk import CheckpointError, ImageBind
from imagebind_sdk.weights import keymap
from imagebind_sdk.model.config import MODALITIES


def _official_keys(tiny_dir):
    with safe_open(str(tiny_dir / "model.safetensors"), "pt") as f:
        return list(f.keys())


def test_mapping_covers_every_official_key_both_ways(tiny_dir):
    for key in _official_keys(tiny_dir):
        if key == keymap.TEXT_MASK_KEY:
            continue
        sdk = keymap.to_sdk(key)
        assert sdk is not None, key
        assert keymap.to_official(sdk) == key


def test_text_only_load_allocates_only_text_parameters(tiny_dir):
    model = ImageBind.load(tiny_dir, modalities=["text"], device="cpu")
    state = load_file(str(tiny_dir / "model.safetensors"))
    text_numel = sum(
        t.numel() for k, t in state.items() if keymap.modality_of(k) == "text" and k != keymap.TEXT_MASK_KEY
    )
    assert model.modalities == ("text",)
    assert sum(p.numel() for p in model.model.parameters()) + sum(
        b.numel() for b in model.model.buffers()
    ) == text_numel
    with pytest.raises(ValueError, match=r"audio encoder is not loaded.*modalities=\["):
        model.embed(audio=torch.zeros(1, 3, 1, 128, 204))


def test_load_never_initialises_real_tensors(tiny_dir, monkeypatch):
    """Building happens on the meta device: no init routine ever touches real memory."""
    touched = []
    for name in ("kaiming_uniform_", "uniform_", "normal_", "trunc_normal_", "ones_", "zeros_", "xavier_uniform_"):
        original = getattr(torch.nn.init, name)

        def spy(tensor, *args, _original=original, **kwargs):
            if tensor.device.type != "meta":
                touched.append(tuple(tensor.shape))
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.nn.init, name, spy)
    model = ImageBind.load(tiny_dir, device="cpu")
    assert touched == []
    assert all(p.device.type == "cpu" for p in model.model.parameters())


def _write_variant(tmp_path, tiny_dir, edit_state=None, edit_config=None):
    state = load_file(str(tiny_dir / "model.safetensors"))
    config = json.loads((tiny_dir / "config.json").read_text())
    if edit_state:
        edit_state(state)
    if edit_config:
        edit_config(config)
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_missing_key_is_listed(tmp_path, tiny_dir):
    key = "modality_trunks.audio.blocks.1.mlp.fc2.bias"
    path = _write_variant(tmp_path, tiny_dir, edit_state=lambda s: s.pop(key))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\):\s+" + key.replace(".", r"\.")):
        ImageBind.load(path, device="cpu")
    ImageBind.load(path, modalities=["text"], device="cpu")  # other modalities are unaffected


def test_unexpected_key_is_listed(tmp_path, tiny_dir):
    path = _write_variant(tmp_path, tiny_dir, edit_state=lambda s: s.update({"modality_heads.vision.9.weight": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\):\s+modality_heads\.vision\.9\.weight"):
        ImageBind.load(path, modalities=["text"], device="cpu")


def test_mismatched_config_reports_shapes(tmp_path, tiny_dir):
    path = _write_variant(tmp_path, tiny_dir, edit_config=lambda c: c.update(depth_embed_dim=32))
    with pytest.raises(CheckpointError, match=r"shape mismatches[\s\S]*depth_stem\.proj\.weight: checkpoint \(24, 1, 16, 16\), model \(32, 1, 16, 16\)"):
        ImageBind.load(path, modalities=["depth"], device="cpu")


def test_config_with_too_few_blocks_reports_unexpected(tmp_path, tiny_dir):
    path = _write_variant(tmp_path, tiny_dir, edit_config=lambda c: c.update(imu_num_blocks=1))
    with pytest.raises(CheckpointError, match=r"unexpected keys [\s\S]*modality_trunks\.imu\.blocks\.1\."):
        ImageBind.load(path, modalities=["imu"], device="cpu")


def test_wrong_text_mask_is_refused(tmp_path, tiny_dir):
    path = _write_variant(tmp_path, tiny_dir, edit_state=lambda s: s.update({keymap.TEXT_MASK_KEY: torch.zeros(77, 77)}))
    with pytest.raises(ValueError, match="causal mask"):
        ImageBind.load(path, modalities=["text"], device="cpu")


def test_unknown_format_and_missing_files(tmp_path, tiny_dir):
    from imagebind_sdk import WeightsNotFoundError

    bogus = tmp_path / "weights.npz"
    bogus.write_bytes(b"\0" * 16)
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        ImageBind.load(bogus, device="cpu")
    with pytest.raises(WeightsNotFoundError, match="no checkpoint found"):
        ImageBind.load(_empty(tmp_path), device="cpu")
    with pytest.raises(WeightsNotFoundError, match="unknown checkpoint 'nope'"):
        ImageBind.load("nope", device="cpu")


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_unknown_modality_names():
    with pytest.raises(ValueError, match=r"unknown modalities \['smell'\]"):
        ImageBind.load("imagebind-huge", modalities=["text", "smell"])


def test_file_without_config_uses_huge_preset(tmp_path, tiny_dir):
    shutil.copy(tiny_dir / "model.safetensors", tmp_path)
    # Tiny weights under the huge preset cannot fit: the shape check catches it.
    with pytest.raises(CheckpointError, match="shape mismatches"):
        ImageBind.load(tmp_path / "model.safetensors", modalities=["depth"], device="cpu")


def test_local_load_stays_light(tiny_dir):
    """A local load imports neither torch._dynamo (pulled in by init on meta tensors,
    ~2 s) nor huggingface_hub (~0.1 s): both used to dominate start-up."""
    code = (
        "import sys\nfrom imagebind_sdk import ImageBind\n"
        f"ImageBind.load({str(tiny_dir)!r}, device='cpu')\n"
        "print(sorted(m for m in ('torch._dynamo', 'huggingface_hub') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "name, content",
    [
        ("model.safetensors", b"garbage"),  # header too small
        ("model.safetensors", None),  # the real file cut after 1000 bytes
        ("model.pth", None),  # the real .pth cut after 5000 bytes
    ],
)
def test_corrupt_weights_file_names_it(tmp_path, tiny_dir, name, content):
    shutil.copy(tiny_dir / "config.json", tmp_path / "config.json")
    data = content if content is not None else (tiny_dir / name).read_bytes()[: 1000 if name.endswith("tensors") else 5000]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(CheckpointError, match=rf"{name}: cannot read this checkpoint file .*truncated or corrupt"):
        ImageBind.load(tmp_path, device="cpu")


def test_missing_shard_names_it(tmp_path, tiny_dir):
    (tmp_path / "config.json").write_bytes((tiny_dir / "config.json").read_bytes())
    keys = list(safe_open(str(tiny_dir / "model.safetensors"), framework="pt").keys())
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": dict.fromkeys(keys, "gone.safetensors")}))
    with pytest.raises(CheckpointError, match="gone.safetensors: cannot read"):
        ImageBind.load(tmp_path, device="cpu")
