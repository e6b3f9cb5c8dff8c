"""The on-disk output of :func:`imagebind_sdk.bulk.embed_files`, written as it goes.

Layout of an output directory ``DIR``::

    DIR/info.json                              checkpoint source, embedding dim, dtype
    DIR/manifest.jsonl                         append-only, one JSON record per file
    DIR/shards/<kind>-<seq:06d>.safetensors    tensor "embeddings" (n, D) float32, one per batch

A manifest record is ``{"path", "size", "mtime_ns", "kind", "shard", "row"}`` for an
embedded file (``shard`` relative to ``DIR``) or ``{"path", "size", "mtime_ns",
"kind", "error"}`` for a failed one; ``path`` is absolute. The newest record of a
path wins. A batch is committed by writing its shard (temp name, fsync,
``os.replace``, fsync of the folder) and only then appending its manifest lines
(one write, flush, fsync), so a killed job loses at most the batch in flight and
no manifest line points at a missing shard. A truncated final line (killed while
appending) is ignored on reading and cut off before the next append; shards that
no record references (killed between the two steps) are deleted when a job
resumes. One job at a time may write to ``DIR`` (an advisory lock on
``DIR/.lock`` where the platform has ``fcntl``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_safetensors

from .embeddings import Embeddings
from .preprocess import Skipped

try:  # POSIX advisory locking; elsewhere concurrent writers are simply not detected
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["BulkStore", "FileStat", "assemble", "load_bulk_output", "read_manifest", "stat_file"]

logger = logging.getLogger(__name__)

FORMAT = "imagebind-sdk-bulk"
FORMAT_VERSION = 1
INFO = "info.json"
MANIFEST = "manifest.jsonl"
SHARDS = "shards"
LOCK = ".lock"
TENSOR = "embeddings"
_SHARD_NAME = re.compile(r"^(?P<kind>[a-z]+)-(?P<seq>\d{6,})\.safetensors$")


@dataclass(frozen=True)
class FileStat:
    """An input file's identity for resuming: absolute path, size and mtime (None if unreadable)."""

    path: str
    size: int | None
    mtime_ns: int | None


def stat_file(path: str | os.PathLike[str]) -> FileStat:
    """The absolute path (symlinks kept), size and ``st_mtime_ns`` of a file."""
    absolute = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(absolute)
    except OSError:
        return FileStat(absolute, None, None)
    return FileStat(absolute, st.st_size, st.st_mtime_ns)


def _fsync_dir(path: Path) -> None:
    """Make a rename/creation in ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_manifest(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All manifest records in file order; a truncated or garbled line is skipped with a warning."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return []
    records = []
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "path" not in record or "kind" not in record:
                raise ValueError("not a manifest record")
        except ValueError:
            final = number == len(lines)  # no newline after it: the job died mid-write
            log = logger.info if final else logger.warning
            log("%s line %d is %s; ignoring it", path, number, "truncated" if final else "malformed")
            continue
        records.append(record)
    return records


def latest_records(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Path -> its newest record, in the order each path first appears."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest[record["path"]] = dict(record)  # reassigning keeps the first position
    return latest


def load_rows(out_dir: str | os.PathLike[str], records: Sequence[Mapping[str, Any]], dim: int) -> torch.Tensor:
    """The embedding rows of successful records, stacked in the order given."""
    out = torch.empty(len(records), dim, dtype=torch.float32)
    by_shard: dict[str, list[tuple[int, int]]] = {}
    for position, record in enumerate(records):
        by_shard.setdefault(record["shard"], []).append((position, int(record["row"])))
    for shard, wanted in by_shard.items():
        path = Path(out_dir) / shard
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is referenced by the manifest but missing; re-run embed_files with "
                f"resume=True to re-embed its files"
            )
        with safe_open(str(path), framework="pt") as f:
            tensor = f.get_tensor(TENSOR)
        positions, rows = zip(*wanted)
        if max(rows) >= tensor.shape[0] or tensor.shape[1] != dim:
            raise ValueError(f"{path}: shape {tuple(tensor.shape)} does not match the manifest (dim {dim})")
        out[list(positions)] = tensor[list(rows)].float()
    return out


def assemble(outcomes: Iterable[tuple[str, str, torch.Tensor | str]], dim: int) -> Embeddings:
    """``(kind, path, row or error)`` in input order -> ``Embeddings`` keyed by kind.

    Rows keep their order within each kind; failed files go to ``.skipped[kind]``
    with their position among that kind's files. Kinds appear in first-seen order.
    """
    rows: dict[str, list[torch.Tensor]] = {}
    sources: dict[str, list[str]] = {}
    skipped: dict[str, list[Skipped]] = {}
    counts: dict[str, int] = {}
    for kind, path, value in outcomes:
        index = counts.get(kind, 0)
        counts[kind] = index + 1
        if isinstance(value, str):
            skipped.setdefault(kind, []).append(Skipped(index, path, value))
        else:
            rows.setdefault(kind, []).append(value)
            sources.setdefault(kind, []).append(path)
    order = [k for k in counts if k in rows]
    data = {k: torch.stack(rows[k]) if rows[k] else torch.empty(0, dim) for k in order}
    return Embeddings(data, sources={k: sources[k] for k in order}, skipped=skipped)


def read_info(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``DIR/info.json``, checked to be a bulk output this version reads."""
    path = Path(out_dir) / INFO
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{out_dir} is not an embed_files output (no {INFO})") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT or info.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a {FORMAT} version {FORMAT_VERSION} output: {info!r}")
    return info


