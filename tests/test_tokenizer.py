"""The CLIP BPE tokenizer reproduces the reference ids exactly."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest
import torch

from imagebind_sdk.preprocess.tokenizer import CONTEXT_LENGTH, Tokenizer, default_tokenizer, normalize_text


def test_vocabulary_file_is_the_reference_copy():
    data = resources.files("imagebind_sdk").joinpath("assets/bpe_simple_vocab_16e6.txt.gz").read_bytes()
    assert hashlib.md5(data).hexdigest() == "933b7abbbbde62c36f02f0e6ccde464f"
    assert resources.files("imagebind_sdk").joinpath("assets/BPE_VOCAB_LICENSE.txt").is_file()


def test_ids_match_reference(golden_dir):
    items = json.loads((golden_dir / "text_tokens.json").read_text())["items"]
    ids = default_tokenizer()([it["text"] for it in items])
    for row, item in zip(ids, items):
        assert row.tolist() == item["ids"], item["text"]


def test_special_ids_and_padding():
    tok = Tokenizer()
    assert (tok.sot_id, tok.eot_id, tok.vocab_size) == (49406, 49407, 49408)
    ids = tok("a dog")
    assert ids.shape == (1, CONTEXT_LENGTH) and ids.dtype == torch.long
    assert ids[0, :4].tolist() == [49406, 320, 1929, 49407] and int(ids[0, 4:].abs().sum()) == 0


def test_long_text_keeps_end_of_text_last():
    ids = Tokenizer()(["word " * 200])[0]
    assert int(ids[-1]) == 49407 and int(ids.argmax()) == CONTEXT_LENGTH - 1
    assert int((ids == 49407).sum()) == 1


def test_normalisation_steps():
    assert normalize_text("  A&amp;amp;B \n\t C  ") == "a&b c"


def test_rejects_non_strings():
    with pytest.raises(TypeError, match=r"text\[1\]: expected str"):
        Tokenizer()(["ok", 3])
