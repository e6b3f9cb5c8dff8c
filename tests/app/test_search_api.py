"""The search API of ``imagebind-sdk app`` over real HTTP: search, media (ranges), thumbnails, zero-shot, similarity."""

from __future__ import annotations

import base64
import http.client
import io
from pathlib import Path

import pytest
import torch

from conftest import ASSETS

from .conftest import API_KEY, httpx


def b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def search(client, body, status: int = 200) -> dict:
    response = client.post("/v1/search", json=body)
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
def catalog(app_server, index_dir):
    from imagebind_sdk.app.catalog import Catalog

    return Catalog.load([index_dir])


def test_status_and_items(client, catalog):
    status = client.get("/v1/app/status").json()
    assert status["stage"] == "ready" and status["done"] == status["total"] == 8
    assert status["items"] == len(catalog) and set(status["kinds"]) == {"vision", "audio", "video", "imu"}
    assert status["max_request_bytes"] == 64 * 1024 * 1024  # the page checks uploads against it
    listed = client.get("/v1/items", params={"limit": 1000}).json()
    assert listed["total"] == len(catalog)
    assert [item["id"] for item in listed["items"]] == list(range(len(catalog)))
    windowed = [item for item in listed["items"] if item["kind"] == "audio"]
    assert windowed and all(item["end_s"] > item["start_s"] >= 0 for item in windowed)


def test_progress_is_reported_while_indexing(app_server):
    """/v1/app/status answers during start-up: the model loads, then the files are counted in."""
    stages = [stage for stage, _, _ in app_server.seen]
    assert "indexing" in stages, app_server.seen
    counts = [done for stage, done, total in app_server.seen if stage == "indexing" and total == 8]
    assert counts and counts == sorted(counts) and counts[0] < 8


