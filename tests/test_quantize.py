"""Dynamic int8 quantisation: every Linear replaced, embeddings close to float32, clear refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import unit
from imagebind_sdk import ImageBind
from imagebind_sdk.model.config import MODALITIES
from imagebind_sdk.weights.quantize import is_quantized, quantize_int8

DynamicLinear = pytest.importorskip("torch.ao.nn.quantized.dynamic").Linear

# Measured int8-vs-float32 minimum cosines of the tiny golden model on the golden
# inputs (torch 2.14.1, x86 CPU): vision 0.99986, text 0.99892, audio 0.99977,
# depth 0.99961, thermal 0.99935, imu 0.99852. All modalities hold 0.99.
COS_MIN = 0.99


@pytest.fixture(scope="module")
def float_and_int8(tiny_dir):
    """The tiny model in float32 and a separately loaded int8 copy (never the shared tiny_model)."""
    fp32 = ImageBind.load(tiny_dir, device="cpu")
    int8 = ImageBind.load(tiny_dir, device="cpu", quantize="int8")
    assert is_quantized(int8.model) and not is_quantized(fp32.model)
    return fp32, int8


def test_quantize_int8_is_in_place(tiny_dir):
    model = ImageBind.load(tiny_dir, device="cpu", modalities=["text"])
    assert quantize_int8(model.model) is model.model


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quantize": "int4"}, "quantize must be None or 'int8'"),
        ({"quantize": "int8", "device": "cuda"}, "CPU only"),
        ({"quantize": "int8", "dtype": "bfloat16"}, "needs float32"),
    ],
)
def test_load_refuses_bad_quantize_options(tiny_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageBind.load(tiny_dir, **kwargs)


def _count(model: nn.Module, cls: type) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


def test_every_linear_is_replaced(float_and_int8):
    fp32, int8 = float_and_int8
    config = fp32.config
    # per block: attn.qkv, attn.proj, mlp.fc1, mlp.fc2; per encoder: head proj; plus the IMU stem proj
    expected = sum(4 * config.num_blocks(m) + 1 for m in MODALITIES) + 1
    assert _count(fp32.model, nn.Linear) == expected
    assert _count(int8.model, DynamicLinear) == expected
    assert _count(int8.model, nn.Linear) == 0
    names = dict(int8.model.named_modules())
    for name in ("encoders.text.trunk.blocks.0.attn.qkv", "encoders.audio.trunk.blocks.1.attn.proj",
                 "encoders.vision.trunk.blocks.0.mlp.fc2", "encoders.depth.head.proj", "encoders.imu.stem.proj"):
        assert isinstance(names[name], DynamicLinear), name
    assert is_quantized(int8.model) and not is_quantized(fp32.model)


@pytest.mark.parametrize("modality", MODALITIES)
def test_int8_embeddings_stay_close_to_float32(float_and_int8, golden_embeddings, modality):
    fp32, int8 = float_and_int8
    x = golden_embeddings[f"input/{modality}"]
    reference = fp32.encode(modality, x)
    out = int8.encode(modality, x)
    assert out.dtype == torch.float32 and out.shape == reference.shape
    assert float((out * reference).sum(-1).min()) >= COS_MIN
    golden = unit(golden_embeddings[f"output/{modality}"])
    assert float((out * golden).sum(-1).min()) >= COS_MIN


def test_not_in_place_keeps_the_original(tiny_dir):
    model = ImageBind.load(tiny_dir, modalities=["imu"], device="cpu").model
    quantized = quantize_int8(model, inplace=False)
    assert quantized is not model and is_quantized(quantized) and not is_quantized(model)
    assert quantize_int8(quantized) is quantized  # already quantised: returned unchanged


def test_only_float32_cpu_models(tiny_dir):
    bf16 = ImageBind.load(tiny_dir, modalities=["text"], device="cpu", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="needs a float32 model, got bfloat16"):
        quantize_int8(bf16.model)
    assert not is_quantized(bf16.model)
    with torch.device("meta"):
        on_meta = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="CPU only, the model is on meta"):
        quantize_int8(on_meta)


def test_no_deprecation_warnings_leak(tiny_dir, recwarn):
    quantize_int8(ImageBind.load(tiny_dir, modalities=["depth"], device="cpu").model)
    assert not [w for w in recwarn if "deprecated" in str(w.message)]
