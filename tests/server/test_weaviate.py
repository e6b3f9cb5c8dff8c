"""Weaviate multi2vec-bind compatibility: health, /meta, /vectorize shapes and reference numbers."""

from __future__ import annotations

import pytest
import torch

from conftest import ASSETS, golden_file_order
from .conftest import b64

FIELDS = ("textVectors", "imageVectors", "audioVectors", "videoVectors", "imuVectors", "depthVectors",
          "thermalVectors")
GOOD = {"images": "dog_image.jpg", "audio": "dog_audio.wav", "video": "video/wind_noise.mp4",
        "imu": "imu/imu1_2k.csv", "thermal": "thermal/190001.jpg", "depth": "depth/010002.jpg"}
IMAGES = [ASSETS / name for name in ("dog_image.jpg", "car_image.jpg", "bird_image.jpg")]


def assert_reference(got, ref: torch.Tensor) -> None:
    """Cosine >= 0.99999 and norms within 1e-4 relative: the scaling and clip mean included."""
    got = torch.tensor(got, dtype=torch.float32)
    ref = ref.float()
    assert got.shape == ref.shape
    cos = torch.nn.functional.cosine_similarity(got, ref, dim=-1)
    assert float(cos.min()) >= 0.99999, cos
    rel = (got.norm(dim=-1) - ref.norm(dim=-1)).abs() / ref.norm(dim=-1)
    assert float(rel.max()) <= 1e-4, rel


@pytest.mark.parametrize("path", ["/.well-known/live", "/.well-known/ready"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_health(client, path, method):
    r = client.request(method, path)
    assert r.status_code == 204 and r.content == b""


def test_meta(client):
    r = client.get("/meta")
    assert r.status_code == 200
    body = r.json()
    assert body["dimension"] == 32 and set(body["modalities"]) == {"vision", "text", "audio", "depth", "thermal", "imu"}
    assert body["model"]["source"].endswith("tiny") and body["version"]


@pytest.mark.parametrize("kind,field,answer", [("vision", "images", "imageVectors"),
                                               ("audio", "audio", "audioVectors")])
def test_files_equal_golden(client, golden_dir, golden_embeddings, kind, field, answer):
    names = golden_file_order(golden_dir, f"files/{kind}")
    r = client.post("/vectorize", json={field: [b64(ASSETS / n) for n in names]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert_reference(body[answer], golden_embeddings[f"files/{kind}"])
    assert all(body[f] == [] for f in FIELDS if f != answer)


def test_video_equals_golden_and_is_deterministic(client, golden_embeddings):
    video = b64(ASSETS / "video" / "wind_noise.mp4")
    texts = ["A dog.", "A car", "A bird"]
    first = client.post("/vectorize", json={"texts": texts, "video": [video]}).json()
    assert_reference(first["videoVectors"], golden_embeddings["files/video"])
    second = client.post("/vectorize", json={"texts": texts, "images": [b64(p) for p in IMAGES], "video": [video]})
    assert second.status_code == 200
    assert second.json()["videoVectors"] == first["videoVectors"]  # Weaviate's own test compares with ==
    assert len(second.json()["imageVectors"]) == 3 and len(second.json()["textVectors"]) == 3


def test_text_depth_thermal_imu_equal_sdk(client, tiny_model):
    depth = sorted((ASSETS / "depth").glob("*.jpg"))
    thermal = sorted((ASSETS / "thermal").glob("*.jpg"))
    imu = sorted((ASSETS / "imu").glob("*.csv"))
    texts = ["A dog.", "A car", "a much longer sentence about a bird singing in a tree"]
    r = client.post("/vectorize", json={"texts": texts, "depth": [b64(p) for p in depth],
                                        "thermal": [b64(p) for p in thermal], "imu": [b64(p) for p in imu]})
    assert r.status_code == 200, r.text
    body = r.json()
    ref = tiny_model.embed(text=texts, depth=[p.read_bytes() for p in depth], thermal=thermal, imu=imu,
                           normalize=False)
    for answer, kind in (("textVectors", "text"), ("depthVectors", "depth"), ("thermalVectors", "thermal"),
                         ("imuVectors", "imu")):
        assert_reference(body[answer], ref[kind])


def test_weaviate_request_shapes(client, assets_dir):
    two = client.post("/vectorize", json={"images": [b64(IMAGES[0]), b64(IMAGES[1])]}).json()
    assert len(two["imageVectors"]) == 2 and two["textVectors"] == []
    only_text = client.post("/vectorize", json={"texts": ["This is plane"]}).json()
    assert len(only_text["textVectors"]) == 1 and only_text["imageVectors"] == []
    png = client.post("/vectorize", json={"texts": [], "images": [b64(assets_dir / "alpha_0.png")]}).json()
    assert len(png["imageVectors"]) == 1 and len(png["imageVectors"][0]) == 32
    empty = client.post("/vectorize", json={}).json()
    assert all(empty[f] == [] for f in FIELDS)
    nulls = client.post("/vectorize", json={"texts": None, "images": None}).json()  # Go's nil slices
    assert nulls["imageVectors"] == []


@pytest.mark.parametrize("field", ["images", "audio", "video", "imu", "thermal", "depth"])
def test_bad_input_names_field_and_index(client, field):
    good = b64(ASSETS / GOOD[field])
    for bad, what in (("@@not base64@@", "base64"), (b64(ASSETS / "imu" / "imu6_1500.csv") if field != "imu"
                                                      else b64(IMAGES[0]), "could not read")):
        r = client.post("/vectorize", json={field: [good, bad]})
        assert 400 <= r.status_code < 500, r.text
        assert f"{field}[1]" in r.json()["error"] and what in r.json()["error"]
    r = client.post("/vectorize", json={field: [good]})  # the server stays up and serves the next request
    assert r.status_code == 200


@pytest.mark.parametrize("body,fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"texts": "a dog"}', "texts: expected an array"),
    (b'{"texts": ["ok", 3]}', "texts[1]"),
    (b'{"images": [42]}', "images[0]"),
])
def test_malformed_json(client, body, fragment):
    r = client.post("/vectorize", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and fragment in r.json()["error"]


def test_meta_names_the_space(client, tiny_model):
    """/meta carries the model space, the same id the SDK computes for the same files."""
    space = client.get("/meta").json()["space"]
    assert space["id"] == tiny_model.space.id and space["adapter"] is None
