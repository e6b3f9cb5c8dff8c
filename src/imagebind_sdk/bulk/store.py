"""An output folder opened by one job: lock, resume checks, part commits, clean-up.

The format itself (``info.json`` + Parquet part files) is described in
:mod:`imagebind_sdk.bulk.format`. One job at a time may write to a folder (an
advisory lock on ``DIR/.lock`` where the platform has ``fcntl``); the local engine
writes parts from its process, the Ray engine from its workers while the driver
holds the lock. Opening a folder to resume removes temp files of killed writers,
renames damaged parts to ``_damaged-part-….parquet.bad`` (their items are embedded again)
and refuses a part of another output, an ``info.json`` it cannot trust, or another
model: another space (checkpoint content and adapter, ``vectors/space.py``) unless
``allow_other_space``, and, for outputs written before spaces, another checkpoint path.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

import torch

from .format import (
    DAMAGED_PREFIX,
    INFO,
    OLD_INFO,
    TEMP_PREFIX,
    FileStat,
    PartError,
    _fsync_dir,
    checkpoint_identity,
    embedding_rows,
    load_bulk_output,
    make_info,
    part_files,
    read_info,
    read_part,
    records_table,
    stat_file,
    write_part,
)
from .records import Conflict, CurrentRecords
from ..vectors.space import Space, check_space

try:  # POSIX advisory locking; elsewhere concurrent writers are simply not detected
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["BulkStore", "FileStat", "load_bulk_output", "open_store", "stat_file"]

logger = logging.getLogger(__name__)

LOCK = ".lock"
INDEX_COLUMNS = ("path", "kind", "size", "mtime_ns", "error", "content_hash")


class BulkStore:
    """An output folder opened for writing (a context manager; :meth:`open` creates or resumes it).

    ``latest`` maps each recorded path to its current record ``{path, kind, size,
    mtime_ns, error, content_hash, part, row, rows}`` (no embedding: rows are read back
    on demand; ``rows`` lists every row of the record in its part, one per window for
    windows). ``run`` numbers this job's parts: one more than any run in the folder, so
    its records supersede older ones whatever the writers' clocks say.
    """

    def __init__(self, out_dir: Path, info: dict[str, Any], lock_fd: int | None) -> None:
        self.out_dir = out_dir
        self.info = info
        self._lock_fd = lock_fd
        self.latest, self._conflicts, last_run = _index(out_dir, info)
        self.run = last_run + 1

    @classmethod
    def open(
        cls, out_dir: str | os.PathLike[str], checkpoint: Mapping[str, Any], embedding_dim: int,
        *, resume: bool, model_dtype: str = "float32", windows: Mapping[str, Any] | None = None,
        space: Space | None = None, allow_other_space: bool = False,
        dtype: str = "float32", ranges: Mapping[str, Any] | None = None,
    ) -> BulkStore:
        """Create ``out_dir`` or, with ``resume``, continue the output already there.

        Raises ``FileExistsError`` for a non-empty folder when ``resume`` is false or
        when it is not a bulk output, ``ValueError`` naming the file for an
        ``info.json`` or part file it cannot use or a different checkpoint/dimension, and
        ``SpaceMismatchError`` for another model space (unless ``allow_other_space``).
        """
        path = Path(out_dir)
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"out={path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(path)
        try:
            new = make_info(checkpoint, embedding_dim, model_dtype, windows, space, dtype, ranges)
            info = _prepare(path, new, resume, allow_other_space)
            _tidy(path, info)
            store = cls(path, info, lock_fd)
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
        """Release the lock."""
        _unlock(self._lock_fd)
        self._lock_fd = None

    @property
    def dim(self) -> int:
        return int(self.info["embedding_dim"])

    def done(self, stat: FileStat, kind: str) -> bool:
        """Whether ``stat`` was embedded as ``kind`` and is unchanged since."""
        record = self.latest.get(stat.path)
        if record is None or record["error"] is not None or stat.size is None:
            return False
        recorded = (record["kind"], record["size"], record["mtime_ns"], record["content_hash"])
        return recorded == (kind, stat.size, stat.mtime_ns, stat.digest)

    def write_batch(self, kind: str, outcomes: Sequence[tuple[FileStat, torch.Tensor | str]]) -> Path | None:
        """Commit one batch of ``(file, embedding row or error message)`` as a part file."""
        if not outcomes:
            return None
        spans = [(None, None)] * len(outcomes) if self.info.get("windows") is not None else None  # same columns
        table = records_table([(stat, kind, value) for stat, value in outcomes], self.dim, spans, self.info)
        part = write_part(self.out_dir, table, self.info, self.run)
        for row, (stat, value) in enumerate(outcomes):
            self.latest[stat.path] = {
                "path": stat.path, "kind": kind, "size": stat.size, "mtime_ns": stat.mtime_ns,
                "error": value if isinstance(value, str) else None, "content_hash": stat.digest,
                "part": part.name, "row": row, "rows": [row],
            }
        return part

    def write_windows(self, kind: str, stat: FileStat, vectors: torch.Tensor, spans: list[tuple[float, float]]) -> Path:
        """Commit every window of one file (``vectors`` (n, D), ``(start_s, end_s)`` each) as one part."""
        table = records_table([(stat, kind, row) for row in vectors.unbind(0)], self.dim, spans, self.info)
        part = write_part(self.out_dir, table, self.info, self.run)
        self.latest[stat.path] = {"path": stat.path, "kind": kind, "size": stat.size, "mtime_ns": stat.mtime_ns,
                                  "error": None, "content_hash": stat.digest, "part": part.name, "row": 0,
                                  "rows": list(range(len(spans)))}
        return part

    def windows(self, path: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The newest windows recorded for ``path``: vectors (n, D), start_s and end_s (n,) float64."""
        record = self.latest[path]
        table, _ = read_part(self.out_dir / record["part"], self.info, ["embedding", "start_s", "end_s"])
        rows = record["rows"]
        vectors = torch.from_numpy(embedding_rows(table.column("embedding"), self.dim, self.info)[rows])
        starts, ends = (torch.tensor(table.column(c).to_numpy(zero_copy_only=False)[rows], dtype=torch.float64)
                        for c in ("start_s", "end_s"))
        return vectors, starts, ends

    def refresh(self) -> None:
        """Re-read the index (after other processes, e.g. Ray workers, wrote parts)."""
        self.latest, self._conflicts, _ = _index(self.out_dir, self.info)

    def settle_conflicts(self) -> list[Conflict]:
        """Record as failed every path this job's writers recorded with different contents
        (a dataset giving one path twice with other bytes): no row of it is kept. Returns them."""
        conflicts = [c for c in self._conflicts if c.run == self.run]
        if conflicts:
            table = records_table([(FileStat(c.path, None, None), c.kind, c.message) for c in conflicts], self.dim,
                                  None, self.info)
            write_part(self.out_dir, table, self.info, self.run, final=True)
            self.refresh()
        return conflicts

    def rows(self, paths: Sequence[str]) -> torch.Tensor:
        """The embedding rows of the newest successful records of ``paths``, in that order."""
        out = torch.empty(len(paths), self.dim, dtype=torch.float32)
        by_part: dict[str, list[tuple[int, int]]] = {}
        for position, path in enumerate(paths):
            record = self.latest[path]
            by_part.setdefault(record["part"], []).append((position, record["row"]))
        for part, wanted in by_part.items():
            table, _ = read_part(self.out_dir / part, self.info, ["embedding"])
            rows = torch.from_numpy(embedding_rows(table.column("embedding"), self.dim, self.info))
            positions, indices = zip(*wanted)
            out[list(positions)] = rows[list(indices)]
        return out

    def compact(self) -> int:
        """Delete rows superseded by a newer record of their path; the number deleted.

        Each affected part is rewritten without them (atomically), so once a job
        completes every path appears exactly once in the folder.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        stale: dict[str, set[int]] = {}
        kept = {p: set(r["rows"]) for p, r in self.latest.items()}
        for path in part_files(self.out_dir):
            table, _ = read_part(path, self.info, ["path"])
            for row, item in enumerate(table.column("path").to_pylist()):
                if self.latest[item]["part"] != path.name or row not in kept[item]:
                    stale.setdefault(path.name, set()).add(row)
        for name, rows in stale.items():
            table, order = read_part(self.out_dir / name, self.info)
            keep = pa.array([i not in rows for i in range(table.num_rows)])
            if len(rows) < table.num_rows:  # the kept rows are committed (in their own run) before the old part goes
                write_part(self.out_dir, pc.filter(table, keep), self.info, order[0], final=bool(order[1]))
            os.remove(self.out_dir / name)
            _fsync_dir(self.out_dir)
        if stale:
            self.refresh()
        return sum(len(rows) for rows in stale.values())


def open_store(
    model: Any, out: str | os.PathLike[str], resume: bool, windows: Mapping[str, Any] | None = None,
    allow_other_space: bool = False, embedding_dtype: str = "float32", ranges: Any = None,
) -> BulkStore:
    """The output folder for ``model``'s embeddings (created, or checked for resuming);
    ``embedding_dtype``: how rows are stored, int8/uint8 with ``ranges`` (default: the
    model's fixed calibration, :func:`imagebind_sdk.vectors.compact.calibrate`)."""
    from ..vectors.compact import calibrate

    ranges = storage_ranges(embedding_dtype, ranges, out, resume, lambda: calibrate(model))
    dtype = str(getattr(model, "dtype", "float32")).removeprefix("torch.")
    checkpoint = checkpoint_identity(str(getattr(model, "source", "")), getattr(model, "revision", None))
    return BulkStore.open(out, checkpoint, int(model.embedding_dim), resume=resume, model_dtype=dtype,
                          windows=windows, space=getattr(model, "space", None), allow_other_space=allow_other_space,
                          dtype=embedding_dtype, ranges=ranges.to_json() if ranges else None)


def storage_ranges(embedding_dtype: str, ranges: Any, out: str | os.PathLike[str], resume: bool,
                   calibrated: Callable[[], Any]) -> Any:
    """The int8/uint8 ranges an output stores its rows with (None for other dtypes): given, else
    the folder's own (resuming), else ``calibrated()``; ``embedding_dtype`` and ``ranges`` checked."""
    from ..vectors.compact import Ranges, check_encoding, needs_ranges

    check_encoding(embedding_dtype, "embedding_dtype")
    if ranges is not None and not needs_ranges(embedding_dtype):
        raise ValueError("ranges= only applies to embedding_dtype='int8' or 'uint8'")
    if not needs_ranges(embedding_dtype):
        return None
    return Ranges.of(ranges if ranges is not None else _stored_ranges(out, resume) or calibrated())


def _stored_ranges(out: str | os.PathLike[str], resume: bool) -> Any:
    """The int8/uint8 ranges an existing output folder records (None if it has none)."""
    try:
        return read_info(out).get("ranges") if resume else None
    except (OSError, ValueError):
        return None  # no folder yet, or one _prepare will refuse with its own message


def _index(out_dir: Path, info: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[Conflict], int]:
    """Path -> current record with its part and row (no embeddings read); the paths recorded
    with different contents in one run; the highest run number found (0: none)."""
    latest: dict[str, dict[str, Any]] = {}
    current = CurrentRecords()
    last_run = 0
    for path in part_files(out_dir):
        table, order = read_part(path, info, [*INDEX_COLUMNS, "start_s", "embedding"])
        last_run = max(last_run, order[0])
        valid = table.column("embedding").is_valid().to_pylist()
        windowed = table.column("start_s").is_valid().to_pylist()
        for row, record in enumerate(table.select(list(INDEX_COLUMNS)).to_pylist()):
            if record["error"] is None and not valid[row]:
                record["error"] = "no embedding recorded"
            verdict = current.offer(record["path"], (*order, path.name), record, windowed[row])
            if verdict == "window":  # the same file's next window
                latest[record["path"]]["rows"].append(row)
            elif verdict == "new":
                latest[record["path"]] = dict(record, part=path.name, row=row, rows=[row])
    conflicts = current.conflicts()
    for conflict in conflicts:  # no row of an ambiguous path is trusted (or kept by compact)
        latest[conflict.path] = dict(latest[conflict.path], error=conflict.message, part=None, rows=[])
    return latest, conflicts, last_run


def _lock(path: Path) -> int | None:
    """Take the folder's advisory lock, or fail if another job holds it."""
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RuntimeError(f"another embedding job is writing to {path} (it holds {path / LOCK})") from None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def _prepare(path: Path, new_info: dict[str, Any], resume: bool, allow_other_space: bool = False) -> dict[str, Any]:
    """Refuse an unsuitable folder; write ``info.json`` into a new one. The folder's info."""
    entries = [e for e in os.listdir(path) if not e.startswith(".")]
    if entries and not resume:
        raise FileExistsError(
            f"out={path} is not empty; pass resume=True to continue the output there, "
            f"or choose a new or empty directory"
        )
    if entries and INFO not in entries:
        if OLD_INFO in entries:
            read_info(path)  # raises, naming the older format
        raise FileExistsError(f"out={path} is not empty and is not a bulk embedding output (no {INFO})")
    if INFO not in entries:
        tmp = path / f"{TEMP_PREFIX}{INFO}"
        tmp.write_text(json.dumps(new_info, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path / INFO)
        _fsync_dir(path)
        return new_info
    info = read_info(path)
    check_space(info.get("space"), new_info.get("space"), what=f"resuming the bulk output {path}",
                allow_other_space=allow_other_space)
    _check_compatible(path / INFO, info, new_info)
    return info


def _check_compatible(path: Path, existing: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    if existing["embedding_dim"] != new["embedding_dim"]:
        raise ValueError(
            f"cannot resume into {path.parent}: {path} records {existing['embedding_dim']}-d embeddings "
            f"from {existing['checkpoint']}, but this model makes {new['embedding_dim']}-d ones; use another out"
        )
    # Spaces, when both are known, were checked already (same files elsewhere: the same space).
    spaces_known = existing.get("space") is not None and new.get("space") is not None
    if existing["checkpoint"] != new["checkpoint"] and not spaces_known:
        raise ValueError(
            f"cannot resume into {path.parent}: {path} was written with checkpoint {existing['checkpoint']}, "
            f"this job uses {new['checkpoint']}; use another out directory"
        )
    if (existing.get("dtype"), existing.get("ranges")) != (new.get("dtype"), new.get("ranges")):
        raise ValueError(f"cannot resume into {path.parent}: {path} stores {existing.get('dtype')} rows "
                         f"{'with other ranges ' if existing.get('dtype') == new.get('dtype') else ''}"
                         f"and this job asks for {new.get('dtype')}; use another out directory")
    if existing.get("windows") != new.get("windows"):
        def what(info: Mapping[str, Any]) -> str:
            return f"windows {info['windows']}" if info.get("windows") is not None else "whole files (no windows)"

        raise ValueError(f"cannot resume into {path.parent}: {path} records {what(existing)}, "
                         f"this job embeds {what(new)}; use another out directory")


def _tidy(path: Path, info: Mapping[str, Any]) -> None:
    """Delete temp files of killed writers; set damaged parts aside (their items are redone)."""
    for entry in os.listdir(path):
        if entry.startswith(TEMP_PREFIX):
            logger.info("%s: removing %s left by an interrupted job", path, entry)
            os.remove(path / entry)
    for part in part_files(path):
        try:
            read_part(part, info)
        except PartError as exc:
            if not exc.damaged:
                raise
            aside = part.with_name(f"{DAMAGED_PREFIX}{part.name}.bad")
            logger.warning("%s; renamed to %s, its items will be embedded again", exc, aside.name)
            os.replace(part, aside)
