"""Every encoder reproduces the reference model's outputs (golden vectors)."""

from __future__ import annotations

import shutil

import pytest
import torch

from conftest import assert_matches_reference, golden_file_order, unit
from imagebind_sdk import ImageBind
from imagebind_sdk.model.config import MODALITIES


@pytest.mark.parametrize("modality", MODALITIES)
def test_encode_matches_reference(tiny_model, golden_embeddings, modality):
    out = tiny_model.encode(modality, golden_embeddings[f"input/{modality}"])
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(len(out)))
    assert_matches_reference(out, golden_embeddings[f"output/{modality}"])


@pytest.mark.parametrize("filename", ["model.safetensors", "model.pth"])
@pytest.mark.parametrize("modality", MODALITIES)
def test_single_modality_load_from_each_format(tiny_dir, golden_embeddings, filename, modality):
    model = ImageBind.load(tiny_dir / filename, modalities=[modality], device="cpu")
    assert model.modalities == (modality,)
    out = model.encode(modality, golden_embeddings[f"input/{modality}"])
    assert_matches_reference(out, golden_embeddings[f"output/{modality}"])


def test_load_from_directory_with_pth_only(tmp_path, tiny_dir, golden_embeddings):
    shutil.copy(tiny_dir / "config.json", tmp_path)
    shutil.copy(tiny_dir / "model.pth", tmp_path)
    model = ImageBind.load(tmp_path, modalities=["imu", "depth"], device="cpu")
    for m in ("imu", "depth"):
        assert_matches_reference(model.encode(m, golden_embeddings[f"input/{m}"]), golden_embeddings[f"output/{m}"])


def test_logit_scales_match_reference_norms(tiny_model, golden_embeddings):
    # The reference output is unit vector x logit scale (before clip averaging).
    for m in ("vision", "text", "depth", "thermal", "imu"):
        norms = golden_embeddings[f"output/{m}"].norm(dim=-1)
        torch.testing.assert_close(norms, torch.full_like(norms, tiny_model.logit_scale(m)), rtol=1e-5, atol=1e-4)
    assert tiny_model.logit_scale("text") == 100.0  # exp(s) = 150 in the checkpoint, clipped
    assert tiny_model.logit_scale("audio") == pytest.approx(20.0)


def test_multi_clip_is_mean_of_clips_renormalised(tiny_model, golden_embeddings):
    x = golden_embeddings["input/audio"]  # (2, 3, 1, 128, 204)
    per_clip = tiny_model.encode("audio", x.flatten(0, 1)).view(2, 3, -1)
    expected = unit(per_clip.mean(dim=1))
    torch.testing.assert_close(tiny_model.encode("audio", x), expected)


def test_video_clip_and_repeated_image_agree(tiny_model, golden_embeddings):
    images = golden_embeddings["input/vision"]  # (3, 3, 224, 224)
    clips = images.unsqueeze(2).expand(-1, -1, 2, -1, -1)  # both frames the same image
    torch.testing.assert_close(tiny_model.encode("vision", clips), tiny_model.encode("vision", images))


def test_text_trimming_is_exact(tiny_model, golden_embeddings):
    ids = golden_embeddings["input/text"]
    full = torch.cat([tiny_model.encode("text", ids[i : i + 1]) for i in range(len(ids))])
    batched = tiny_model.encode("text", ids)  # trimmed to the longest row
    torch.testing.assert_close(batched, full, atol=1e-6, rtol=0)


def test_embed_text_reproduces_reference(tiny_model, golden_dir, golden_embeddings):
    import json

    texts = [it["text"] for it in json.loads((golden_dir / "text_tokens.json").read_text())["items"]]
    assert torch.equal(tiny_model.tokenizer(texts), golden_embeddings["input/text"])
    out = tiny_model.embed(text=texts, batch_size=4)
    assert out.sources["text"] == texts
    assert_matches_reference(out.text, golden_embeddings["output/text"])


def test_bfloat16_close_to_float32(tiny_dir, golden_embeddings, tiny_model):
    bf16 = ImageBind.load(tiny_dir, device="cpu", dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16
    for m in MODALITIES:
        x = golden_embeddings[f"input/{m}"]
        cos = (bf16.encode(m, x) * tiny_model.encode(m, x)).sum(-1)
        assert float(cos.min()) >= 0.99, (m, cos)
    assert bf16.logit_scale("audio") == pytest.approx(20.0, rel=1e-6)  # scales stay float32


@pytest.mark.parametrize("modality", MODALITIES)
def test_encode_unnormalized_is_reference_output(tiny_model, golden_embeddings, modality):
    # normalize=False: the reference model's raw output (unit x logit scale, clip mean).
    out = tiny_model.encode(modality, golden_embeddings[f"input/{modality}"], normalize=False)
    ref = golden_embeddings[f"output/{modality}"]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * float(ref.norm(dim=-1).max()))


def test_embed_unnormalized_files_match_reference(tiny_model, golden_dir, golden_embeddings, assets_dir):
    for kind in ("vision", "audio", "video"):
        names = golden_file_order(golden_dir, f"files/{kind}")
        paths = [assets_dir / n if (assets_dir / n).exists() else assets_dir / kind / n for n in names]
        out = tiny_model.embed(**{kind: paths}, normalize=False)[kind]
        ref = golden_embeddings[f"files/{kind}"]
        rel = (out - ref).norm(dim=-1) / ref.norm(dim=-1)
        assert float(rel.max()) <= 1e-4, (kind, rel.tolist())
        cos = (unit(out) * unit(ref)).sum(-1)
        assert float(cos.min()) >= 0.99999, (kind, cos.tolist())
