"""The ONNX export cache: ``backend="onnxruntime"`` on any torch checkpoint.

``ImageBind.load(source, backend="onnxruntime")`` with a torch checkpoint (alias, Hub
id, directory, ``.safetensors`` / ``.pth`` file) exports the requested encoders once
into a cache entry and loads them from there afterwards. An entry is keyed by

- the checkpoint's identity: the Hub repo and the snapshot's commit for Hub
  checkpoints, else the SHA-256 of the weight files' contents; plus the config,
- the SDK version, the ONNX opset and the quantisation (``float32`` or ``int8``),

and lives in ``$IMAGEBIND_CACHE/onnx/<key>`` (default: the Hugging Face cache
folder, ``imagebind-sdk/onnx/<key>``). Encoders missing from an entry are added to it
when first asked for, so each entry holds only the modalities someone loaded.

Concurrency and damage: a file lock (``<key>.lock``, from ``filelock``) lets one
process export while the others wait and then load its result; graphs are written in
a temporary folder and renamed into the entry, manifests are written to a temporary
name and renamed. ``cache.json`` records every file's size and is written last: a
missing or truncated file, or an unreadable manifest, marks the modality (or the
entry) damaged, and it is exported again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

from ..model.config import check_modalities
from ..vectors.space import model_space
from ..weights.identity import file_sha256
from .onnx import FORMAT, MANIFEST, OPSET, write_graphs, write_json_atomic, write_manifest

__all__ = ["CACHE_ENV", "cache_root", "cached_export", "entry_key", "is_export_folder"]

logger = logging.getLogger(__name__)

CACHE_ENV = "IMAGEBIND_CACHE"
CACHE_MANIFEST = "cache.json"
CACHE_FORMAT = 1
_FILE_MODE = 0o644  # graphs are read by every process and user that shares the cache


def is_export_folder(source: str | os.PathLike[str]) -> bool:
    """A folder written by ``export-onnx`` (it holds ``onnx.json``): loaded as it is."""
    return (Path(source) / MANIFEST).is_file()


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where entries live: ``cache_dir``, else ``$IMAGEBIND_CACHE``, else the Hugging Face cache."""
    if cache_dir is not None:
        return Path(cache_dir) / "imagebind-sdk" / "onnx"
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "onnx"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / "imagebind-sdk" / "onnx"


def sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imagebind-sdk")
    except PackageNotFoundError:
        return "unknown"


def checkpoint_identity(resolved: Any, root: Path) -> dict[str, Any]:
    """What names the checkpoint's numbers: a Hub snapshot's commit, else the weights' content."""
    config = json.loads(json.dumps(resolved.config.to_dict(), default=str, sort_keys=True))
    repo = resolved.details.get("repo_id")
    parts = Path(resolved.weight_files[0]).parts
    if repo and "snapshots" in parts:  # huggingface_hub's cache: .../snapshots/<commit>/<file>
        commit = parts[parts.index("snapshots") + 1]
        return {"repo_id": repo, "revision": commit, "config": config}
    hashes = {Path(p).name: file_sha256(Path(p), root.parent / "hashes") for p in resolved.weight_files}
    return {"sha256": hashes, "config": config}


