"""LoRA adapters and trunk features equal ImageBind-LoRA's own code (golden: make_golden.py).

Tolerance: 1e-5 absolute on unit vectors, and on raw outputs (normalize=False: the
reference's vectors times the logit scale, up to 100) 1e-5 relative to that scale;
features (tokens, pooled) to 1e-5 absolute.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import unit

DATA = Path(__file__).resolve().parent / "data"
MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")
ATOL = 1e-5


def raw_diff(model, modality: str, x: torch.Tensor, ref: torch.Tensor) -> float:
    """max |raw - ref| on the unit scale (raw outputs carry the logit scale)."""
    return float((model.encode(modality, x, normalize=False) - ref).abs().max()) / model.logit_scale(modality)


@pytest.fixture(scope="module")
def expected() -> dict[str, torch.Tensor]:
    return load_file(str(DATA / "expected.safetensors"))


@pytest.fixture(scope="module")
def inputs(golden_embeddings) -> dict[str, torch.Tensor]:
    return {m: golden_embeddings[f"input/{m}"] for m in MODALITIES}


@pytest.fixture()
def adapted(tiny_dir):
    from imagebind_sdk import ImageBind

    return ImageBind.load(tiny_dir, device="cpu", adapters=DATA / "adapter")


@pytest.mark.parametrize("modality", MODALITIES)
def test_adapter_equals_imagebind_lora(adapted, inputs, expected, modality):
    ref = expected[f"adapter/output/{modality}"]
    assert raw_diff(adapted, modality, inputs[modality], ref) <= ATOL
    vec = adapted.encode(modality, inputs[modality])
    assert float((vec - unit(ref)).abs().max()) <= ATOL


def test_zero_text_adapter_drops_the_causal_mask(tiny_dir, tiny_model, inputs, expected):
    """ImageBind-LoRA's quirk: an all-zero text adapter still changes text vectors."""
    from imagebind_sdk import ImageBind

    model = ImageBind.load(tiny_dir, device="cpu", modalities=["text"], adapters=DATA / "zero_text")
    ref = expected["zero_text/output/text"]
    assert raw_diff(model, "text", inputs["text"], ref) <= ATOL
    base = tiny_model.encode("text", inputs["text"])
    assert float((base - unit(ref)).abs().max()) > 1e-3  # the quirk is real, not a no-op


@pytest.mark.parametrize("modality", MODALITIES)
def test_features_equal_reference(tiny_model, inputs, expected, modality):
    tokens = tiny_model.encode(modality, inputs[modality], output="tokens")
    pooled = tiny_model.encode(modality, inputs[modality], output="pooled")
    ref_tokens, ref_pooled = expected[f"base/tokens/{modality}"], expected[f"base/pooled/{modality}"]
    assert float((tokens.reshape(ref_tokens.shape) - ref_tokens).abs().max()) <= ATOL
    assert float((pooled.reshape(ref_pooled.shape) - ref_pooled).abs().max()) <= ATOL


def test_switching_adapters_without_reloading(tiny_dir, tiny_model, inputs, expected, tmp_path):
    from imagebind_sdk import ImageBind

    model = ImageBind.load(tiny_dir, device="cpu")
    assert model.load_adapter(DATA / "adapter") == "golden"
    model.load_adapter(DATA / "zero_text", name="zero")
    assert model.adapters == ["golden", "zero"] and model.active_adapter == "zero"
    text = inputs["text"]
    assert raw_diff(model, "text", text, expected["zero_text/output/text"]) <= ATOL
    model.set_adapter("golden")
    for m in MODALITIES:
        assert raw_diff(model, m, inputs[m], expected[f"adapter/output/{m}"]) <= ATOL
    model.set_adapter(None)  # the base again, bit for bit (heads and scales swapped back)
    for m in MODALITIES:
        assert torch.equal(model.encode(m, inputs[m], normalize=False), tiny_model.encode(m, inputs[m], normalize=False))
    assert model.logit_scale("text") == tiny_model.logit_scale("text")


def test_adapter_from_the_hub_cache(tiny_dir, tmp_path, monkeypatch, inputs, expected):
    """A Hub repo id goes through huggingface_hub.snapshot_download (offline: its cache)."""
    from conftest import populate_hub_cache

    from imagebind_sdk import ImageBind

    files = {p.name: p for p in (DATA / "adapter").iterdir()}
    populate_hub_cache(tmp_path, "someone/imagebind-lora-test", files, "c" * 40)
    model = ImageBind.load(tiny_dir, device="cpu", modalities=["audio"])
    name = model.load_adapter("someone/imagebind-lora-test", cache_dir=tmp_path, local_files_only=True)
    assert name == "golden"
    assert raw_diff(model, "audio", inputs["audio"], expected["adapter/output/audio"]) <= ATOL


def _copy(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir()
    for name in names:
        shutil.copy(DATA / "adapter" / name, folder / name)
    return folder


def test_bad_adapters_are_refused_with_the_file_named(tiny_dir, tmp_path):
    from safetensors.torch import save_file

    from imagebind_sdk import ImageBind
    from imagebind_sdk.weights.adapters import AdapterError

    model = ImageBind.load(tiny_dir, device="cpu", modalities=["text", "vision"])
    with pytest.raises(AdapterError, match="no adapter files"):
        model.load_adapter(tmp_path)
    # A rank-4 pair of the wrong width (an adapter for another base).
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    save_file({"w_a_000": torch.zeros(4, 7), "w_b_000": torch.zeros(7, 4),
               "w_a_001": torch.zeros(4, 7), "w_b_001": torch.zeros(7, 4)}, str(wrong / "imagebind-lora-text_x.safetensors"))
    with pytest.raises(AdapterError, match=r"imagebind-lora-text_x.safetensors: w_a_000 \(4, 7\)"):
        model.load_adapter(wrong)
    # A block count that is not the trunk's depth needs layers=.
    partial = tmp_path / "partial"
    partial.mkdir()
    save_file({"w_a_000": torch.zeros(4, 40), "w_b_000": torch.zeros(40, 4)}, str(partial / "imagebind-lora-text_p.safetensors"))
    with pytest.raises(AdapterError, match="1 adapted blocks for a trunk of 2.*layers="):
        model.load_adapter(partial)
    assert model.load_adapter(partial, layers={"text": [1]}) == "p"
    # NaN in a pair.
    nan = tmp_path / "nan"
    nan.mkdir()
    save_file({"w_a_000": torch.full((4, 40), float("nan")), "w_b_000": torch.zeros(40, 4),
               "w_a_001": torch.zeros(4, 40), "w_b_001": torch.zeros(40, 4)}, str(nan / "imagebind-lora-text_n.safetensors"))
    with pytest.raises(AdapterError, match="w_a_000 must be a finite"):
        model.load_adapter(nan)
    # A pickled heads file that is not plain tensors is refused (weights_only).
    evil = tmp_path / "evil"
    evil.mkdir()
    torch.save({"vision.0.weight": print}, evil / "imagebind-heads_e.pth")
    with pytest.raises(AdapterError, match="imagebind-heads_e.pth: not a plain state dict"):
        model.load_adapter(evil)
    with pytest.raises(ValueError, match="no adapter named 'nope'"):
        model.set_adapter("nope")
    with pytest.raises(ValueError, match="already loaded"):
        model.load_adapter(partial, layers={"text": [1]})
