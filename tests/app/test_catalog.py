"""The catalog (items of bulk outputs) and the ``app`` command's indexing, in process with the tiny checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from imagebind_sdk.app.catalog import Catalog, Item, output_dirs
from imagebind_sdk.app.indexing import build_index, default_index_dir, plan
from imagebind_sdk.app.server import index_checkpoint


def _catalog(n: int = 300, dim: int = 16) -> Catalog:
    generator = torch.Generator().manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(n, dim, generator=generator), dim=-1)
    vectors[6] = vectors[3]  # a tie: the lower id must come first
    kinds = ["vision", "audio", "video"]
    return Catalog([Item(i, f"/x/{i}", kinds[i % 3]) for i in range(n)], vectors)


def test_kind_filtered_search_is_the_index_search():
    catalog = _catalog()
    for query_row in (3, 10, 200):
        query = catalog.index.embeddings[query_row]
        for kinds in (["vision"], ["audio", "video"], ["vision", "audio", "video"]):
            got = catalog.search(query, 12, kinds)
            want = catalog.index.search(query.unsqueeze(0), top_k=12, kinds=kinds)[0]
            assert [r["id"] for r in got] == [h["corpus_id"] for h in want]
            assert [r["score"] for r in got] == pytest.approx([h["score"] for h in want], abs=1e-6)
    tied = catalog.search(catalog.index.embeddings[3], 2, ["vision"])
    assert [r["id"] for r in tied] == [3, 6]
    assert catalog.search(catalog.index.embeddings[0], 5, ["depth"]) == []
    assert len(catalog.search(catalog.index.embeddings[0], 1000, ["audio"])) == 100


def test_unknown_ids_and_folders_are_named():
    catalog = _catalog(9)
    with pytest.raises(KeyError, match=r"no item 9: ids are 0\.\.8"):
        catalog.item(9)
    with pytest.raises(KeyError, match="no item -1"):
        catalog.vectors([-1])


def test_output_dirs(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        output_dirs(tmp_path / "missing")
    with pytest.raises(ValueError, match="is not a bulk output"):
        output_dirs(tmp_path)


def test_default_index_dir_is_keyed_by_paths_model_and_windows(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("IMAGEBIND_APP_CACHE", str(tmp_path))
    a = default_index_dir(["photos", "music"], "imagebind-huge", False)
    assert a.parent == tmp_path
    assert a == default_index_dir(["music", "photos"], "imagebind-huge", False)  # order does not matter
    assert a != default_index_dir(["photos"], "imagebind-huge", False)
    assert a != default_index_dir(["photos", "music"], "other", False)
    assert a != default_index_dir(["photos", "music"], "imagebind-huge", True)


def test_build_index_resumes_and_lists_only_the_given_files(tiny_dir: Path, assets_dir: Path, tmp_path: Path):
    from imagebind_sdk import ImageBind

    model = ImageBind.load(str(tiny_dir), modalities=["vision", "audio", "depth"])
    images = [str(assets_dir / n) for n in ("dog_image.jpg", "car_image.jpg")]
    wav = str(assets_dir / "dog_audio.wav")
    todo = plan([*images, wav, str(tiny_dir / "config.json")], windows=True)
    assert todo.jobs == [(images, "files", {}), ([wav], "windows", {"windows": True})]
    assert todo.unknown == [str(tiny_dir / "config.json")]

    first = build_index(model, [*images, wav], tmp_path, windows=True)
    parts = sorted(p.name for p in tmp_path.rglob("part-*.parquet"))
    assert [i.kind for i in first.items] == ["vision", "vision", "audio", "audio"]  # two 2 s windows
    assert first.items[2].start_s == 0.0 and first.items[3].end_s > first.items[3].start_s
    again = build_index(model, [*images, wav], tmp_path, windows=True)
    assert sorted(p.name for p in tmp_path.rglob("part-*.parquet")) == parts  # nothing embedded again
    assert torch.equal(again.index.embeddings, first.index.embeddings)
    fewer = build_index(model, images[:1], tmp_path, windows=True)  # the same folder, one file asked for
    assert [i.path for i in fewer.items] == images[:1]
    # Query vectors and indexed vectors come from the same model: an indexed image finds itself.
    query = model.embed(vision=[images[1]]).vision[0]
    assert first.search(query, 1)[0]["path"] == images[1]
    # Depth images are named by the user (they look like any image): embedded as depth, not vision.
    depth = str(assets_dir / "depth" / "010002.jpg")
    mixed = build_index(model, [*images, depth], tmp_path, windows=True, named={"depth": [depth]})
    assert [(i.path, i.kind) for i in mixed.items if i.path == depth] == [(depth, "depth")]
    want = model.embed(depth=[depth]).depth[0]
    assert torch.allclose(mixed.vectors([[i.path for i in mixed.items].index(depth)])[0], want, atol=1e-5)
    # serve --index without --checkpoint uses the checkpoint that built the index.
    assert index_checkpoint(tmp_path) == first.checkpoint["source"] and "tiny" in first.checkpoint["source"]


def test_media_is_served_only_for_media_files_the_catalog_lists(tmp_path: Path, assets_dir: Path):
    """A bulk output from elsewhere may list any path: only existing media files are served."""
    from imagebind_sdk.app.media import media_file
    from imagebind_sdk.server.errors import ApiError

    secret = tmp_path / "id_rsa"
    secret.write_text("key")
    items = [Item(0, "/etc/passwd", "vision"), Item(1, str(secret), "audio"),
             Item(2, str(tmp_path / "gone.jpg"), "vision"), Item(3, str(assets_dir / "dog_audio.wav"), "audio")]
    for item, message in zip(items[:3], ("not a media file", "not a media file", "is gone")):
        with pytest.raises(ApiError, match=message) as caught:
            media_file(item)
        assert caught.value.status == 404
    path, media_type = media_file(items[3])
    assert path == Path(items[3].path) and media_type.startswith("audio/")


def test_app_sets_every_option_that_serve_reads():
    """`imagebind-sdk app` runs serve's code with its own smaller option set: every option of
    `serve` must have a value in app's namespace (a new serve option once made `app` exit 1; the test_search_api servers would all fail)."""
    from imagebind_sdk.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    serve_dests = {a.dest for a in commands["serve"]._actions if a.dest != "help"}
    app_args = parser.parse_args(["app", "photos/"])
    missing = sorted(d for d in serve_dests if not hasattr(app_args, d))
    assert not missing, f"`app` has no value for serve's {missing}"
