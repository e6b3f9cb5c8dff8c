"""An ONNX export folder is untrusted: onnx.json is checked field by field before any graph loads.

The folders here are built by hand (the tiny checkpoint's config.json and small graphs
made with the onnx helpers), so no export runs.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx", reason="needs onnx: pip install 'imagebind-sdk[onnx]'")
pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'imagebind-sdk[onnx]'")

from onnx import TensorProto, helper  # noqa: E402

from imagebind_sdk import ImageBind  # noqa: E402
from imagebind_sdk.model.config import ImageBindConfig  # noqa: E402
from imagebind_sdk.export.runtime import load_onnx  # noqa: E402


def _graph(path: Path, out_dim: int) -> None:
    """A text-like graph: int64 tokens (B, 77) -> float32 (B, out_dim) (a cast and a matmul)."""
    nodes = [helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["f", "w"], ["output"])]
    weight = helper.make_tensor("w", TensorProto.FLOAT, [77, out_dim], [0.01] * (77 * out_dim))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.INT64, ["B", 77])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["B", out_dim])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.fixture()
def folder(tmp_path: Path, tiny_dir: Path) -> Path:
    out = tmp_path / "export"
    out.mkdir()
    shutil.copy(tiny_dir / "config.json", out / "config.json")
    _graph(out / "text.onnx", ImageBindConfig.from_json(out / "config.json").out_embed_dim)
    _write(out, files={"text": {"float32": "text.onnx"}}, logit_scales={"text": 50.0})
    return out


def _write(folder: Path, **fields: object) -> None:
    manifest = {"format": "imagebind-sdk-onnx", "format_version": 1, "modalities": ["text"]} | fields
    (folder / "onnx.json").write_text(json.dumps(manifest))


def _edit(folder: Path, **fields: object) -> None:
    manifest = json.loads((folder / "onnx.json").read_text()) | fields
    (folder / "onnx.json").write_text(json.dumps(manifest))


def test_a_valid_hand_made_folder_loads(folder: Path) -> None:
    model = load_onnx(folder)
    assert model.encoders["text"].logit_scale() == 50.0


@pytest.mark.parametrize("name", ["../outside.onnx", "/ABS/outside.onnx", "sub/../../outside.onnx"])
def test_graph_outside_the_folder_is_refused(folder: Path, name: str) -> None:
    _graph(folder.parent / "outside.onnx", 4)
    name = name.replace("/ABS", str(folder.parent))
    _edit(folder, files={"text": {"float32": name}})
    with pytest.raises(ValueError, match=r"onnx\.json: files\.text\.float32 must be a file name inside"):
        load_onnx(folder)


def test_symlink_out_of_the_folder_is_refused(folder: Path) -> None:
    _graph(folder.parent / "outside.onnx", 4)
    (folder / "link.onnx").symlink_to(folder.parent / "outside.onnx")
    _edit(folder, files={"text": {"float32": "link.onnx"}})
    with pytest.raises(ValueError, match=r"files\.text\.float32 must be a file name inside"):
        load_onnx(folder)


@pytest.mark.parametrize("scale", [-50.0, 0, math.nan, math.inf, 1e9, "50", True, None])
def test_logit_scale_must_be_finite_and_positive(folder: Path, scale: object) -> None:
    """A negative scale silently inverted zero-shot rankings; NaN destroyed them."""
    _edit(folder, logit_scales={"text": scale})  # json writes nan/inf as NaN/Infinity, which it reads back
    with pytest.raises(ValueError, match=r"onnx\.json: logit_scales\.text must be a finite number in \(0, 100\]"):
        ImageBind.load(folder, backend="onnxruntime")


@pytest.mark.parametrize("field", ["files", "logit_scales", "modalities", "format"])
def test_missing_field_names_the_file_and_field(folder: Path, field: str) -> None:
    manifest = json.loads((folder / "onnx.json").read_text())
    del manifest[field]
    (folder / "onnx.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=rf"onnx\.json: {field} must be"):
        load_onnx(folder)


def test_missing_modality_entries_and_bad_json(folder: Path) -> None:
    _edit(folder, files={})
    with pytest.raises(ValueError, match=r"onnx\.json: files\.text must be an object with 'float32'"):
        load_onnx(folder)
    _edit(folder, files={"text": {"float32": "text.onnx"}}, logit_scales={})
    with pytest.raises(ValueError, match=r"onnx\.json: logit_scales\.text must be"):
        load_onnx(folder)
    _edit(folder, logit_scales={"text": 1.0}, modalities=["text", "smell"])
    with pytest.raises(ValueError, match=r"onnx\.json: modalities must be a list of distinct modalities"):
        load_onnx(folder)
    (folder / "onnx.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"onnx\.json is not valid JSON"):
        load_onnx(folder)


def test_graph_of_another_dimension_is_refused(folder: Path) -> None:
    _graph(folder / "text.onnx", 7)
    with pytest.raises(ValueError, match=r"text\.onnx: the text graph outputs shape \['B', 7\], expected \[batch, "):
        load_onnx(folder)


def test_missing_graph_names_the_field(folder: Path) -> None:
    (folder / "text.onnx").unlink()
    with pytest.raises(FileNotFoundError, match=r"files\.text\.float32 names text\.onnx, which is missing"):
        load_onnx(folder)
