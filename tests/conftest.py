"""Shared fixtures: where the golden reference data and sample assets live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
