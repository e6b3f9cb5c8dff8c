"""The bulk output format: a folder of Parquet part files plus ``info.json``.

Layout of an output folder ``DIR`` (written by ``embed_files(..., out=DIR)`` and by
``imagebind_sdk.distributed.embed_dataset``)::

    DIR/_info.json             format, output_id, checkpoint {source, revision},
                               embedding_dim, dtype, package_version, space {id,
                               checkpoint, adapter} (absent before spaces: unknown)
    DIR/part-<hash>.parquet    one per committed batch, columns:
        path      string   absolute path of the input file (or the dataset's path)
        kind      string   input kind (vision, audio, video, depth, thermal, imu)
        size      int64    file size in bytes when it was read (null if unreadable)
        mtime_ns  int64    st_mtime_ns when it was read (null if unknown)
        embedding fixed_size_list<float32>[embedding_dim]  (null when it failed)
        error     string   "ExceptionType: message" (null when embedded)
        start_s   float64  a window's start in seconds (only in parts of windows)
        end_s     float64  a window's end in seconds (only in parts of windows)
        content_hash string blake2b-128 hex of the bytes (only in parts of Ray bytes datasets)

An output of ``embed_files(..., windows=True)`` holds one row per window (the rows of
one file in one part) and records its window spans in ``_info.json`` (``windows``);
:func:`load_bulk_output` then returns a :class:`~imagebind_sdk.windows.embed.WindowEmbeddings`.
Parts without ``start_s``/``end_s`` (whole files, and every part of older versions) read them as nulls.

Any Parquet reader takes ``DIR/*.parquet`` as one table (pyarrow, pandas, DuckDB,
Spark, Hugging Face datasets): files starting with ``_`` or ``.`` are not parts. A part file is written under a hidden temp name,
fsynced and renamed into place, so a reader never sees half a part. Each part's
key-value metadata ``imagebind_sdk`` holds the folder's ``output_id`` (a part copied
from another output is refused), the ``run`` of the job that wrote it and ``written_ns``:
when a path has several records (a changed file re-embedded, a failure retried) the
latest run's wins, whatever the clocks of the nodes (:mod:`imagebind_sdk.bulk.records`),
and writers delete the superseded rows once their job completes. Only files directly inside
``DIR`` are read, never through a symlink; paths in the table are data, never opened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..vectors.embeddings import Embeddings
from .info import INFO, OLD_INFO, checkpoint_identity, make_info, read_info, regular_file  # noqa: F401
from .records import CurrentRecords, part_order
from ..preprocess import Skipped

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported inside the functions that use it: importing pyarrow.parquet takes
# ~0.5 s, which every `import imagebind_sdk` and CLI call would otherwise pay.

__all__ = ["FileStat", "PartError", "assemble", "load_bulk_output", "read_info", "stat_file"]

logger = logging.getLogger(__name__)

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
DAMAGED_PREFIX = "_damaged-"  # set aside where no reader of DIR or DIR/*.parquet looks
TEMP_PREFIX = ".tmp-"
META_KEY = b"imagebind_sdk"
_PART_NAME = re.compile(r"^part-[0-9a-f]{16,64}\.parquet$")


class PartError(ValueError):
    """A part file that cannot be used: damaged, or not of this output folder."""

    def __init__(self, path: Path, problem: str, *, damaged: bool) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.damaged = damaged


@dataclass(frozen=True)
class FileStat:
    """An input's identity for resuming: absolute path, size and mtime (None if unreadable);
    ``digest``: :func:`content_digest` of its bytes where they were given, not read from a file."""

    path: str
    size: int | None
    mtime_ns: int | None
    digest: str | None = None


def content_digest(data: bytes) -> str:
    """blake2b-128 hex of ``data``: identifies given bytes (a path and a length do not)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def stat_file(path: str | os.PathLike[str]) -> FileStat:
    """The absolute path (symlinks kept), size and ``st_mtime_ns`` of a file."""
    absolute = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(absolute)
    except OSError:
        return FileStat(absolute, None, None)
    return FileStat(absolute, st.st_size, st.st_mtime_ns)


