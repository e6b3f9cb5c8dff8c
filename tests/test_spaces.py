"""Spaces (issue 19.3): every model names the space of its vectors, and vectors of different
spaces never meet silently: not in an index, not in a resumed bulk output, not in a search."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import ASSETS, REPO, populate_hub_cache
from imagebind_sdk import EmbeddingIndex, ImageBind
from imagebind_sdk.bulk.format import load_bulk_output
from imagebind_sdk.vectors.embeddings import Embeddings
from imagebind_sdk.vectors.space import SpaceMismatchError

ADAPTER = REPO / "tests" / "lora" / "data" / "adapter"
DOG = ASSETS / "dog_image.jpg"


@pytest.fixture(scope="module")
def model(tiny_dir, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("IMAGEBIND_CACHE", str(tmp_path_factory.mktemp("cache")))
    loaded = ImageBind.load(tiny_dir, modalities=["text", "vision"], device="cpu")
    loaded.load_adapter(ADAPTER, activate=False)
    return loaded


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture
def base(model):
    model.set_adapter(None)
    return model


def adapted_text(model, texts=("a dog",)) -> Embeddings:
    model.set_adapter("golden")
    try:
        return model.embed(text=list(texts))
    finally:
        model.set_adapter(None)


def test_space_is_checkpoint_content_plus_adapter(base, tiny_dir, tmp_path):
    base_space = base.space
    assert base_space.id.startswith("ib-") and len(base_space.id) == 19 and base_space.adapter is None
    base.set_adapter("golden")
    adapted = base.space
    base.set_adapter(None)
    assert adapted.id != base_space.id and adapted.adapter["name"] == "golden"
    assert base.space == base_space  # switching back: the base space again
    # The same files elsewhere (another folder, a Hub cache snapshot) give the same id.
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dir, copy)
    assert ImageBind.load(copy / "model.safetensors", modalities=["text"], device="cpu").space == base_space
    snapshot = populate_hub_cache(tmp_path / "hub", "someone/tiny", {
        "model.safetensors": tiny_dir / "model.safetensors", "config.json": tiny_dir / "config.json"}, "a" * 40)
    assert ImageBind.load(snapshot, device="cpu").space == base_space
    # Different weights: a different space.
    changed = tmp_path / "changed"
    shutil.copytree(tiny_dir, changed)
    model = ImageBind.load(changed, modalities=["text"], device="cpu")
    assert model.space == base_space
    from safetensors.torch import load_file, save_file

    tensors = load_file(changed / "model.safetensors")
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1
    (changed / "model.safetensors").unlink()
    save_file(tensors, changed / "model.safetensors")
    assert ImageBind.load(changed, modalities=["text"], device="cpu").space != base_space
    assert model.space != base_space  # the same path, changed in place: hashed again


def test_embeddings_carry_and_save_the_space(base, tmp_path):
    out = base.embed(text=["a dog"])
    assert out.space == base.space
    out.save(tmp_path / "e.safetensors")
    assert Embeddings.load(tmp_path / "e.safetensors").space == base.space
    other = adapted_text(base)
    assert other.space.adapter["name"] == "golden" and other.space != base.space
    # A file from before spaces: space unknown.
    Embeddings({"text": torch.eye(3)}).save(tmp_path / "old.safetensors")
    assert Embeddings.load(tmp_path / "old.safetensors").space is None


def test_index_refuses_another_space_to_add_and_search(base, tmp_path):
    index = EmbeddingIndex()
    index.add(base.embed(text=["a dog", "a car"]))
    assert index.space == base.space
    other = adapted_text(base, ["a bird"])
    with pytest.raises(SpaceMismatchError, match=f"{other.space.id}.*{base.space.id}"):
        index.add(other)
    assert len(index) == 2  # nothing added
    with pytest.raises(SpaceMismatchError, match=f"{other.space.id}.*{base.space.id}"):
        index.search(other)
    with pytest.raises(SpaceMismatchError, match="searching the index"):
        index.search(torch.ones(32), space=other.space)
    assert index.search(base.embed(text=["a dog"]), top_k=1)[0][0]["id"] == "a dog"
    index.add(other, allow_other_space=True)
    assert len(index.search(other, allow_other_space=True)[0]) == 3
    index.save(tmp_path / "index")
    loaded = EmbeddingIndex.load(tmp_path / "index")
    assert loaded.space == base.space
    with pytest.raises(SpaceMismatchError):
        loaded.search(other)


def test_index_without_a_space_checks_nothing(base, tmp_path):
    index = EmbeddingIndex()
    index.add(torch.randn(2, 32), ids=["x", "y"])
    index.save(tmp_path / "old")
    info = json.loads((tmp_path / "old" / "index.json").read_text())
    assert "space" not in info
    loaded = EmbeddingIndex.load(tmp_path / "old")
    assert loaded.space is None
    loaded.add(adapted_text(base))  # unknown rows: no check, and the space stays unknown
    assert loaded.space is None and len(loaded.search(base.embed(text=["a"]))[0]) == 3


def test_bulk_output_records_the_space_and_refuses_another(base, tmp_path):
    out = tmp_path / "out"
    result = base.embed_files(DOG, out=out)
    assert result.embeddings.space == base.space
    info = json.loads((out / "_info.json").read_text())
    assert info["space"]["id"] == base.space.id
    assert load_bulk_output(out).space == base.space
    base.set_adapter("golden")
    try:
        with pytest.raises(SpaceMismatchError, match=f"resuming the bulk output.*{base.space.id}.*{info['space']['id']}"):
            base.embed_files(DOG, out=out)
        assert base.embed_files(DOG, out=out, allow_other_space=True).already_done == 1
    finally:
        base.set_adapter(None)
    assert base.embed_files(DOG, out=out).already_done == 1  # the same space resumes


def test_bulk_output_without_a_space_resumes(base, tmp_path):
    out = tmp_path / "out"
    base.embed_files(DOG, out=out)
    info = json.loads((out / "_info.json").read_text())
    del info["space"]
    (out / "_info.json").write_text(json.dumps(info))
    assert load_bulk_output(out).space is None
    base.set_adapter("golden")
    try:
        assert base.embed_files(DOG, out=out).already_done == 1
    finally:
        base.set_adapter(None)


def test_a_damaged_space_is_named(base, tmp_path):
    out = tmp_path / "out"
    base.embed_files(DOG, out=out)
    info = json.loads((out / "_info.json").read_text())
    info["space"] = {"id": 3}
    (out / "_info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"_info.json: space: expected"):
        load_bulk_output(out)


@pytest.fixture(scope="module")
def other_checkpoint(tiny_dir, tmp_path_factory) -> Path:
    """The tiny checkpoint fine-tuned a little (its text and vision heads halved): another space, same dim."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("finetuned")
    shutil.copy(tiny_dir / "config.json", folder)
    tensors = load_file(tiny_dir / "model.safetensors")
    for name in [k for k in tensors if "head" in k and tensors[k].is_floating_point()]:
        tensors[name] = tensors[name] * 0.5
    save_file(tensors, folder / "model.safetensors")
    return folder


