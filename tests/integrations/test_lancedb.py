"""LanceDB embedding function "imagebind-sdk" against the real lancedb (tiny golden checkpoint).

The tiny checkpoint is random, so "the right row" is defined by identity: a query
equal to a row's source (its text, or ``{kind: path}`` of its file) embeds to exactly
that row's vector (cosine 1, distance 0), while distinct inputs give distinct vectors.
"""

from __future__ import annotations

import gc
import shutil

import numpy as np
import pytest

pytest.importorskip("lancedb", reason="pip install 'imagebind-sdk[lancedb]'")

import lancedb
from lancedb.embeddings import get_registry
from lancedb.pydantic import LanceModel, Vector

import imagebind_sdk.integrations.lancedb  # noqa: F401  (registers "imagebind-sdk")

TOL = 1e-6


def _sources(assets_dir) -> list[str]:
    files = ["dog_image.jpg", "car_image.jpg", "bird_audio.wav", "dog_audio.wav", "video/wind_noise.mp4",
             "imu/imu1_2k.csv"]
    return ["a dog", "a car engine"] + [str(assets_dir / f) for f in files]


def _make_table(db, func, name: str = "assets"):
    class Item(LanceModel):
        source: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()

    return db.create_table(name, schema=Item, mode="overwrite")


def _top(table, query):
    return table.search(query).metric("cosine").limit(1).to_list()[0]


def test_table_query_and_reopen(tmp_path, tiny_dir, tiny_model, assets_dir):
    func = get_registry().get("imagebind-sdk").create(checkpoint=str(tiny_dir), device="cpu", kind="auto")
    sources = _sources(assets_dir)
    table = _make_table(lancedb.connect(tmp_path / "db"), func)
    table.add([{"source": s} for s in sources])  # vectors computed by the function
    assert table.count_rows() == len(sources)

    hit = _top(table, "a car engine")  # query by text
    assert hit["source"] == "a car engine" and hit["_distance"] == pytest.approx(0.0, abs=1e-5)
    assert _top(table, {"audio": sources[4]})["source"] == sources[4]  # query by an audio file, said so

    # Stored vectors equal direct embed() of each kind.
    stored = {r["source"]: np.asarray(r["vector"]) for r in table.to_arrow().to_pylist()}
    direct = tiny_model.embed(text=sources[:2], vision=sources[2:4], audio=sources[4:6],
                              video=sources[6:7], imu=sources[7:])
    for kind, names in [("text", sources[:2]), ("vision", sources[2:4]), ("audio", sources[4:6]),
                        ("video", sources[6:7]), ("imu", sources[7:])]:
        np.testing.assert_allclose(np.stack([stored[n] for n in names]), direct[kind].numpy(), atol=TOL)

    del table, func
    gc.collect()
    reopened = lancedb.connect(tmp_path / "db").open_table("assets")  # function rebuilt from metadata
    conf = reopened.embedding_functions["vector"]
    assert conf.function.checkpoint == str(tiny_dir) and conf.source_column == "source"
    assert _top(reopened, "a dog")["source"] == "a dog"
    assert _top(reopened, {"vision": sources[3]})["source"] == sources[3]


def test_bytes_depth_thermal_and_model_argument(tmp_path, tiny_model, assets_dir):
    """A bytes column with kind=; model= shared and recorded in the metadata as its checkpoint."""
    registry = get_registry().get("imagebind-sdk")
    depth = registry.create(model=tiny_model, kind="depth")
    assert depth.imagebind is tiny_model
    files = sorted((assets_dir / "depth").iterdir())
    vectors = depth.compute_source_embeddings([f.read_bytes() for f in files])
    np.testing.assert_allclose(np.stack(vectors), tiny_model.embed(depth=files).depth.numpy(), atol=TOL)
    stored = depth.safe_model_dump()
    assert stored["checkpoint"] == tiny_model.source and "model" not in stored

    thermal = registry.create(model=tiny_model, kind="thermal", normalize=False)
    image = sorted((assets_dir / "thermal").iterdir())[0]
    (raw,) = thermal.compute_query_embeddings(image.read_bytes())
    np.testing.assert_allclose(raw, tiny_model.embed(thermal=[image], normalize=False).thermal[0].numpy(), atol=1e-5)

    class Item(LanceModel):
        image: bytes = depth.SourceField()
        vector: Vector(depth.ndims()) = depth.VectorField()

    table = lancedb.connect(tmp_path / "db").create_table("depth", schema=Item)
    table.add([{"image": f.read_bytes()} for f in files])
    hit = table.search({"depth": str(files[1])}).metric("cosine").limit(1).to_list()[0]
    assert hit["image"] == files[1].read_bytes() and hit["_distance"] == pytest.approx(0.0, abs=1e-5)


