"""Content identities of weight files: the same bytes give the same id on every machine.

A file's identity is the SHA-256 of its content. Reading a multi-GB checkpoint takes
seconds, so the digest is remembered on disk by (absolute path, size, mtime), and a
Hugging Face cache file needs no reading at all: ``snapshots/<commit>/<name>`` links
to ``blobs/<sha256 of the content>`` for LFS files (every weight file), and that name is
the digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

__all__ = ["HASH_CHUNK", "file_sha256", "hash_memo_dir", "weights_sha256"]

HASH_CHUNK = 16 * 2**20
CACHE_ENV = "IMAGEBIND_CACHE"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def hash_memo_dir() -> Path:
    """Where digests are remembered: ``$IMAGEBIND_CACHE/hashes``, else the Hugging Face cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "hashes"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / "imagebind-sdk" / "hashes"


def _hub_blob_sha256(path: Path) -> str | None:
    """The digest a Hub cache file is named by (LFS blobs only; small files use git's sha1)."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    return target.name if target.parent.name == "blobs" and _SHA256.match(target.name) else None


def file_sha256(path: Path, memo_dir: Path | None = None) -> str:
    """SHA-256 of a file's content, remembered by (absolute path, size, mtime) so that
    a multi-GB checkpoint is read once, not on every load."""
    blob = _hub_blob_sha256(path)
    if blob is not None:
        return blob
    memo_dir = memo_dir if memo_dir is not None else hash_memo_dir()
    stat = path.stat()
    stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = memo_dir / hashlib.sha256(stamp.encode()).hexdigest()[:32]
    if memo.is_file():
        text = memo.read_text(encoding="utf-8").strip()
        if len(text) == 64:
            return text
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    try:  # a read-only cache only costs the next load another read
        memo_dir.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
        tmp.write_text(digest.hexdigest(), encoding="utf-8")
        os.replace(tmp, memo)
    except OSError:
        pass
    return digest.hexdigest()


def weights_sha256(weight_files: list[Path], memo_dir: Path | None = None) -> list[str]:
    """The digests of a checkpoint's weight files, in order. A sharded checkpoint's index
    stands for its shards: its content names each shard and tensor, and shards of
    encoders that were not loaded may be absent (documented limit: a shard replaced
    under an unchanged index keeps the id)."""
    out = []
    for path in map(Path, weight_files):
        if path.name.endswith(".index.json"):
            text = json.dumps(json.loads(path.read_text(encoding="utf-8")), sort_keys=True)
            out.append(hashlib.sha256(text.encode()).hexdigest())
        else:
            out.append(file_sha256(path, memo_dir))
    return out
