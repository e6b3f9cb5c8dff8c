"""The folder an :class:`~imagebind_sdk.retrieval.index.EmbeddingIndex` is saved to: ``index.json``
(ids, metadata, format, the sha256 of every file) beside ``embeddings.safetensors`` and, for
HNSW, the graph; read and checked here, so that a changed or foreign file is refused by name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .compact import COMPACT_FORMAT_VERSION
from .index_faiss import HNSW_FILE

FORMAT_VERSION = 1
EMBEDDINGS_FILE = "embeddings.safetensors"
INDEX_FILE = "index.json"


def read_info(directory: Path) -> dict[str, Any]:
    """Parse and check ``index.json``; clear errors for missing or malformed files."""
    if not directory.is_dir():
        raise FileNotFoundError(f"index directory not found: {directory}")
    missing = [f for f in (EMBEDDINGS_FILE, INDEX_FILE) if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{directory} is not a saved EmbeddingIndex: missing {', '.join(missing)}"
        )
    try:
        info = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{directory / INDEX_FILE} is not valid JSON: {exc}") from None
    if not isinstance(info, dict) or not {"ids", "metadata", "dim"} <= info.keys():
        raise ValueError(f"{directory / INDEX_FILE} lacks ids/metadata/dim")
    version = info.get("format_version")
    if version not in (FORMAT_VERSION, COMPACT_FORMAT_VERSION):
        raise ValueError(
            f"{directory / INDEX_FILE} has format_version {version!r}; "
            f"this imagebind_sdk reads versions {FORMAT_VERSION} and {COMPACT_FORMAT_VERSION} (compact rows)"
        )
    return info


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksums(directory: Path, info: dict[str, Any]) -> None:
    """Each file ``index.json`` lists must hash to its recorded sha256 (indexes saved before
    checksums list none: their rows load unchecked, their HNSW graph is rebuilt)."""
    checksums = info.get("checksums", {})
    if not isinstance(checksums, dict) or not set(checksums) <= {EMBEDDINGS_FILE, HNSW_FILE}:
        raise ValueError(f"{directory / INDEX_FILE}: checksums must map {EMBEDDINGS_FILE}/{HNSW_FILE} "
                         f"to sha256 digests, got {checksums!r}")
    for name, expected in checksums.items():
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is not a complete EmbeddingIndex: missing {name}")
        if sha256(path) != expected:
            raise ValueError(f"{path}: its sha256 differs from the one {INDEX_FILE} records: the file was "
                             "changed or comes from another index; save the index again")
