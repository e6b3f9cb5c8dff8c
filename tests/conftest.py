"""Shared fixtures: where the golden reference data and sample assets live."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

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


def in_ci() -> bool:
    """Whether this run is CI (CI=true, as GitHub Actions, GitLab and most CI systems set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_system_library(check: Callable[[], T], apt_package: str, *, needed_for: str) -> T:
    """``check()``'s result; if it raises, the test needs a system library that is missing.

    The one rule for optional system libraries (pip cannot install them): on a developer's
    machine the test skips with a reason naming the apt package; under CI (``CI=true``) it
    fails, so CI still runs every such test. ``check`` exercises the library the way the
    test will (a bare import can succeed and the first decode fail).
    """
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - any failure to load the library means the same
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        reason = (f"{needed_for} needs system libraries from apt: apt-get install {apt_package} "
                  f"({type(exc).__name__}: {first})")
        if in_ci():
            pytest.fail(f"{reason}; under CI=true a missing optional system library is a failure", pytrace=False)
        pytest.skip(reason)


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
def cli_forks(tiny_dir: Path):
    """A :class:`cli_forks.CliForkServer`: the real command line, one fresh process per command,
    without each paying for torch's import. Its environment: the tiny checkpoint, offline."""
    from cli_forks import CliForkServer

    env = {**os.environ, "IMAGEBIND_CHECKPOINT": str(tiny_dir), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("IMAGEBIND_ASSETS", None)
    server = CliForkServer(env)
    try:
        yield server
    finally:
        server.close()


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for ``pytest -n 2 --dist loadgroup`` (pytest-xdist): a test module's tests stay in one
    worker, so its module fixtures (servers, clusters) start once. The Ray tests are two groups,
    those of in-process ``ray.init`` clusters and those of ``ray start`` node pairs: each is the
    longest run of the suite, and one worker holding both was the suite's critical path."""
    for item in items:
        parts = item.path.relative_to(REPO).parts
        group = "/".join(parts)
        if parts[:2] == ("tests", "distributed"):
            group = "ray-nodes" if "node_pair" in item.module.__dict__ else "ray-local"
        item.add_marker(pytest.mark.xdist_group(group))
