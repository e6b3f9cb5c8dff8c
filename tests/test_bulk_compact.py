"""``embed_files(out=..., embedding_dtype=...)``: compact rows in the Parquet parts, the calibration in
``_info.json``, resuming keeps them, and the rows read back are the dequantised ones."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import ASSETS
from imagebind_sdk.bulk.format import load_bulk_output
from imagebind_sdk.vectors.compact import Ranges, calibrate, dequantize, quantize

FILES = [str(ASSETS / "dog_image.jpg"), str(ASSETS / "car_image.jpg"), str(ASSETS / "dog_audio.wav")]


@pytest.fixture(scope="module")
def reference(tiny_model):
    return tiny_model.embed_files(FILES).embeddings


@pytest.mark.parametrize("dtype, arrow, width", [("float16", "halffloat", 32), ("int8", "int8", 32),
                                                 ("uint8", "uint8", 32), ("binary", "int8", 4), ("ubinary", "uint8", 4)])
def test_compact_output(tiny_model, reference, tmp_path, dtype, arrow, width):
    out = tmp_path / "out"
    result = tiny_model.embed_files(FILES, out=out, embedding_dtype=dtype)
    info = json.loads((out / "_info.json").read_text())
    assert info["dtype"] == dtype
    ranges = Ranges.of(info["ranges"]) if "int8" in dtype else None
    if ranges is not None:  # the model's fixed calibration, recorded with the output
        assert info["ranges"]["sha256"] == calibrate(tiny_model).digest
    table = pq.read_table(out)  # the folder as one table, as any Parquet reader sees it
    assert str(table.schema.field("embedding").type) == f"fixed_size_list<element: {arrow}>[{width}]"
    stored = dict(zip(table.column("path").to_pylist(), table.column("embedding").to_pylist()))
    loaded = load_bulk_output(out)
    for kind in ("vision", "audio"):
        expected = quantize(reference[kind], dtype, ranges)
        paths = reference.sources[kind]
        assert torch.equal(torch.tensor([stored[p] for p in paths]).to(expected.dtype), expected)
        back = dequantize(expected, dtype, ranges, 32)  # what is read back: the dequantised rows
        assert torch.equal(result.embeddings[kind], back)
        by_path = dict(zip(loaded.sources[kind], loaded[kind]))
        assert torch.equal(torch.stack([by_path[p] for p in paths]), back)
    again = tiny_model.embed_files(FILES, out=out, embedding_dtype=dtype)
    assert again.already_done == len(FILES) and torch.equal(again.embeddings.vision, result.embeddings.vision)


def test_compact_output_errors(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="pass out="):
        tiny_model.embed_files(FILES, embedding_dtype="int8")
    with pytest.raises(ValueError, match="embedding_dtype: expected one of"):
        tiny_model.embed_files(FILES, out=tmp_path / "a", embedding_dtype="int4")
    tiny_model.embed_files(FILES[:1], out=tmp_path / "b", embedding_dtype="binary")
    with pytest.raises(ValueError, match="stores binary rows and this job asks for float32"):
        tiny_model.embed_files(FILES, out=tmp_path / "b")
    given = [[-1.0] * 32, [1.0] * 32]
    tiny_model.embed_files(FILES[:1], out=tmp_path / "c", embedding_dtype="int8", ranges=given)
    assert json.loads((tmp_path / "c" / "_info.json").read_text())["ranges"]["low"] == given[0]
    with pytest.raises(ValueError, match="with other ranges"):
        tiny_model.embed_files(FILES, out=tmp_path / "c", embedding_dtype="int8", ranges=[[-2.0] * 32, [2.0] * 32])


def test_ranges_saved_and_read_back_from_each_form(tiny_model, tmp_path):
    """``read_ranges``: a saved JSON, a (2, dim) .npy and an int8 bulk folder give the same ranges;
    ``ranges=`` takes any of these paths; a bad file is a ValueError naming it."""
    from imagebind_sdk.vectors.compact import read_ranges

    ranges = calibrate(tiny_model)
    ranges.save(tmp_path / "r.json")
    np.save(tmp_path / "r.npy", torch.stack([ranges.low, ranges.high]).numpy())
    tiny_model.embed_files(FILES[:1], out=tmp_path / "out", embedding_dtype="uint8", ranges=tmp_path / "r.json")
    for path in ("r.json", "r.npy", "out"):
        back = read_ranges(tmp_path / path)
        assert back.digest == ranges.digest, path
    assert json.loads((tmp_path / "out" / "_info.json").read_text())["ranges"]["sha256"] == ranges.digest
    (tmp_path / "bad.json").write_text('{"low": [0, 1]}')
    for bad, why in (("bad.json", "expected a JSON object"), ("missing.json", "No such file"),
                     ("r.npy.nope", "No such file")):
        with pytest.raises(ValueError, match=f"{bad}: cannot read int8/uint8 ranges.*{why}"):
            read_ranges(tmp_path / bad)
    tiny_model.embed_files(FILES[:1], out=tmp_path / "f32")
    with pytest.raises(ValueError, match="records no int8/uint8 ranges"):
        read_ranges(tmp_path / "f32")
