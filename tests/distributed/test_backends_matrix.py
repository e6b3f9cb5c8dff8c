"""Every backend from every door: entry points x backends on the tiny checkpoint (issue 16, item 4).

Entry points: Python ``embed``, the CLI's ``embed``, a server's ``/v1/embed``,
``embed_files``, ``embed_dataset`` on a local Ray cluster, the LangChain adapter.
Backends: torch float32, torch int8, onnxruntime float32, onnxruntime int8. Each cell
embeds the same texts and images; float32 cells equal in-process torch float32 within
1e-5, int8 cells reach cosine >= 0.99 with it. One ONNX cache (exported once, by the
first cell that needs it) serves the whole module, its subprocesses and Ray workers;
one Ray cluster serves every ``embed_dataset`` cell; one server per backend.
It lives beside the Ray tests to share their cluster fixture.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'imagebind-sdk[onnx]'")
pytest.importorskip("langchain_core", reason="needs langchain-core: pip install 'imagebind-sdk[langchain]'")
httpx = pytest.importorskip("httpx", reason="pip install httpx")

from conftest import REPO  # noqa: E402
from imagebind_sdk import ImageBind, embed_files  # noqa: E402
from imagebind_sdk.bulk.store import load_bulk_output  # noqa: E402
from imagebind_sdk.distributed import embed_dataset  # noqa: E402
from imagebind_sdk.vectors.embeddings import Embeddings  # noqa: E402
from imagebind_sdk.export.cache import CACHE_ENV  # noqa: E402

BACKENDS = {
    "torch-float32": {},
    "torch-int8": {"quantize": "int8"},
    "onnxruntime-float32": {"backend": "onnxruntime"},
    "onnxruntime-int8": {"backend": "onnxruntime", "quantize": "int8"},
}
TEXTS = ["a dog", "a car on a road", "bird song at dawn"]
IMAGES = ("dog_image.jpg", "car_image.jpg", "bird_image.jpg")
ATOL = 1e-5
MIN_COSINE = 0.99


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory):
    """One export cache for the module; set before the Ray cluster starts so its workers see it."""
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("onnx-cache"))
    yield Path(os.environ[CACHE_ENV])
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


@pytest.fixture(scope="module")
def cluster(onnx_cache: Path, ray_cluster: str) -> str:
    return ray_cluster


@pytest.fixture(scope="module")
def images(assets_dir: Path) -> list[str]:
    return [str(assets_dir / name) for name in IMAGES]


@pytest.fixture(scope="module")
def reference(tiny_dir: Path, images: list[str]) -> dict[str, torch.Tensor]:
    out = ImageBind.load(tiny_dir, device="cpu", modalities=["text", "vision"]).embed(text=TEXTS, vision=images)
    return {"text": out.text, "vision": out.vision}


def check(backend: str, got: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> None:
    """The cell's tolerance: float32 within ATOL of torch float32, int8 at cosine >= MIN_COSINE."""
    for kind, want in reference.items():
        if kind not in got:
            continue
        vectors = torch.as_tensor(got[kind], dtype=torch.float32)
        assert vectors.shape == want.shape, (backend, kind, vectors.shape)
        assert bool(torch.isfinite(vectors).all()), (backend, kind)
        if backend.endswith("float32"):
            diff = float((vectors - want).abs().max())
            assert diff <= ATOL, f"{backend} {kind}: max abs diff {diff:.2e} > {ATOL}"
        else:
            cosine = float(torch.nn.functional.cosine_similarity(vectors, want).min())
            assert cosine >= MIN_COSINE, f"{backend} {kind}: cosine {cosine:.4f} < {MIN_COSINE}"