def test_cli_refuses_another_space_unless_told(base, tiny_dir, other_checkpoint, tmp_path, capsys):
    from imagebind_sdk.cli import main

    index = tmp_path / "idx"
    assert main(["--checkpoint", str(tiny_dir), "index", "build", str(ASSETS / "imu"), "--out", str(index)]) == 0
    query = ["index", "search", str(index), "--text", "walking", "--top-k", "1"]
    capsys.readouterr()
    assert main(["--checkpoint", str(other_checkpoint), *query]) == 1
    err = capsys.readouterr().err
    other = ImageBind.load(other_checkpoint, modalities=["text"], device="cpu").space
    assert "searching the index" in err and other.id in err and base.space.id in err
    assert main(["--checkpoint", str(other_checkpoint), *query, "--allow-other-space"]) == 0
    out = tmp_path / "out"
    embed = ["embed", str(DOG), "--out", str(out)]
    assert main(["--checkpoint", str(tiny_dir), *embed]) == 0
    capsys.readouterr()
    assert main(["--checkpoint", str(other_checkpoint), *embed]) == 1
    err = capsys.readouterr().err
    assert "resuming the bulk output" in err and other.id in err and base.space.id in err
    assert main(["--checkpoint", str(other_checkpoint), *embed, "--allow-other-space"]) == 0
    assert "already_done: 1" in capsys.readouterr().out


