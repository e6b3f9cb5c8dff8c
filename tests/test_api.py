"""The facade's contract: shapes, errors, ordering, batching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import assert_matches_reference
from imagebind_sdk import ImageBind
from imagebind_sdk.weights.dtypes import as_dtype as _as_dtype


@pytest.mark.parametrize(
    "modality, shape, expected",
    [
        ("vision", (2, 3, 200, 200), r"vision: expected input of shape \(B, 3, 224, 224\) or"),
        ("audio", (2, 1, 128, 100), r"audio: expected input of shape \(B, 1, 128, 204\)"),
        ("depth", (2, 3, 224, 224), r"depth: expected input of shape \(B, 1, 224, 224\), got \(2, 3, 224, 224\)"),
        ("imu", (2, 2000, 6), r"imu: expected input of shape \(B, 6, 2000\), got \(2, 2000, 6\)"),
        ("vision", (2, 3, 5, 224, 224), r"got \(2, 3, 5, 224, 224\)"),
    ],
)
def test_wrong_shapes_name_modality_expected_and_actual(tiny_model, modality, shape, expected):
    with pytest.raises(ValueError, match=expected):
        tiny_model.encode(modality, torch.zeros(shape))


def test_non_finite_and_wrong_dtype(tiny_model):
    x = torch.zeros(1, 1, 224, 224)
    x[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="thermal: input contains NaN"):
        tiny_model.encode("thermal", x)
    with pytest.raises(ValueError, match="expected a floating-point tensor"):
        tiny_model.encode("imu", torch.zeros(1, 6, 2000, dtype=torch.long))
    with pytest.raises(ValueError, match=r"text: token ids must lie in \[0, 49408\)"):
        tiny_model.encode("text", torch.full((1, 5), 50000))
    with pytest.raises(ValueError, match="text: expected integer token ids"):
        tiny_model.encode("text", torch.zeros(1, 5))
    with pytest.raises(ValueError, match=r"text: expected token ids of shape \(B, L<=77\)"):
        tiny_model.encode("text", torch.zeros(1, 78, dtype=torch.long))


def test_unknown_modality(tiny_model):
    with pytest.raises(ValueError, match=r"unknown modality 'smell'"):
        tiny_model.encode("smell", torch.zeros(1))
    with pytest.raises(TypeError, match="unexpected keyword argument 'smell'"):
        tiny_model.embed(smell=["x"])
    with pytest.raises(ValueError, match="nothing to embed"):
        tiny_model.embed()


def test_embed_preserves_order_across_batches(tiny_model, golden_embeddings):
    x = golden_embeddings["input/depth"]
    out = tiny_model.embed(depth=x, batch_size=2)
    assert out.depth.shape == (3, 32) and len(out.sources["depth"]) == 3
    assert_matches_reference(out.depth, golden_embeddings["output/depth"])
    single = tiny_model.embed(depth=x[1])
    torch.testing.assert_close(single.depth, out.depth[1:2])


def test_embed_mixes_modalities(tiny_model, golden_embeddings):
    out = tiny_model.embed(
        text=["A dog.", "A car"],
        imu=golden_embeddings["input/imu"],
        audio=golden_embeddings["input/audio"][0],
    )
    assert list(out) == ["text", "audio", "imu"]
    assert out.audio.shape == (1, 32) and out.imu.shape == (3, 32) and out.text.shape == (2, 32)
    assert_matches_reference(out.audio, golden_embeddings["output/audio"][:1])
    assert_matches_reference(out.text, golden_embeddings["output/text"][:2])


def test_embedding_dim_and_repr(tiny_model):
    assert tiny_model.embedding_dim == 32
    assert "modalities=['vision', 'text', 'audio', 'depth', 'thermal', 'imu']" in repr(tiny_model)


def test_dtype_strings():
    assert _as_dtype("bf16") is torch.bfloat16 and _as_dtype("float16") is torch.float16 and _as_dtype(None) is None
    with pytest.raises(ValueError, match="unsupported dtype 'int8'"):
        _as_dtype("int8")


def test_batch_size_validation(tiny_model):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        tiny_model.embed(text="a", batch_size=0)


def test_device_argument(tiny_dir):
    model = ImageBind.load(tiny_dir, modalities=["text"], device=torch.device("cpu"))
    assert model.device == torch.device("cpu")


def test_embed_progress_bar_only_when_asked_or_on_a_terminal(tiny_model, capsys):
    texts = [f"caption {i}" for i in range(70)]
    tiny_model.embed(text=texts, batch_size=16, progress=True)
    assert "embedding text" in capsys.readouterr().err
    tiny_model.embed(text=texts, batch_size=16)  # pytest's stderr is no terminal: no bar
    assert capsys.readouterr().err == ""


def test_checkpoint_names_what_was_loaded(tiny_model, tiny_dir):
    # One word per idea: `checkpoint` is the weights loaded; `source` (0.1) stays as its alias.
    assert tiny_model.checkpoint == tiny_model.source != ""
    assert Path(tiny_model.checkpoint).resolve() == Path(tiny_dir).resolve()