def entry_key(identity: dict[str, Any], quantize: str | None) -> str:
    """The entry's folder name: a digest of identity, SDK version, opset and quantisation."""
    key = {"checkpoint": identity, "sdk": sdk_version(), "opset": OPSET, "quantize": quantize or "float32"}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def valid_modalities(entry: Path, kind: str) -> set[str]:
    """Modalities whose files in ``entry`` are all there at their recorded sizes (empty if damaged)."""
    try:
        record = json.loads((entry / CACHE_MANIFEST).read_text(encoding="utf-8"))
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or record.get("format") != CACHE_FORMAT:
            return set()
        if not (entry / "config.json").is_file():
            return set()
        good = set()
        for modality, names in record["files"].items():
            files = manifest["files"].get(modality, {})
            if kind not in files or modality not in manifest["logit_scales"]:
                continue
            if all(_size(entry / name) == size for name, size in names.items()):
                good.add(modality)
        return good
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def cached_export(
    source: str | os.PathLike[str],
    modalities: Iterable[str] | None,
    *,
    quantize: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """The cache entry holding ONNX graphs of ``modalities`` for a torch checkpoint; exported if needed."""
    from ..weights import hub

    wanted = list(check_modalities(modalities))
    resolved = hub.resolve(source, modalities=wanted, revision=revision, cache_dir=cache_dir,
                           local_files_only=local_files_only)
    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    entry = root / entry_key(checkpoint_identity(resolved, root), quantize)
    kind = quantize or "float32"
    if set(wanted) <= valid_modalities(entry, kind):
        logger.info("ONNX graphs for %s from the cache %s", wanted, entry)
        return entry
    from filelock import FileLock

    lock = FileLock(str(entry) + ".lock")
    logger.debug("taking the ONNX cache lock %s", lock.lock_file)
    with lock:  # one process exports; the others find its graphs once the lock is theirs
        _remove_leftovers(entry)
        good = valid_modalities(entry, kind)
        missing = [m for m in wanted if m not in good]
        if missing:
            _add_to_entry(entry, resolved, missing, good, quantize)
    return entry


def _remove_leftovers(entry: Path) -> None:
    """Temporary folders and files of an export that was killed (only the lock holder writes them)."""
    for path in entry.parent.glob(f".{entry.name}.*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in entry.glob(".*.tmp") if entry.is_dir() else []:
        path.unlink(missing_ok=True)


def _add_to_entry(entry: Path, resolved: Any, missing: list[str], good: set[str], quantize: str | None) -> None:
    """Export ``missing`` into a temporary folder, move the graphs in, then rewrite the manifests."""
    import torch

    from ..weights.checkpoint import load_model
    from ..progress import progress_bar

    old = _read_json(entry / MANIFEST) if good else None
    if old is None:  # nothing usable: start the entry afresh
        shutil.rmtree(entry, ignore_errors=True)
        good = set()
    entry.mkdir(parents=True, exist_ok=True)
    logger.info("exporting %s of %s to ONNX (%s) into %s", missing, resolved.source, quantize or "float32", entry)
    model = load_model(resolved.config, resolved.weight_files, missing, torch.float32)
    bar = progress_bar(len(missing) * (2 if quantize else 1), "exporting to ONNX", "graph", None)
    try:
        with tempfile.TemporaryDirectory(dir=entry.parent, prefix=f".{entry.name}.") as tmp:
            step = (lambda what: (bar.set_postfix_str(what), bar.update(1))) if bar is not None else None
            files = write_graphs(model, Path(tmp), missing, quantize=quantize, keep_float32=quantize is None,
                                 step=step)
            for names in files.values():
                for name in list(names.values()):
                    for path in (Path(tmp) / name, Path(tmp) / f"{name}.data"):
                        if path.exists():
                            path.chmod(_FILE_MODE)  # onnx writes external data 0600; the cache is shared
                            os.replace(path, entry / path.name)
    finally:
        if bar is not None:
            bar.close()
    all_files = {m: old["files"][m] for m in sorted(good)} | files if old else files
    scales = {m: old["logit_scales"][m] for m in good} if old else {}
    scales |= {m: model.encoders[m].logit_scale() for m in missing}
    space = model_space(resolved.config.to_dict(), resolved.weight_files)
    write_manifest(entry, resolved.config, resolved.source, all_files, scales, space)
    sizes = {}
    for modality, names in all_files.items():
        paths = [entry / n for n in names.values()] + [entry / f"{n}.data" for n in names.values()]
        sizes[modality] = {p.name: p.stat().st_size for p in paths if p.exists()}
    write_json_atomic(entry / CACHE_MANIFEST, {"format": CACHE_FORMAT, "source": resolved.source, "files": sizes})


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