def schema(dim: int, windows: bool = True, hashed: bool = True, dtype: str = "float32") -> pa.Schema:
    """The part schema; ``windows=False`` leaves out ``start_s``/``end_s`` (whole-file parts),
    ``hashed=False`` the ``content_hash`` (inputs read from files); ``dtype``: the embedding's
    storage (a compact one holds ``packed_dim`` values per row)."""
    import pyarrow as pa
    from ..vectors.compact import packed_dim

    value = {"float32": pa.float32, "float16": pa.float16, "int8": pa.int8, "binary": pa.int8}.get(dtype, pa.uint8)
    return pa.schema([
        ("path", pa.string()),
        ("kind", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("embedding", pa.list_(value(), packed_dim(dtype, dim))),
        ("error", pa.string()),
        *([("start_s", pa.float64()), ("end_s", pa.float64())] if windows else []),
        *([("content_hash", pa.string())] if hashed else []),
    ])

# Columns only some parts have (the others stay readable by older versions); read as nulls elsewhere.
OPTIONAL_COLUMNS = ("start_s", "end_s", "content_hash")


def records_table(
    records: Sequence[tuple[FileStat, str, Any]], dim: int, spans: Sequence[tuple[float | None, float | None]] | None = None,
    info: Mapping[str, Any] | None = None,
) -> pa.Table:
    """``(stat, kind, embedding row or error message)`` -> a table of the part schema.

    ``spans``: ``(start_s, end_s)`` per record, for windows (adds those columns); ``info``:
    the folder's, whose ``dtype`` (and ``ranges``) say how rows are stored.
    """
    from ..vectors.compact import quantize
    import pyarrow as pa
    failed = [isinstance(value, str) for _, _, value in records]
    hashed = any(s.digest is not None for s, _, _ in records)
    values = np.zeros((len(records), dim), dtype=np.float32)  # failed rows keep zeros under the null
    for i, (_, _, value) in enumerate(records):
        if not failed[i]:
            values[i] = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, np.float32)
    dtype, ranges = codec(info)
    stored = quantize(torch.from_numpy(values), dtype, ranges).numpy()
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(stored.reshape(-1)), stored.shape[1], mask=pa.array(failed))
    return pa.table({
        "path": pa.array([s.path for s, _, _ in records], pa.string()),
        "kind": pa.array([k for _, k, _ in records], pa.string()),
        "size": pa.array([s.size for s, _, _ in records], pa.int64()),
        "mtime_ns": pa.array([s.mtime_ns for s, _, _ in records], pa.int64()),
        "embedding": embedding,
        "error": pa.array([v if isinstance(v, str) else None for _, _, v in records], pa.string()),
        **({"start_s": pa.array([a for a, _ in spans], pa.float64()),
            "end_s": pa.array([b for _, b in spans], pa.float64())} if spans else {}),
        **({"content_hash": pa.array([s.digest for s, _, _ in records], pa.string())} if hashed else {}),
    }, schema=schema(dim, windows=bool(spans), hashed=hashed, dtype=dtype))


def codec(info: Mapping[str, Any] | None) -> tuple[str, Any]:
    """A folder's row storage: ``(dtype, Ranges or None)`` from its info (float32 without one)."""
    from ..vectors.compact import Ranges

    info = info or {}
    ranges = info.get("ranges")
    return str(info.get("dtype", "float32")), Ranges.of(ranges) if ranges is not None else None


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where folders cannot be opened)."""
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


def part_name(table: pa.Table) -> str:
    """A name derived from the rows' identities: a retried batch replaces its own part."""
    digest = hashlib.sha256()
    for column in ("path", "kind", "size", "mtime_ns", "content_hash"):
        if column in table.column_names:
            digest.update(json.dumps(table.column(column).to_pylist()).encode("utf-8"))
    return f"{PART_PREFIX}{digest.hexdigest()[:32]}{PART_SUFFIX}"