def test_unknown_value_kind_is_refused(tiny_model):
    func = get_registry().get("imagebind-sdk").create(model=tiny_model)
    with pytest.raises(TypeError, match="value 1: cannot tell the input kind of a bytes"):
        func.compute_source_embeddings(["a dog", b"\x89PNG"])
    with pytest.raises(ValueError, match="kind must be one of"):
        get_registry().get("imagebind-sdk").create(model=tiny_model, kind="image")


def test_strings_are_text_unless_the_column_or_call_says_media(tmp_path, tiny_model, assets_dir):
    """A search box sending "/srv/secret.csv" must not make the function read that file."""
    secret = tmp_path / "secret.csv"
    secret.write_bytes((assets_dir / "imu" / "imu1_2k.csv").read_bytes())  # a readable IMU file
    registry = get_registry().get("imagebind-sdk")
    text_of = {t: tiny_model.embed(text=[t]).text[0].numpy() for t in (str(secret), "my holiday photo.jpg")}
    for kind in (None, "auto", "vision"):
        func = registry.create(model=tiny_model, kind=kind)
        for query, expected in text_of.items():  # a query string is text, whatever the column holds
            np.testing.assert_allclose(func.compute_query_embeddings(query)[0], expected, atol=TOL)
    default = registry.create(model=tiny_model)  # kind=None: the column's strings are text too
    (row,) = default.compute_source_embeddings([str(secret)])
    np.testing.assert_allclose(row, text_of[str(secret)], atol=TOL)
    imu = tiny_model.embed(imu=[secret]).imu[0].numpy()
    np.testing.assert_allclose(default.compute_query_embeddings({"imu": str(secret)})[0], imu, atol=TOL)
    (auto_row,) = registry.create(model=tiny_model, kind="auto").compute_source_embeddings([str(secret)])
    np.testing.assert_allclose(auto_row, imu, atol=TOL)  # kind="auto": the column opted in to paths


def test_table_records_its_space_and_refuses_another(tmp_path, tiny_dir, assets_dir):
    """The table's metadata names the space; when the checkpoint's files change under it, the
    reopened table refuses to embed (both spaces named) unless allow_other_space=True."""
    from safetensors.torch import load_file, save_file

    from imagebind_sdk.vectors.space import SpaceMismatchError

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_dir, checkpoint)
    func = get_registry().get("imagebind-sdk").create(checkpoint=str(checkpoint), device="cpu")
    recorded = func.imagebind.space.id
    table = _make_table(lancedb.connect(tmp_path / "db"), func)
    table.add([{"source": "a dog"}, {"source": "a car"}])
    del table, func
    gc.collect()
    reopened = lancedb.connect(tmp_path / "db").open_table("assets")
    assert reopened.embedding_functions["vector"].function.space == recorded
    assert _top(reopened, "a dog")["source"] == "a dog"  # the same files: the same space
    tensors = load_file(checkpoint / "model.safetensors")
    name = next(k for k in tensors if "text" in k and tensors[k].is_floating_point())
    tensors[name] = tensors[name] * 0.5
    save_file(tensors, checkpoint / "model.safetensors")  # fine-tuned in place
    del reopened
    gc.collect()
    changed = lancedb.connect(tmp_path / "db").open_table("assets")
    with pytest.raises(Exception) as refused:  # LanceDB wraps the function's error in its retry error
        changed.search("a dog").limit(1).to_list()
    assert isinstance(refused.value.args[-1], SpaceMismatchError), refused.value
    message = str(refused.value.args[-1])
    assert "LanceDB table" in message and recorded in message and message.count("ib-") == 2
    conf = changed.embedding_functions["vector"].function
    anyway = get_registry().get("imagebind-sdk").create(**{**conf.safe_model_dump(), "allow_other_space": True})
    assert len(anyway.compute_query_embeddings("a dog")[0]) == 32