def load_bulk_output(out_dir: str | os.PathLike[str]) -> Embeddings:
    """Read an ``embed_files(..., out=DIR)`` output: ``Embeddings`` keyed by input kind.

    Every file appears once, in the order it was first recorded (the input order of
    the job), with its newest record: embedded files are rows (``.sources`` holds
    their absolute paths), files whose newest record is a failure are listed in
    ``.skipped[kind]`` with their error.

    >>> out = load_bulk_output("embeddings/")  # doctest: +SKIP
    >>> out.vision.shape, out.sources["vision"][:2]  # doctest: +SKIP
    """
    dim = int(read_info(out_dir)["embedding_dim"])
    records = list(latest_records(read_manifest(out_dir)).values())
    good = [r for r in records if "shard" in r]
    rows = iter(load_rows(out_dir, good, dim).unbind(0))
    outcomes = [(r["kind"], r["path"], next(rows) if "shard" in r else str(r.get("error"))) for r in records]
    return assemble(outcomes, dim)


class BulkStore:
    """An output directory opened for writing by one job (see the module docstring).

    Use as a context manager; :meth:`open` creates or resumes it.
    """

    def __init__(self, out_dir: Path, lock_fd: int | None, records: list[dict[str, Any]], next_seq: int) -> None:
        self.out_dir = out_dir
        self._lock_fd = lock_fd
        self.latest = latest_records(records)
        self._next_seq = next_seq
        self._shards = {f"{SHARDS}/{name}" for name in os.listdir(out_dir / SHARDS)}
        self._manifest = open(out_dir / MANIFEST, "ab")

    @classmethod
    def open(cls, out_dir: str | os.PathLike[str], info: Mapping[str, Any], *, resume: bool) -> BulkStore:
        """Create ``out_dir`` or, with ``resume``, continue the output already there.

        Raises ``FileExistsError`` for a non-empty folder when ``resume`` is false or
        when it is not an embed_files output, and ``ValueError`` when its embedding
        dimension differs from ``info["embedding_dim"]``.
        """
        path = Path(out_dir)
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"out={path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(path)
        try:
            _prepare(path, info, resume)
            records = read_manifest(path)
            next_seq = _tidy(path, records)
            store = cls(path, lock_fd, records, next_seq)
        except BaseException:
            _unlock(lock_fd)
            raise
        logger.info("bulk output %s: %d files recorded", path, len(store.latest))
        return store

    def __enter__(self) -> BulkStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the manifest and release the lock."""
        if not self._manifest.closed:
            self._manifest.close()
        _unlock(self._lock_fd)
        self._lock_fd = None

    def done(self, stat: FileStat, kind: str) -> dict[str, Any] | None:
        """The record of ``stat`` if it was embedded as ``kind`` and is unchanged since."""
        record = self.latest.get(stat.path)
        if record is None or "shard" not in record or stat.size is None:
            return None
        same = (record.get("kind"), record.get("size"), record.get("mtime_ns")) == (kind, stat.size, stat.mtime_ns)
        if same and record["shard"] not in self._shards:
            logger.warning("%s: shard %s is missing; re-embedding the file", self.out_dir, record["shard"])
            return None
        return record if same else None

    def write_batch(
        self, kind: str, outcomes: Sequence[tuple[FileStat, torch.Tensor | str]]
    ) -> list[dict[str, Any]]:
        """Commit one batch of ``(file, embedding row or error message)`` in input order.

        The rows go to a new shard first, then one manifest record per file is appended.
        """
        rows = [(stat, value) for stat, value in outcomes if not isinstance(value, str)]
        shard = self._write_shard(kind, [s for s, _ in rows], torch.stack([v for _, v in rows])) if rows else ""
        row_of = {stat.path: i for i, (stat, _) in enumerate(rows)}
        records = [
            dict(_stat_fields(stat), kind=kind, error=value)
            if isinstance(value, str)
            else dict(_stat_fields(stat), kind=kind, shard=shard, row=row_of[stat.path])
            for stat, value in outcomes
        ]
        if records:
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
            self._manifest.write(data)
            self._manifest.flush()
            os.fsync(self._manifest.fileno())
            self.latest.update((r["path"], r) for r in records)
        return records

    def _write_shard(self, kind: str, embedded: Sequence[FileStat], embeddings: torch.Tensor) -> str:
        name = f"{kind}-{self._next_seq:06d}.safetensors"
        self._next_seq += 1
        tensor = embeddings.detach().to("cpu", torch.float32).contiguous()
        meta = {"kind": kind, "paths": json.dumps([s.path for s in embedded], ensure_ascii=False)}
        _write_atomic(self.out_dir / SHARDS / name, save_safetensors({TENSOR: tensor}, metadata=meta))
        self._shards.add(f"{SHARDS}/{name}")
        return f"{SHARDS}/{name}"


def _stat_fields(stat: FileStat) -> dict[str, Any]:
    return {"path": stat.path, "size": stat.size, "mtime_ns": stat.mtime_ns}


def _lock(path: Path) -> int | None:
    """Take the folder's advisory lock, or fail if another job holds it."""
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RuntimeError(f"another embed_files job is writing to {path} (it holds {path / LOCK})") from None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def _prepare(path: Path, info: Mapping[str, Any], resume: bool) -> None:
    """Refuse an unsuitable folder; write ``info.json`` into a new one."""
    entries = [e for e in os.listdir(path) if not e.startswith(".")]
    if entries and not resume:
        raise FileExistsError(
            f"out={path} is not empty; pass resume=True to continue the output there, "
            f"or choose a new or empty directory"
        )
    if entries and INFO not in entries:
        raise FileExistsError(f"out={path} is not empty and is not an embed_files output (no {INFO})")
    if INFO in entries:
        _check_compatible(path, read_info(path), info)
    else:
        full = {"format": FORMAT, "format_version": FORMAT_VERSION, **info}
        _write_atomic(path / INFO, (json.dumps(full, indent=2) + "\n").encode("utf-8"))
    (path / SHARDS).mkdir(exist_ok=True)


