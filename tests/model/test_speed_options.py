"""Every speed option can be switched off, and each one keeps the golden numbers.

(int8 is covered by tests/test_quantize.py, bfloat16 by test_golden_parity.py.)
"""

from __future__ import annotations

import pytest
import torch

from conftest import assert_matches_reference
from imagebind_sdk import ImageBind


def test_text_trimming_is_exact_and_switchable(tiny_dir, golden_embeddings):
    trimmed = ImageBind.load(tiny_dir, modalities=["text"], device="cpu")
    full = ImageBind.load(tiny_dir, modalities=["text"], device="cpu", trim_text=False)
    assert trimmed.encoder("text").trim_text and not full.encoder("text").trim_text
    ids = golden_embeddings["input/text"]
    for model in (trimmed, full):
        assert_matches_reference(model.encode("text", ids), golden_embeddings["output/text"])
    # Short captions: trimming leaves out most of the 77 positions, the vectors stay the same.
    short = trimmed.tokenizer(["a dog", "the sound of rain on a roof"])
    assert int(short.argmax(-1).max()) < 20
    torch.testing.assert_close(trimmed.encode("text", short), full.encode("text", short), rtol=0, atol=1e-6)


def test_text_trimming_runs_fewer_positions(tiny_dir):
    model = ImageBind.load(tiny_dir, modalities=["text"], device="cpu")
    seen = []
    hook = model.encoder("text").trunk.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[1]))
    ids = model.tokenizer(["a dog", "a big red car"])
    model.encode("text", ids)
    model.encoder("text").trim_text = False
    model.encode("text", ids)
    hook.remove()
    assert seen == [int(ids.argmax(-1).max()) + 1, 77]


def test_compile_keeps_the_golden_numbers(tiny_dir, golden_embeddings):
    """torch.compile (Inductor, on the CPU here) of an encoder gives the reference's outputs."""
    model = ImageBind.load(tiny_dir, modalities=["text"], device="cpu", compile=True)
    assert_matches_reference(model.encode("text", golden_embeddings["input/text"]), golden_embeddings["output/text"])
    assert set(model.model.state_dict()) == set(ImageBind.load(tiny_dir, modalities=["text"]).model.state_dict())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"compile": "fastest"}, "compile must be True, False or one of"),
        ({"compile": True, "quantize": "int8", "device": "cpu"}, "cannot be combined"),
    ],
)
def test_bad_compile_options(tiny_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageBind.load(tiny_dir, **kwargs)
