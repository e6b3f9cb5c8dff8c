"""Issue 9 (A.1-A.3, 14): nothing silently wrong from embed/encode/zero_shot.

Every row that leaves ``embed``/``encode`` is finite, ``on_error="skip"`` covers
every per-item failure, options and names are the caller's errors (raised before
any item is read), and labels split on commas like Hugging Face's pipeline.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from imagebind_sdk import ImageBind, InputError
from imagebind_sdk.cli import main

MISSING = "/nonexistent/never-read.png"  # an item that fails if it is ever read


def _ok_image() -> torch.Tensor:
    return torch.rand(3, 224, 224, generator=torch.Generator().manual_seed(0))


# -- A.1 non-finite embeddings -----------------------------------------------------
def test_finite_but_huge_inputs_raise_naming_the_item(tiny_model):
    huge = torch.full((3, 224, 224), 1e20)
    with pytest.raises(InputError, match=r"vision\[1\] \(<torch\.Tensor shape=\(3, 224, 224\)>\): the embedding is not finite"):
        tiny_model.embed(vision=[_ok_image(), huge])
    with pytest.raises(InputError, match=r"audio\[0\]: the embedding is not finite"):
        tiny_model.encode("audio", torch.full((1, 1, 128, 204), 1e20))
    with pytest.raises(InputError, match=r"vision\[2\]: the embedding is not finite"):
        tiny_model.encode("vision", torch.stack([_ok_image(), _ok_image(), torch.full((3, 224, 224), 1e20)]))


def test_skip_leaves_out_non_finite_rows_and_lists_them(tiny_model):
    items = [_ok_image(), torch.full((3, 224, 224), 1e20), _ok_image(), torch.full((3, 224, 224), -1e20)]
    out = tiny_model.embed(vision=items, on_error="skip", batch_size=3)
    assert out.vision.shape == (2, tiny_model.embedding_dim)
    assert bool(torch.isfinite(out.vision).all())
    assert torch.allclose(out.vision[0], tiny_model.embed(vision=_ok_image()).vision[0], atol=1e-6)
    assert [s.index for s in out.skipped["vision"]] == [1, 3]
    assert all("not finite" in s.error for s in out.skipped["vision"])


def test_non_finite_text_rows_name_the_text():
    model = ImageBind.load(_tiny(), modalities=["text"], device="cpu")
    poisoned = int(model.tokenizer(["zebra"])[0, 1])  # the token right after start-of-text
    model.encoder("text").stem.token_embedding.weight.data[poisoned] = 3e38  # finite, overflows LayerNorm
    with pytest.raises(InputError, match=r"text\[1\] \(a zebra\): the embedding is not finite"):
        model.embed(text=["a dog", "a zebra"])
    out = model.embed(text=["a dog", "a zebra", "a cat"], on_error="skip")
    assert out.sources["text"] == ["a dog", "a cat"] and bool(torch.isfinite(out.text).all())
    assert [(s.index, s.source) for s in out.skipped["text"]] == [(1, "a zebra")]


def _tiny():
    from conftest import TINY

    return TINY


# -- A.2 on_error="skip" covers every per-item failure; options are not items ---------
def test_skip_covers_errors_after_decoding_and_limits(tiny_model):
    sign = np.where(np.arange(32000) % 2, 1.0, -1.0)
    ok = (np.zeros(32000, dtype=np.float32), 16000)
    out = tiny_model.embed(audio=[ok, (np.full(32000, 3e38) * sign, 16000), ok], on_error="skip")
    assert out.audio.shape[0] == 2 and [s.index for s in out.skipped["audio"]] == [1]
    with pytest.raises(InputError, match=r"audio\[1\]"):
        tiny_model.embed(audio=[ok, (np.full(32000, 3e38) * sign, 16000)])
    too_wide = np.zeros((1, 100_000, 3), dtype=np.uint8)  # an aspect-ratio guard, caused by this item
    out = tiny_model.embed(vision=[_ok_image(), too_wide], on_error="skip")
    assert out.vision.shape[0] == 1 and out.skipped["vision"][0].index == 1


@pytest.mark.parametrize(
    "options, match",
    [
        ({"depth": {"mode": "metric"}}, r"preprocess\['depth'\]: .*metric"),
        ({"vision": {"exif": True}}, r"unknown vision option\(s\) 'exif'; valid vision options: .*exif_transpose"),
        ({"text": {"lower": True}}, "text takes no preprocess options"),
        ({"images": {}}, "unknown input kinds"),
        ({"depth": "disparity"}, r"preprocess\['depth'\] must be a dict"),
    ],
)
def test_bad_options_raise_before_any_item_even_when_skipping(tiny_model, options, match):
    with pytest.raises(ValueError, match=match):
        tiny_model.embed(vision=[MISSING], depth=[MISSING], on_error="skip", preprocess=options)


# -- 14 Python names -----------------------------------------------------------------
def test_wrong_keyword_suggests_the_kind(tiny_model):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'image'; did you mean vision=\?"):
        tiny_model.embed(image=[MISSING])
    with pytest.raises(TypeError, match=r"zero_shot\(\) got an unexpected keyword argument 'image'; did you mean vision="):
        tiny_model.zero_shot(["dog", "cat"], image=[MISSING])
    with pytest.raises(TypeError, match="did you mean audio="):
        tiny_model.embed(audoi=[MISSING])


@pytest.mark.parametrize(
    "value, seen", [(5, "got int"), (b"a dog", "got bytes"), (["a dog", 3], r"got text\[1\] of type int")]
)
def test_text_must_be_str_or_list_of_str(tiny_model, value, seen):
    with pytest.raises(TypeError, match=f"text must be a str or a list of str, {seen}"):
        tiny_model.embed(text=value)


def test_text_accepts_any_iterable_of_str(tiny_model):
    assert tiny_model.embed(text=("a dog", "a cat")).text.shape[0] == 2
    assert tiny_model.embed(text=iter(["a dog"])).sources["text"] == ["a dog"]


# -- A.3 labels ------------------------------------------------------------------------
def test_label_string_splits_on_commas(tiny_model):
    image = _ok_image()
    split = tiny_model.zero_shot("dog, cat", vision=image)
    listed = tiny_model.zero_shot(["dog", "cat"], vision=image)
    assert split.labels == ["dog", "cat"]
    assert torch.equal(split.probs, listed.probs)


@pytest.mark.parametrize("labels", ["dog", ["dog"], "dog,", [], "dog,,cat"])
def test_fewer_than_two_labels_or_empty_label_raise(tiny_model, labels):
    with pytest.raises(ValueError, match="at least 2 labels|must not be empty"):
        tiny_model.zero_shot(labels, vision=[MISSING])


def test_cli_classify_needs_two_labels(tiny_dir, assets_dir, capsys, monkeypatch):
    monkeypatch.setenv("IMAGEBIND_CHECKPOINT", str(tiny_dir))
    image = str(next(assets_dir.glob("*.jpg")))
    assert main(["classify", "--image", image, "--labels", "dog,dog"]) == 2
    assert "--labels needs at least 2 different labels" in capsys.readouterr().err
    assert main(["classify", "--image", image, "--labels", "dog,cat", "--json"]) == 0


# -- 15 Python indexing like the CLI ------------------------------------------------------
def test_index_an_embed_result_and_filter_by_kind(tiny_model, assets_dir, tmp_path, capsys, monkeypatch):
    from imagebind_sdk import EmbeddingIndex
    from imagebind_sdk.vectors.ops import compose

    images = [str(assets_dir / f"{n}_image.jpg") for n in ("dog", "car")]
    sounds = [str(assets_dir / f"{n}_audio.wav") for n in ("dog", "car")]
    out = tiny_model.embed(vision=images, audio=sounds)
    index = EmbeddingIndex()
    assert index.add(out) == images + sounds
    query = tiny_model.embed(text="a dog").text
    hits = index.search(query, top_k=4, kinds=["vision"])[0]
    assert {h["id"] for h in hits} == set(images) and all(h["metadata"]["kind"] == "vision" for h in hits)
    expected = torch.nn.functional.cosine_similarity(query, out.vision).tolist()
    assert sorted(h["score"] for h in hits) == pytest.approx(sorted(expected), abs=1e-5)
    # CLI: search --compose combines an image and a sound into one query.
    index.save(tmp_path / "idx")
    monkeypatch.setenv("IMAGEBIND_CHECKPOINT", str(_tiny()))
    assert main(["search", str(tmp_path / "idx"), "--image", images[0], "--audio", sounds[1], "--compose",
                 "--top-k", "4", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["query"] == {"modality": "vision+audio", "source": f"{images[0]} + {sounds[1]}"}
    composed = compose(out.vision[0], out.audio[1])
    best = max(range(4), key=lambda r: float(index.embeddings[r] @ composed))
    assert result["hits"][0]["id"] == index.ids[best]
    assert result["hits"][0]["score"] == pytest.approx(float(index.embeddings[best] @ composed), abs=1e-5)
