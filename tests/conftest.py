"""Shared fixtures: where the golden reference data and sample assets live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# MKL picks CPU-specific kernels (AVX-512 vs AVX2 FFT/GEMM), which moves log-mel values
# by up to 3e-4 from the golden (made on another CPU). Conditional Numerical
# Reproducibility makes MKL's results the same on every x86 CPU, so the golden audio
# tensors are met to 2.4e-7 here. Set before torch loads MKL; subprocesses inherit it.
os.environ.setdefault("MKL_CBWR", "COMPATIBLE")

REPO = Path(__file__).resolve().parents[1]


def _golden_dir() -> Path:
    env = os.environ.get("IMAGEBIND_GOLDEN")
    return Path(env) if env else REPO.parent / "shared" / "golden"


GOLDEN = _golden_dir()
ASSETS = GOLDEN.parent / "assets"
TINY = GOLDEN / "tiny"

_MISSING = (
    f"golden reference data not found at {GOLDEN} "
    "(set IMAGEBIND_GOLDEN to the folder holding tiny/, embeddings.safetensors, ...)"
)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not (GOLDEN / "embeddings.safetensors").exists():
        pytest.skip(_MISSING)
    return GOLDEN


@pytest.fixture(scope="session")
def assets_dir(golden_dir: Path) -> Path:
    if not ASSETS.is_dir():
        pytest.skip(f"sample assets not found at {ASSETS}")
    return ASSETS


@pytest.fixture(scope="session")
def tiny_dir(golden_dir: Path) -> Path:
    return golden_dir / "tiny"


@pytest.fixture(scope="session")
def golden_preprocess(golden_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(golden_dir / "preprocess.safetensors"))


@pytest.fixture(scope="session")
def golden_embeddings(golden_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(golden_dir / "embeddings.safetensors"))


def populate_hub_cache(cache_dir: Path, repo_id: str, files: dict[str, Path], commit: str) -> Path:
    """Lay files out as huggingface_hub's cache does (blobs, snapshots, refs/main).

    This is the documented cache layout that ``hf_hub_download(local_files_only=True)``
    reads; it stands in for a real download, which cannot happen without internet.
    """
    import hashlib

    repo_dir = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    for name, source in files.items():
        data = Path(source).read_bytes()
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path):
    """The tiny golden checkpoint, all six encoders, float32 on CPU."""
    from imagebind_sdk import ImageBind

    return ImageBind.load(tiny_dir, device="cpu")


def unit(x):
    """Rows scaled to unit length (the reference output includes a logit scale)."""
    return x / x.norm(dim=-1, keepdim=True)


def assert_matches_reference(out, reference, cos_min: float = 0.99999, atol: float = 1e-4) -> None:
    """The golden README's tolerance for unit-normalised embeddings."""
    ref = unit(reference.float())
    assert out.shape == ref.shape, (out.shape, ref.shape)
    cos = (unit(out.float()) * ref).sum(-1)
    assert float(cos.min()) >= cos_min, f"cosine {cos.tolist()} below {cos_min}"
    assert float((out - ref).abs().max()) <= atol, f"max abs diff {float((out - ref).abs().max())}"


def golden_file_order(golden_dir: Path, key: str) -> list[str]:
    """The asset file names behind ``files/<kind>`` in embeddings.safetensors, in row order
    (manifest.json describes each as "... in order: a.jpg, b.jpg")."""
    import json

    text = json.loads((golden_dir / "manifest.json").read_text())["tensors"][key]
    return [name.strip() for name in text.split("in order:", 1)[1].split(",")]