def test_search_app_refuses_outputs_and_a_model_of_another_space(base, tmp_path):
    from imagebind_sdk.app.catalog import Catalog
    from imagebind_sdk.app.server import check_dim

    base.embed_files(DOG, out=tmp_path / "root" / "a")
    catalog = Catalog.load([tmp_path / "root"])
    assert catalog.index.space == base.space
    check_dim(base, catalog)  # the model that built it
    base.set_adapter("golden")
    try:
        with pytest.raises(SpaceMismatchError, match=f"serving this index.*{base.space.id}"):
            check_dim(base, catalog)  # its queries would be of another space
        base.embed_files(DOG, out=tmp_path / "root" / "b")
    finally:
        base.set_adapter(None)
    with pytest.raises(SpaceMismatchError, match="reading the bulk output .*/b with the others"):
        Catalog.load([tmp_path / "root"])


def test_onnx_graphs_keep_the_space(base, tiny_dir, tmp_path, monkeypatch):
    """An export folder and an ONNX cache entry record the space of the weights they were made of."""
    pytest.importorskip("onnxruntime", reason="pip install 'imagebind-sdk[onnx]'")
    from imagebind_sdk.export.onnx import export_onnx

    export_onnx(base, tmp_path / "exported", ["text"])
    exported = ImageBind.load(tmp_path / "exported", backend="onnxruntime", modalities=["text"])
    assert exported.space == base.space and exported.embed(text=["a dog"]).space == base.space
    monkeypatch.setenv("IMAGEBIND_CACHE", str(tmp_path / "cache"))
    cached = ImageBind.load(tiny_dir, backend="onnxruntime", modalities=["text"])
    assert cached.space == base.space
    manifest = json.loads((tmp_path / "exported" / "onnx.json").read_text())
    del manifest["space"]  # exported before spaces: unknown
    (tmp_path / "exported" / "onnx.json").write_text(json.dumps(manifest))
    assert ImageBind.load(tmp_path / "exported", backend="onnxruntime", modalities=["text"]).space is None


def test_windows_carry_the_space_into_an_index(tiny_dir, tmp_path):
    model = ImageBind.load(tiny_dir, modalities=["audio"], device="cpu", adapters={"golden": ADAPTER})
    model.set_adapter(None)
    sound = ASSETS / "dog_audio.wav"
    windows = model.embed_windows(audio=[sound], window_s=2.0)
    assert windows.space == model.space
    index = EmbeddingIndex()
    windows.add_to(index)
    assert index.space == model.space
    model.set_adapter("golden")
    adapted = model.embed_windows(audio=[sound], window_s=2.0)
    with pytest.raises(SpaceMismatchError, match=f"adding to the index.*{model.space.id}"):
        adapted.add_to(index)
    model.embed_files([sound], windows=True, window_s=2.0, out=tmp_path / "w")
    assert load_bulk_output(tmp_path / "w").space == model.space


def test_space_of_names_an_adapter_without_switching(model):
    model.set_adapter(None)
    assert model.space_of("golden").adapter["name"] == "golden" and model.active_adapter is None
    assert model.space_of(None) == model.space
    with pytest.raises(ValueError, match="no adapter named 'other'; loaded: \\['golden'\\]"):
        model.space_of("other")


@pytest.mark.parametrize("bad", ["ib-xyz", 7, {"id": "ib-0123456789abcdef", "checkpoint": [1, 2]},
                                 {"id": "ib-0123456789abcdef", "adapter": "x"}, {"id": None}, ["ib-"]])
def test_a_hostile_space_in_an_index_is_named(bad, tmp_path):
    index = EmbeddingIndex(space="ib-0123456789abcdef")
    index.add(torch.eye(3), ids=["a", "b", "c"])
    index.save(tmp_path / "i")
    info = json.loads((tmp_path / "i" / "index.json").read_text())
    info["space"] = bad
    (tmp_path / "i" / "index.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"/i: not a usable EmbeddingIndex \(space: expected an id"):
        EmbeddingIndex.load(tmp_path / "i")