def test_uploaded_indexed_image_is_top_1(client):
    """The server's query path (decode + engine) gives the bulk path's vector: cosine 1 to 1e-5."""
    dog = ASSETS / "dog_image.jpg"
    top = search(client, {"query": [{"vision": {"b64": b64(dog)}}], "top_k": 3})["results"]
    assert top[0]["path"] == str(dog) and top[0]["kind"] == "vision"
    assert top[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert set(top[0]) == {"id", "path", "kind", "score", "start_s", "end_s"}
    # One TERM as the whole query, and a multipart upload with the kind taken from the file name.
    alone = search(client, {"query": {"vision": {"b64": b64(dog)}}, "top_k": 1})["results"]
    form = client.post("/v1/search", files={"file": ("dog.jpg", dog.read_bytes(), "application/octet-stream")},
                       data={"top_k": "1"})
    assert form.status_code == 200, form.text
    assert alone[0]["id"] == form.json()["results"][0]["id"] == top[0]["id"]


def test_text_query_top_k_and_kinds(client):
    results = search(client, {"query": [{"text": "a dog barking"}], "top_k": 5})["results"]
    assert len(results) == 5
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    audio = search(client, {"text": "a dog barking", "top_k": 4, "kinds": ["audio"]})["results"]
    assert len(audio) == 4 and {r["kind"] for r in audio} == {"audio"}
    assert all(r["end_s"] > r["start_s"] for r in audio)
    form = client.post("/v1/search", data={"text": "a dog barking", "top_k": "4", "kinds": "audio"})
    assert [r["id"] for r in form.json()["results"]] == [r["id"] for r in audio]


def test_weighted_terms_are_ops_compose(client, catalog):
    """Embedding arithmetic over ids and text equals ops.compose of the same unit vectors."""
    from imagebind_sdk.vectors.ops import compose, search as cosine_search

    text = client.post("/v1/embed", json={"text": ["rain"]}).json()["embeddings"]["text"][0]
    a, b = 0, 5
    expected_query = compose(catalog.vectors([a])[0], catalog.vectors([b])[0], torch.tensor(text),
                             weights=[1.0, -0.5, 0.25])
    expected = cosine_search(expected_query, catalog.index.embeddings, top_k=6)[0]
    body = {"query": [{"id": a}, {"id": b, "weight": -0.5}, {"text": "rain", "weight": 0.25}], "top_k": 6}
    got = search(client, body)["results"]
    assert [r["id"] for r in got] == [h["corpus_id"] for h in expected]
    assert [r["score"] for r in got] == pytest.approx([h["score"] for h in expected], abs=1e-5)
    more = search(client, {"query": [{"id": a}], "top_k": 1})["results"]  # "more like this"
    assert more[0]["id"] == a and more[0]["score"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("body", "expected"), [
    ({"query": [{"vision": {"b64": base64.b64encode(b"not an image").decode()}}]}, "query[0].vision"),
    ({"query": [{"audio": {"b64": "%%%"}}]}, "not valid base64"),
    ({"query": [{"text": "a", "image": "x"}]}, "exactly one of"),
    ({"query": [{"text": "a", "weight": "heavy"}]}, "query[0].weight"),
    ({"query": [{"id": 10_000}]}, "no item 10000"),
    ({"query": [{"text": "a"}], "top_k": 0}, "top_k"),
    ({"query": [{"text": "a"}], "kinds": ["smell"]}, "kinds"),
    ({"query": [{"text": "a"}] * 17}, "at most 16"),
    ({"query": [{"id": 0}, {"id": 0, "weight": -1}]}, "cancel"),
    ({"query": []}, "at least one term"),
])
def test_bad_queries_name_the_field(client, body, expected):
    response = client.post("/v1/search", json=body)
    assert response.status_code in (400, 404), response.text
    assert expected in response.json()["error"]


def test_corrupt_multipart_upload_is_a_readable_400(client):
    response = client.post("/v1/search", files={"file": ("broken.jpg", b"\xff\xd8 garbage", "image/jpeg")})
    assert response.status_code == 400
    assert "could not read this vision input" in response.json()["error"]
    unknown = client.post("/v1/search", files={"file": ("notes.xyz", b"hello", "application/octet-stream")})
    assert unknown.status_code == 400 and "cannot tell the input kind" in unknown.json()["error"]


def test_media_answers_ranges(client, catalog):
    audio = next(item for item in catalog.items if item.kind == "audio")
    data = Path(audio.path).read_bytes()
    whole = client.get(f"/v1/items/{audio.id}/media")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"].startswith("audio/") and whole.headers["accept-ranges"] == "bytes"
    part = client.get(f"/v1/items/{audio.id}/media", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    """A GET with the path exactly as given (httpx would normalise ``..``)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


@pytest.mark.parametrize("path", [
    "/v1/items/../../../../etc/passwd/media", "/v1/items/..%2F..%2F..%2Fetc%2Fpasswd/media",
    "/v1/items/%2Fetc%2Fpasswd/media", "/v1/items/-1/media", "/v1/items/1e3/media", "/v1/items/999999/media",
    "/v1/items/999999/thumbnail",
])
def test_media_serves_only_indexed_files(app_server, path):
    status, body = _raw_get(app_server.url, path)
    assert status in (400, 404), (status, body[:200])
    assert b"root:" not in body


def test_thumbnails(client, catalog):
    from PIL import Image

    for kind in ("vision", "video"):
        item = next(i for i in catalog.items if i.kind == kind)
        response = client.get(f"/v1/items/{item.id}/thumbnail")
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.format == "JPEG" and max(image.size) <= 320
    audio = next(i for i in catalog.items if i.kind == "audio")
    response = client.get(f"/v1/items/{audio.id}/thumbnail")
    assert response.status_code == 404 and "no thumbnail for audio" in response.json()["error"]


def test_item_zero_shot_matches_the_zero_shot_endpoint(client, catalog):
    dog = next(i for i in catalog.items if i.path.endswith("dog_image.jpg"))
    labels = ["dog", "car", "bird"]
    got = client.post("/v1/items/zero-shot", json={"id": dog.id, "labels": "dog, car, bird"})
    assert got.status_code == 200, got.text
    probabilities = got.json()["probabilities"]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-6)
    reference = client.post("/v1/zero-shot", json={"vision": [b64(dog.path)], "labels": labels}).json()
    assert probabilities == pytest.approx(reference["probabilities"][0], abs=1e-5)


def test_item_similarity(client, catalog):
    ids = [0, 3, 14]
    matrix = torch.tensor(client.post("/v1/items/similarity", json={"ids": ids}).json()["matrix"])
    vectors = catalog.vectors(ids)
    assert torch.allclose(matrix, vectors @ vectors.T, atol=1e-5)
    assert torch.allclose(matrix.diagonal(), torch.ones(3), atol=1e-5)
    bad = client.post("/v1/items/similarity", json={"ids": [0, 99999]})
    assert bad.status_code == 404 and "no item 99999" in bad.json()["error"]


def test_page_is_served_offline(client):
    from imagebind_sdk.app.page import static_files

    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for path, (data, _) in static_files().items():
        text = data.decode("utf-8")
        assert "http://" not in text and "https://" not in text and "@import" not in text, path
        assert client.get(path).content == data
    assert client.get("/app/../pyproject.toml").status_code == 404


def test_api_key(key_server):
    """With --api-key the API answers 401 without the key; the page itself loads (to ask for it)."""
    with httpx.Client(base_url=key_server.url, timeout=60) as c:
        assert c.post("/v1/search", json={"text": "dog"}).status_code == 401
        assert c.get("/v1/items/0/media").status_code == 401
        assert c.get("/").status_code == 200
        headers = {"Authorization": f"Bearer {API_KEY}"}
        ok = c.post("/v1/search", json={"text": "dog", "top_k": 2}, headers=headers)
        assert ok.status_code == 200 and len(ok.json()["results"]) == 2


def test_serve_index_refuses_a_folder_that_is_not_an_output(tmp_path):
    import subprocess
    import sys

    from .conftest import REPO, TINY

    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "imagebind_sdk", "serve", "--index", str(tmp_path),
                             "--checkpoint", str(TINY)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "is not a bulk output" in result.stderr and str(tmp_path) in result.stderr


def test_app_refuses_missing_paths_and_folders_without_media(tmp_path):
    import subprocess
    import sys

    from .conftest import REPO, TINY

    (tmp_path / "notes.txt").write_text("no media here")
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    missing = str(tmp_path / "missing")
    for paths, message in (([missing], "no such file, folder or glob match"),
                           (["--depth", missing], "no such file, folder or glob match"),
                           ([str(tmp_path)], "no image, audio, video or IMU files")):
        result = subprocess.run([sys.executable, "-m", "imagebind_sdk", "app", *paths, "--checkpoint", str(TINY),
                                 "--index-dir", str(tmp_path / "index")],
                                capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and paths[-1] in result.stderr
