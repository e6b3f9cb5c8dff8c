"""``backend="onnxruntime"`` on torch checkpoints: the export cache (imagebind_sdk.export.cache).

Every test gets its own empty cache (``IMAGEBIND_CACHE``) and exports only the text
encoder of the tiny checkpoint (the smallest graph), so each export takes a second or two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx", reason="needs onnx: pip install 'imagebind-sdk[onnx]'")
pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'imagebind-sdk[onnx]'")

from conftest import REPO, populate_hub_cache  # noqa: E402
from imagebind_sdk import ImageBind  # noqa: E402
from imagebind_sdk.export.cache import CACHE_ENV, cache_root  # noqa: E402
from imagebind_sdk.export.onnx import export_onnx  # noqa: E402
from imagebind_sdk.progress import asked  # noqa: E402

TEXTS = ["a dog", "a car on a road", ""]
ATOL = 1e-5


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


@pytest.fixture(scope="module")
def reference(tiny_dir: Path) -> torch.Tensor:
    return ImageBind.load(tiny_dir, device="cpu", modalities=["text"]).embed(text=TEXTS).text


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "onnx").iterdir() if p.is_dir() and p.name != "hashes")


def _load(source: Path | str, **options) -> ImageBind:
    return ImageBind.load(source, backend="onnxruntime", modalities=["text"], **options)


@pytest.mark.parametrize("name", ["", "model.safetensors", "model.pth"])
def test_any_torch_source_exports_once(cache: Path, tiny_dir: Path, reference: torch.Tensor, name: str) -> None:
    """A directory, a .safetensors and a .pth file: exported on first use, then read from the cache."""
    source = tiny_dir / name if name else tiny_dir
    model = _load(source)
    assert model.backend == "onnxruntime" and "backend='onnxruntime'" in repr(model)
    assert model.source == str(source)
    assert float((model.embed(text=TEXTS).text - reference).abs().max()) <= ATOL
    [entry] = _entries(cache)
    graph = entry / "text.onnx"
    stamp = graph.stat().st_mtime_ns
    again = _load(source)  # from the cache: the graph is not written again
    assert graph.stat().st_mtime_ns == stamp and _entries(cache) == [entry]
    assert torch.equal(again.embed(text=TEXTS).text, model.embed(text=TEXTS).text)


def test_hub_checkpoint_keyed_by_revision(cache: Path, tmp_path: Path, tiny_dir: Path, reference: torch.Tensor) -> None:
    """A Hub id (from huggingface_hub's cache, offline): the entry is keyed by the snapshot's commit."""
    hf = tmp_path / "hf"
    files = {"model.safetensors": tiny_dir / "model.safetensors", "config.json": tiny_dir / "config.json"}
    populate_hub_cache(hf, "someone/tiny-imagebind", files, "a" * 40)
    model = _load("someone/tiny-imagebind", cache_dir=hf, local_files_only=True)
    assert float((model.embed(text=TEXTS).text - reference).abs().max()) <= ATOL
    [entry] = _entries(hf / "imagebind-sdk")  # cache_dir= puts the entries beside the Hub files
    assert not (cache / "onnx").exists()
    assert json.loads((entry / "onnx.json").read_text())["source"] == "someone/tiny-imagebind"
    populate_hub_cache(hf, "someone/tiny-imagebind", files, "b" * 40)  # a new revision: a new entry
    _load("someone/tiny-imagebind", cache_dir=hf, local_files_only=True)
    assert len(_entries(hf / "imagebind-sdk")) == 2


def test_quantisation_and_modalities(cache: Path, tiny_dir: Path, reference: torch.Tensor) -> None:
    """int8 is its own entry (int8 graphs only); modalities are exported when first asked for."""
    int8 = _load(tiny_dir, quantize="int8")
    assert int8.quantize == "int8" and "quantize='int8'" in repr(int8)
    cosine = torch.nn.functional.cosine_similarity(int8.embed(text=TEXTS).text, reference)
    assert float(cosine.min()) >= 0.99
    [entry] = _entries(cache)
    assert sorted(p.name for p in entry.glob("*.onnx")) == ["text.int8.onnx"]
    stamp = (entry / "text.int8.onnx").stat().st_mtime_ns
    both = ImageBind.load(tiny_dir, backend="onnxruntime", quantize="int8", modalities=["text", "depth"])
    assert both.modalities == ("text", "depth")
    assert sorted(p.name for p in entry.glob("*.onnx")) == ["depth.int8.onnx", "text.int8.onnx"]
    assert (entry / "text.int8.onnx").stat().st_mtime_ns == stamp  # kept, not exported again
    _load(tiny_dir)
    assert len(_entries(cache)) == 2


@pytest.mark.parametrize("damage", ["truncated graph", "missing graph", "bad manifest", "missing cache record"])
def test_damaged_entry_is_redone(cache: Path, tiny_dir: Path, reference: torch.Tensor, damage: str) -> None:
    _load(tiny_dir)
    [entry] = _entries(cache)
    graph = entry / "text.onnx"
    size = graph.stat().st_size
    if damage == "truncated graph":
        graph.write_bytes(graph.read_bytes()[: size // 2])
    elif damage == "missing graph":
        graph.unlink()
    elif damage == "bad manifest":
        (entry / "onnx.json").write_text('{"format": "imagebind-sdk-onnx", "files": ')
    else:
        (entry / "cache.json").unlink()
    leftover = entry.parent / f".{entry.name}.killed"  # what an export killed midway leaves behind
    (leftover / "half").mkdir(parents=True)
    model = _load(tiny_dir)
    assert graph.stat().st_size == size and not leftover.exists()
    assert float((model.embed(text=TEXTS).text - reference).abs().max()) <= ATOL


def test_export_folder_loads_directly(cache: Path, tmp_path: Path, tiny_dir: Path, reference: torch.Tensor) -> None:
    folder = export_onnx(ImageBind.load(tiny_dir, device="cpu", modalities=["text"]), tmp_path / "exported")
    model = _load(folder)
    assert model.source == str(folder)
    assert float((model.embed(text=TEXTS).text - reference).abs().max()) <= ATOL
    assert not cache.exists()  # nothing exported, nothing cached


def test_progress_bar(cache: Path, tiny_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The export shows a bar when progress is asked for (by default: only on a terminal)."""
    with asked(True):
        _load(tiny_dir)
    assert "exporting to ONNX" in capsys.readouterr().err
    _load(tiny_dir)  # from the cache: no bar
    assert "exporting to ONNX" not in capsys.readouterr().err


def test_cache_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "ib"))
    assert cache_root() == tmp_path / "ib" / "onnx"
    assert cache_root(tmp_path / "hf") == tmp_path / "hf" / "imagebind-sdk" / "onnx"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    code = "from imagebind_sdk.export.cache import cache_root; print(cache_root())"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == str(tmp_path / "hub" / "imagebind-sdk" / "onnx")


CHILD = """
import logging, os, sys, time
from pathlib import Path
from imagebind_sdk import ImageBind
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
Path(sys.argv[2]).touch()
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
model = ImageBind.load(sys.argv[1], backend="onnxruntime", modalities=["text"])
print(model.embed(text=["a dog"]).text[0].tolist())
"""


def test_concurrent_processes_export_once(cache: Path, tmp_path: Path, tiny_dir: Path, reference: torch.Tensor) -> None:
    """Two real processes asking for the same entry at the same moment: one exports, both load it."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(tiny_dir), str(tmp_path / f"ready{i}"), str(go)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both are started (torch imported) before either looks at the cache
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    exports = sum(err.count("exporting the text encoder") for _, err in outputs)
    assert exports == 1, [err for _, err in outputs]
    for out, _ in outputs:
        vector = torch.tensor(json.loads(out.strip().splitlines()[-1]))
        assert float((vector - reference[0]).abs().max()) <= ATOL
    [entry] = _entries(cache)
    assert not [p for p in (cache / "onnx").iterdir() if p.name.startswith(".")]  # no temporary left behind
    assert sorted(p.name for p in entry.iterdir()) == ["cache.json", "config.json", "onnx.json", "text.onnx"]