@pytest.fixture(scope="module")
def models(onnx_cache: Path, tiny_dir: Path) -> dict[str, ImageBind]:
    return {name: ImageBind.load(tiny_dir, device="cpu", modalities=["text", "vision"], **options)
            for name, options in BACKENDS.items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_python_embed(models, backend, images, reference) -> None:
    model = models[backend]
    expected = BACKENDS[backend]
    assert model.backend == expected.get("backend", "torch") and model.quantize == expected.get("quantize")
    assert f"backend={model.backend!r}" in repr(model)
    out = model.embed(text=TEXTS, vision=images)
    check(backend, {"text": out.text, "vision": out.vision}, reference)


@pytest.mark.parametrize("backend", BACKENDS)
def test_embed_files(models, backend, images, reference) -> None:
    result = embed_files(models[backend], images, batch_size=2)
    assert result.embeddings.sources["vision"] == images
    check(backend, {"vision": result.embeddings.vision}, reference)


@pytest.mark.parametrize("backend", BACKENDS)
def test_langchain(onnx_cache, tiny_dir, backend, images, reference) -> None:
    from imagebind_sdk.integrations.langchain import ImageBindEmbeddings

    adapter = ImageBindEmbeddings(checkpoint=tiny_dir, device="cpu", modalities=["text", "vision"],
                                  **BACKENDS[backend])
    assert adapter.model.backend == BACKENDS[backend].get("backend", "torch")
    check(backend, {"text": adapter.embed_documents(TEXTS), "vision": adapter.embed_image(images)}, reference)


def _flags(backend: str) -> list[str]:
    return [f"--{name}={value}" for name, value in BACKENDS[backend].items()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_embed(onnx_cache, tiny_dir, tmp_path, backend, images, reference) -> None:
    out = tmp_path / "emb.safetensors"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "imagebind_sdk", "--checkpoint", str(tiny_dir), "--device", "cpu", "--verbose",
           "embed", *_flags(backend), "--text", *TEXTS, "--image", *images, "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"backend='{BACKENDS[backend].get('backend', 'torch')}'" in res.stderr  # the --verbose log
    got = Embeddings.load(out)
    check(backend, {"text": got.text, "vision": got.vision}, reference)


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_embed(onnx_cache, backend, images, reference) -> None:
    from server.conftest import ServerProcess

    server = ServerProcess("--device", "cpu", "--max-wait-ms", "5", *_flags(backend)).wait_ready()
    try:
        meta = httpx.get(server.url + "/meta", timeout=30).json()
        assert meta["backend"] == BACKENDS[backend].get("backend", "torch")
        assert meta["quantize"] == BACKENDS[backend].get("quantize")
        payload = {"text": TEXTS, "vision": [base64.b64encode(Path(p).read_bytes()).decode() for p in images]}
        r = httpx.post(server.url + "/v1/embed", json=payload, timeout=60)
        assert r.status_code == 200, r.text
        check(backend, r.json()["embeddings"], reference)
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_embed_dataset(cluster, tiny_dir, tmp_path, backend, images, reference) -> None:
    out = tmp_path / "out"
    summary = embed_dataset(images, checkpoint=tiny_dir, out=out, batch_size=2, concurrency=1,
                            num_cpus_per_actor=0.5, **BACKENDS[backend])
    assert (summary.embedded, summary.failed) == (len(images), 0)
    loaded = load_bulk_output(out)
    order = [loaded.sources["vision"].index(p) for p in images]
    check(backend, {"vision": loaded.vision[order]}, reference)


def test_embed_dataset_checks_load_options_before_ray(tiny_dir, tmp_path, images) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        embed_dataset(images, checkpoint=tiny_dir, out=tmp_path / "a", backend="tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU"):
        embed_dataset(images, checkpoint=tiny_dir, out=tmp_path / "b", backend="onnxruntime", device="cuda")
    with pytest.raises(ValueError, match="quantize"):
        embed_dataset(images, checkpoint=tiny_dir, out=tmp_path / "c", quantize="int4")
    assert not (tmp_path / "a").exists()


def _numbers(value) -> list[float]:
    """Every number in a JSON document, in document order (labels and paths left out)."""
    if isinstance(value, dict):
        return [x for key in sorted(value) for x in _numbers(value[key])]
    if isinstance(value, list):
        return [x for item in value for x in _numbers(item)]
    return [float(value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def test_cli_commands_take_the_backend(cluster, tiny_dir, assets_dir, tmp_path, images, reference, capsys,
                                       monkeypatch) -> None:
    """classify, similarity and moments with --backend onnxruntime (float32: the torch numbers within 1e-5;
    int8: runs), and embed --engine ray with --backend onnxruntime --quantize int8."""
    from imagebind_sdk.cli import main

    monkeypatch.setenv("IMAGEBIND_CHECKPOINT", str(tiny_dir))
    commands = [
        ["classify", "--image", *images, "--labels", "dog,car,bird", "--json"],
        ["similarity", "--a-text", "a dog", "a car", "--b-image", *images, "--json"],
        ["moments", "--audio", str(assets_dir / "long_48k_mono_0.wav"), "--text", "a dog", "--json"],
    ]
    for command in commands:
        outputs = {}
        for backend in ("torch-float32", "onnxruntime-float32", "onnxruntime-int8"):
            assert main(["--device", "cpu", *command, *_flags(backend)]) == 0, (command[0], backend)
            outputs[backend] = _numbers(json.loads(capsys.readouterr().out))
        torch_numbers, ort_numbers = torch.tensor(outputs["torch-float32"]), torch.tensor(outputs["onnxruntime-float32"])
        assert len(outputs["onnxruntime-int8"]) == len(torch_numbers) > 0, command[0]
        assert float((ort_numbers - torch_numbers).abs().max()) <= ATOL, command[0]
    out = tmp_path / "ray-out"
    argv = ["--device", "cpu", "embed", *images, "--engine", "ray", "--out", str(out), "--concurrency", "1",
            *_flags("onnxruntime-int8")]
    assert main(argv) == 0
    loaded = load_bulk_output(out)
    check("onnxruntime-int8", {"vision": loaded.vision[[loaded.sources["vision"].index(p) for p in images]]},
          reference)