def _check_compatible(path: Path, existing: Mapping[str, Any], info: Mapping[str, Any]) -> None:
    if int(existing.get("embedding_dim", -1)) != int(info["embedding_dim"]):
        raise ValueError(
            f"cannot resume into {path}: it holds {existing.get('embedding_dim')}-d embeddings from "
            f"{existing.get('source')!r}, but this model ({info.get('source')!r}) makes "
            f"{info['embedding_dim']}-d ones; use another out directory"
        )
    if existing.get("source") != info.get("source"):
        logger.warning(
            "resuming %s, written with checkpoint %r, with checkpoint %r: make sure they are the same weights",
            path, existing.get("source"), info.get("source"),
        )


def _tidy(path: Path, records: list[dict[str, Any]]) -> int:
    """Cut a truncated manifest tail, delete temp and unreferenced shards; the next shard number."""
    manifest = path / MANIFEST
    if manifest.exists():
        data = manifest.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            logger.warning("%s: cutting off a truncated last line (%d bytes)", manifest, len(data) - keep)
            with open(manifest, "r+b") as f:
                f.truncate(keep)
                os.fsync(f.fileno())
    referenced = {r["shard"] for r in records if "shard" in r}
    next_seq = 0
    for entry in os.listdir(path / SHARDS):
        match = _SHARD_NAME.match(entry)
        if match:
            next_seq = max(next_seq, int(match["seq"]) + 1)
        if entry.endswith(".tmp") or (match and f"{SHARDS}/{entry}" not in referenced):
            logger.info("%s: removing %s left by an interrupted job", path, entry)
            os.remove(path / SHARDS / entry)
    return next_seq