def write_part(out_dir: str | os.PathLike[str], table: pa.Table, info: Mapping[str, Any], run: int = 0,
               *, final: bool = False) -> Path:
    """Commit ``table`` as one part file: temp name, fsync, rename, fsync of the folder.

    ``run``: the writing job's number (``BulkStore.run``); ``final``: a driver's verdict
    that outranks its workers' parts of the same run (see :mod:`.output.records`).
    """
    import pyarrow.parquet as pq

    folder = Path(out_dir)
    meta = {"output_id": info["output_id"], "written_ns": time.time_ns(), "run": int(run)}
    if final:
        meta["final"] = True
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode("utf-8")})
    final = folder / part_name(table)
    tmp = folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}-{final.name}"
    with open(tmp, "wb") as f:
        pq.write_table(table, f, write_page_checksum=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_dir(folder)
    return final


def part_files(out_dir: str | os.PathLike[str]) -> list[Path]:
    """The committed part files, sorted; any other ``*.parquet`` or a symlinked part is refused."""
    folder = Path(out_dir)
    parts = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(PART_SUFFIX) or name.startswith("."):
            continue
        path = folder / name
        if not _PART_NAME.match(name):
            raise PartError(path, "a Parquet file that is not a part of this output; move it out of the folder",
                            damaged=False)
        if not regular_file(path):
            raise PartError(path, "not a regular file (a symlink or device); refusing to read it", damaged=False)
        parts.append(path)
    return parts


def read_part(
    path: Path, info: Mapping[str, Any], columns: Sequence[str] | None = None
) -> tuple[pa.Table, tuple[int, int, int]]:
    """A part file's rows (all columns unless ``columns``) and its ``(run, final, written_ns)``, checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    dim = int(info["embedding_dim"])
    try:
        handle = pq.ParquetFile(path, page_checksum_verification=True)
        meta = json.loads((handle.schema_arrow.metadata or {}).get(META_KEY, b"null"))
        names = handle.schema_arrow.names
        _check_columns(names, dim)
        wanted = list(columns or [])
        table = handle.read(columns=[c for c in wanted if c in names or c not in OPTIONAL_COLUMNS] or None)
        for name in (c for c in OPTIONAL_COLUMNS if c in wanted and c not in names):  # a part without them
            table = table.append_column(name, pa.nulls(table.num_rows, schema(dim).field(name).type))
        order = part_order(meta) if isinstance(meta, dict) else (0, 0, 0)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise PartError(path, f"damaged part file ({type(exc).__name__}: {exc})", damaged=True) from None
    if not isinstance(meta, dict) or meta.get("output_id") != info["output_id"]:
        owner = meta.get("output_id") if isinstance(meta, dict) else None
        raise PartError(path, f"a part file of another output (output_id {owner!r}, this folder's is "
                        f"{info['output_id']!r}); move it out of the folder", damaged=False)
    expected = schema(dim, dtype=codec(info)[0])
    for field in table.schema:
        if not expected.field(field.name).type.equals(field.type):
            raise PartError(path, f"column {field.name} is {field.type}, expected {expected.field(field.name).type}",
                            damaged=False)
    return table, order


def _check_columns(names: Sequence[str], dim: int) -> None:
    """ValueError unless ``names`` are the part columns (a flipped bit in a name is damage, not a KeyError)."""
    known = schema(dim).names
    unknown = [n for n in names if n not in known]
    missing = [n for n in known if n not in names and n not in OPTIONAL_COLUMNS]
    if unknown or missing or len(set(names)) != len(names):
        raise ValueError(f"columns {list(names)}, expected {known} (unknown: {unknown}, missing: {missing})")


def embedding_rows(column: pa.ChunkedArray | pa.Array, dim: int, info: Mapping[str, Any] | None = None) -> np.ndarray:
    """A fixed-size-list column -> float32 array (n, dim); null rows come out as zeros. Compact
    rows (``info``'s dtype) come out dequantised: the approximations of the rows written."""
    import pyarrow as pa
    from ..vectors.compact import dequantize

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    flat = array.values.to_numpy(zero_copy_only=False)
    start = array.offset * width
    packed = np.array(flat[start : start + len(array) * width]).reshape(len(array), width)  # writable
    dtype, ranges = codec(info)
    if dtype == "float32":
        return packed.astype(np.float32, copy=False)
    return dequantize(torch.from_numpy(packed), dtype, ranges, dim).numpy()


def newest_records(out_dir: str | os.PathLike[str], info: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Path -> its current record (embedding as a numpy row or None); damaged parts raise."""
    dim = int(info["embedding_dim"])
    latest: dict[str, dict[str, Any]] = {}
    current = CurrentRecords()
    for path in part_files(out_dir):
        table, order = read_part(path, info, schema(dim).names)
        rows = embedding_rows(table.column("embedding"), dim, info)
        valid = table.column("embedding").is_valid().to_pylist()
        for i, record in enumerate(table.drop_columns(["embedding"]).to_pylist()):
            row = rows[i] if valid[i] and record["error"] is None else None
            window = (record.get("start_s"), record.get("end_s"), row)
            verdict = current.offer(record["path"], (*order, path.name), record, window[0] is not None)
            if verdict == "window":  # the file's next window
                latest[record["path"]]["windows"].append(window)
            elif verdict == "new":
                latest[record["path"]] = dict(record, embedding=row, windows=[window] if window[0] is not None else [])
    for conflict in current.conflicts():  # no row of an ambiguous path is trusted
        latest[conflict.path] = dict(latest[conflict.path], error=conflict.message, embedding=None, windows=[])
    return latest


def assemble(outcomes: Iterable[tuple[str, str, torch.Tensor | str]], dim: int, space: Any = None) -> Embeddings:
    """``(kind, path, row or error)`` in order -> ``Embeddings`` keyed by kind.

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
    return Embeddings(data, sources={k: sources[k] for k in order}, skipped=skipped, space=space)


def load_bulk_output(out_dir: str | os.PathLike[str]) -> Any:
    """Read a bulk output folder: ``Embeddings`` keyed by input kind, paths sorted.

    A folder written with ``windows=True`` gives a ``WindowEmbeddings`` instead: one
    ``Windows`` (vectors, start_s, end_s) per file, paths sorted, failed files in ``.failed``.

    Every path appears once with its newest record: embedded files are rows
    (``.sources`` holds their paths), failed ones are listed in ``.skipped[kind]``
    with their error. A damaged or foreign part file raises ``ValueError`` naming it
    (re-running the job with the same ``out`` redoes a damaged part's items).

    >>> out = load_bulk_output("embeddings/")  # doctest: +SKIP
    >>> out.vision.shape, out.sources["vision"][:2]  # doctest: +SKIP
    """
    info = read_info(out_dir)
    try:
        records = newest_records(out_dir, info)
    except PartError as exc:
        hint = "; re-run the job with the same out to redo its items" if exc.damaged else ""
        raise PartError(exc.path, str(exc).split(": ", 1)[1] + hint, damaged=exc.damaged) from None
    if info.get("windows") is not None:
        from ..windows.embed import windows_from_records  # the windowed result type lives with windows

        return windows_from_records(records, info.get("space"))
    outcomes = [
        (r["kind"], p, str(r["error"]) if r["embedding"] is None else torch.from_numpy(r["embedding"]))
        for p, r in sorted(records.items())
    ]
    return assemble(outcomes, int(info["embedding_dim"]), info.get("space"))
