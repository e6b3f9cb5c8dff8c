"""The embedding pipeline: per-row outcomes, per-item isolation, and that it is the only copy.

Real tiny model throughout; the bad items are real (NaN inputs rejected by the input
check, finite values too large for the encoder), no mocks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from imagebind_sdk.pipeline import Pipeline, embed_kind, pipeline_of
from imagebind_sdk.preprocess import InputError

SRC = Path(__file__).resolve().parents[2] / "src" / "imagebind_sdk"


def _image(seed: int) -> torch.Tensor:
    return torch.rand(3, 224, 224, generator=torch.Generator().manual_seed(seed))


def _imu(value: float, steps: int = 2000) -> torch.Tensor:
    signs = torch.tensor([1.0, -1.0]).repeat(steps // 2)
    return (value * signs).expand(6, steps).clone()


def test_pipeline_of(tiny_model) -> None:
    assert pipeline_of(tiny_model) is tiny_model.pipeline
    assert pipeline_of(tiny_model.pipeline) is tiny_model.pipeline
    bare = pipeline_of(tiny_model.model)  # a loaded ImageBindModel without the facade
    assert isinstance(bare, Pipeline) and bare.device == torch.device("cpu")
    with pytest.raises(TypeError, match="expected an ImageBind"):
        pipeline_of(object())


def test_isolated_batch_fails_only_the_item_the_encoder_rejects(tiny_model) -> None:
    pipeline = tiny_model.pipeline
    nan = torch.full((3, 224, 224), float("nan"))
    batch = torch.stack([_image(0), nan, _image(1)])
    with pytest.raises(ValueError, match="input contains NaN"):  # not isolating: the batch's error
        pipeline.encode_rows("vision", batch)
    rows = pipeline.encode_rows("vision", batch, isolate=True)
    assert list(rows.failed) == [1]
    assert rows.failed[1].startswith("the encoder failed on this input: ValueError: vision: input contains NaN")
    assert rows.good() == [0, 2] and bool(torch.isfinite(rows.vectors).all())
    alone = torch.cat([pipeline.encode("vision", x[None]) for x in (_image(0), _image(1))])
    assert torch.allclose(rows.vectors[[0, 2]], alone, atol=1e-5, rtol=0)


def test_non_finite_rows_are_outcomes_never_nan(tiny_model) -> None:
    pipeline = tiny_model.pipeline
    rows = pipeline.encode_rows("imu", torch.stack([_imu(0.5), _imu(3e38), _imu(0.25)]), normalize=False)
    assert list(rows.failed) == [1] and "the embedding is not finite" in rows.failed[1]
    assert bool(torch.isfinite(rows.vectors).all())
    assert torch.allclose(rows.vectors[0], pipeline.encode("imu", _imu(0.5)[None], normalize=False)[0], atol=1e-5)


def test_embed_kind_names_and_skips_items(tiny_model) -> None:
    pipeline = tiny_model.pipeline
    items = [_imu(0.5), _imu(3e38), _imu(0.25)]
    with pytest.raises(InputError, match=r"^imu\[1\] \(<torch\.Tensor shape=\(6, 2000\)>\): the embedding is not finite"):
        embed_kind(pipeline, "imu", items)
    out = embed_kind(pipeline, "imu", items, on_error="skip", batch_size=2)
    assert out.kept == [0, 2] and [s.index for s in out.skipped] == [1]
    assert torch.allclose(out.vectors, tiny_model.embed(imu=[items[0], items[2]]).imu, atol=1e-5, rtol=0)
    texts = embed_kind(pipeline, "text", ["a dog", "the sound of rain"])
    assert torch.equal(texts.vectors, tiny_model.embed(text=["a dog", "the sound of rain"]).text)
    with pytest.raises(ValueError, match="on_error must be"):
        embed_kind(pipeline, "text", ["a"], on_error="ignore")


def test_window_with_a_non_finite_vector_names_input_and_window(tiny_model, tmp_path: Path) -> None:
    """Before, the error named the row inside an encoder batch (``imu[1]``), not the input."""
    rows = ["gyro_x,gyro_y,gyro_z,accl_x,accl_y,accl_z"]
    for step in range(6000):  # 30 s at 200 Hz; 20.0-20.5 s too large for the encoder
        value = 3e38 if 4000 <= step < 4100 else 0.5
        rows.append(",".join([repr(value if step % 2 else -value)] * 6))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    bad.write_text("\n".join(rows) + "\n")
    good.write_text("\n".join(r.replace("3e+38", "0.5") for r in rows) + "\n")
    with pytest.raises(InputError) as caught:
        tiny_model.embed_windows(imu=[str(good), str(bad)])
    found = re.match(rf"imu\[1\] \({re.escape(str(bad))}\): window (\d+) \(([\d.]+)-([\d.]+) s\): the embedding is not "
                     "finite", str(caught.value))
    assert found, str(caught.value)
    assert float(found.group(2)) <= 20.0 < float(found.group(3))  # the first window holding the bad stretch


def test_bulk_fails_only_the_file_whose_vector_is_not_finite(tiny_model, tmp_path: Path) -> None:
    from imagebind_sdk.bulk.files import embed_files

    header = "gyro_x,gyro_y,gyro_z,accl_x,accl_y,accl_z\n"
    for name, value in (("a_good.csv", 0.5), ("b_bad.csv", 3e38), ("c_good.csv", 0.25)):
        lines = [",".join([repr(value if i % 2 else -value)] * 6) for i in range(2000)]
        (tmp_path / name).write_text(header + "\n".join(lines) + "\n")
    result = embed_files(tiny_model, tmp_path, batch_size=3)
    assert [Path(p).name for p, _ in result.failed] == ["b_bad.csv"]
    assert "the embedding is not finite" in result.failed[0][1]
    alone = tiny_model.embed(imu=[str(tmp_path / "a_good.csv"), str(tmp_path / "c_good.csv")]).imu
    assert torch.allclose(result.embeddings.imu, alone, atol=1e-5, rtol=0)


# Where each piece of the embedding logic may live: one copy, in the pipeline (plus the
# generic row normalisation in ops.py and the model's own output normalisation).
ONE_PLACE = {
    r"\bnormalize\(": {"vectors/ops.py", "model/encoder.py"},
    r"(?<!def )\btokenizer\(": {"pipeline/encoding.py"},  # calls, not the facade's property
    r"\bnonfinite_rows\(|\bnonfinite_message\(": {"pipeline/encoding.py", "pipeline/model_inputs.py"},
    r"\bpreprocess_batch\(": {"pipeline/items.py", "preprocess/__init__.py"},
    r"\bcheck_model_input\(": {"pipeline/encoding.py", "pipeline/model_inputs.py"},
    # preprocess_batch (called by the pipeline only) applies it to items that cannot be read.
    r"on_error == \"raise\"|on_error == \"skip\"": {"pipeline/items.py", "preprocess/__init__.py"},
}


@pytest.mark.parametrize("pattern", sorted(ONE_PLACE))
def test_one_copy_of_the_embedding_logic(pattern: str) -> None:
    found = {path.relative_to(SRC).as_posix() for path in SRC.rglob("*.py")
             if re.search(pattern, path.read_text(encoding="utf-8"))}
    assert found <= ONE_PLACE[pattern], f"{pattern} outside the pipeline: {sorted(found - ONE_PLACE[pattern])}"
