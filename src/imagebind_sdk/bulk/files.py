"""Embed many files: a folder, a glob or a list, optionally streamed to disk and resumable.

>>> from imagebind_sdk import ImageBind
>>> from imagebind_sdk.bulk.files import embed_files, load_bulk_output
>>> model = ImageBind.load()  # doctest: +SKIP
>>> result = embed_files(model, "photos/", out="photos.emb", num_workers=4)  # doctest: +SKIP
>>> result.summary()  # doctest: +SKIP
{'files': 1200, 'embedded': 1187, 'already_done': 0, 'failed': 3, 'unsupported': 10}
>>> load_bulk_output("photos.emb").vision.shape  # doctest: +SKIP
torch.Size([1187, 1024])

Files are decoded in a ``torch.utils.data.DataLoader`` (``num_workers`` processes
overlap decoding with the model) and embedded batch by batch, each input kind with
its encoder. With ``out=DIR`` each batch is committed to disk as soon as it is
embedded as a Parquet part file (layout in :mod:`imagebind_sdk.bulk.format`), so an interrupted job re-run
with the same ``out`` continues where it stopped.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset

from ..kinds import ENCODER_OF, FILE_KINDS, GLOB_CHARS, KIND_OF_EXTENSION, infer_kind, kind_argument
from ..progress import progress_bar
from .format import FileStat, assemble, load_bulk_output, stat_file
from .store import BulkStore, open_store
from .windowed import WindowFilesResult, embed_files_windows
from ..vectors.embeddings import Embeddings
from ..pipeline import pipeline_of
from ..preprocess import preprocess_one, validate_options

__all__ = [
    "BulkResult",
    "FILE_KINDS",
    "KIND_OF_EXTENSION",
    "embed_files",
    "infer_kind",
    "list_files",
    "load_bulk_output",
]

logger = logging.getLogger(__name__)

@dataclass
class BulkResult:
    """What :func:`embed_files` returns.

    ``embeddings``: ``Embeddings`` keyed by input kind, rows in input order,
    ``.sources`` the absolute file paths, failed files in ``.skipped``.
    ``failed``: ``(path, error)`` of files that could not be read or embedded.
    ``unsupported``: ``(path, reason)`` of files whose kind could not be inferred.
    ``embedded`` / ``already_done``: files embedded by this call / found complete
    in ``out`` and not embedded again.
    """

    embeddings: Embeddings
    failed: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0
    already_done: int = 0
    out: Path | None = None

    def summary(self) -> dict[str, int]:
        """Counts: files, embedded now, already_done (resumed), failed, unsupported."""
        done = self.embedded + self.already_done
        return {
            "files": done + len(self.failed) + len(self.unsupported),
            "embedded": self.embedded,
            "already_done": self.already_done,
            "failed": len(self.failed),
            "unsupported": len(self.unsupported),
        }

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.summary().items())
        return f"BulkResult({counts}, embeddings={self.embeddings!r})"


def walk(root: str, recursive: bool) -> list[str]:
    """Files under ``root`` (hidden files and folders skipped), sorted by path."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found += [os.path.join(folder, f) for f in files if not f.startswith(".")]
    return sorted(found)


def _expand(entry: str | os.PathLike[str], recursive: bool, top_level: bool) -> list[str]:
    text = os.fspath(entry)
    if os.path.isdir(text):
        return walk(text, recursive)
    if not os.path.exists(text) and GLOB_CHARS & set(text):
        matches = sorted(p for p in glob.glob(text, recursive=recursive) if os.path.isfile(p))
        if not matches:
            logger.warning("the pattern %r matches no files", text)
        return matches
    if top_level and not os.path.exists(text):
        raise FileNotFoundError(f"no such file, directory or glob match: {text}")
    return [text]  # a file (a missing one in a list is recorded as failed)


def list_files(paths_or_dir: Any, *, recursive: bool = True) -> list[str]:
    """The absolute paths to embed, in order, each once.

    A directory is walked (sorted; hidden entries skipped; only its top level unless
    ``recursive``), a string with ``* ? [`` is a glob (``**`` when ``recursive``), a
    path is itself; a list is expanded entry by entry, in its order.
    """
    if isinstance(paths_or_dir, (str, os.PathLike)):
        found = _expand(paths_or_dir, recursive, top_level=True)
    elif isinstance(paths_or_dir, Sequence) or hasattr(paths_or_dir, "__iter__"):
        found = [p for entry in paths_or_dir for p in _expand(entry, recursive, top_level=False)]
    else:
        raise TypeError(f"expected a directory, glob, path or list of paths, got {type(paths_or_dir).__name__}")
    unique = list(dict.fromkeys(os.path.abspath(p) for p in found))
    if len(unique) < len(found):
        logger.info("%d duplicate paths dropped", len(found) - len(unique))
    return unique


class FileDataset(Dataset):
    """``(path, kind)`` pairs -> ``(index, model input tensor or error message)``."""

    def __init__(self, files: Sequence[tuple[str, str]], options: Mapping[str, Mapping[str, Any]]) -> None:
        self.files = list(files)
        self.options = {k: dict(v) for k, v in options.items()}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | str]:
        path, kind = self.files[index]
        try:
            return index, preprocess_one(kind, path, **self.options.get(kind, {}))
        except Exception as exc:  # one unreadable file must not end a bulk job
            return index, f"{type(exc).__name__}: {exc}"


class Collated(NamedTuple):
    """One batch: dataset indices of the good items, their stacked tensor, the failures."""

    indices: list[int]
    tensor: torch.Tensor | None
    errors: list[tuple[int, str]]


def collate(items: Sequence[tuple[int, torch.Tensor | str]]) -> Collated:
    """Stack the tensors of a batch and keep the error messages beside them."""
    good = [(i, x) for i, x in items if isinstance(x, torch.Tensor)]
    errors = [(i, x) for i, x in items if not isinstance(x, torch.Tensor)]
    tensor = torch.stack([x for _, x in good]) if good else None
    return Collated([i for i, _ in good], tensor, errors)


def _batches_by_kind(kinds: Sequence[str], batch_size: int) -> list[list[int]]:
    """Index batches of one kind each: kinds in first-seen order, items in input order."""
    groups: dict[str, list[int]] = {}
    for index, kind in enumerate(kinds):
        groups.setdefault(kind, []).append(index)
    return [g[s : s + batch_size] for g in groups.values() for s in range(0, len(g), batch_size)]


Rows = list[tuple[int, torch.Tensor]]
Errors = list[tuple[int, str]]


def encode_batch(model: Any, kind: str, batch: Collated, batch_size: int) -> tuple[Rows, Errors]:
    """Embed a batch with an outcome per item (:meth:`Pipeline.encode_rows`, isolated): a
    NaN/inf row or an item the encoder fails on alone is that file's error, not the job's."""
    if batch.tensor is None:
        return [], list(batch.errors)
    out = pipeline_of(model).encode_rows(ENCODER_OF[kind], batch.tensor, batch_size=batch_size, isolate=True)
    rows = [(batch.indices[j], out.vectors[j].float()) for j in out.good()]
    return rows, list(batch.errors) + [(batch.indices[j], message) for j, message in sorted(out.failed.items())]


def _run(
    model: Any,
    todo: Sequence[tuple[FileStat, str]],
    store: BulkStore | None,
    *,
    batch_size: int,
    num_workers: int,
    progress: bool | None,
    options: Mapping[str, Mapping[str, Any]],
) -> dict[int, torch.Tensor | str]:
    """Decode and embed ``todo`` (``(stat, kind)``); position -> row or error message."""
    dataset = FileDataset([(stat.path, kind) for stat, kind in todo], options)
    loader = DataLoader(
        dataset,
        batch_sampler=_batches_by_kind([kind for _, kind in todo], batch_size),
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=getattr(model, "device", torch.device("cpu")).type == "cuda",
    )
    results: dict[int, torch.Tensor | str] = {}
    bar = progress_bar(len(todo), "embedding files", "file", progress, min_items=0)
    try:
        for batch in loader:
            kind = todo[(batch.indices or [i for i, _ in batch.errors])[0]][1]
            rows, errors = encode_batch(model, kind, batch, batch_size)
            for i, message in errors:
                logger.warning("failed to embed %s as %s: %s", todo[i][0].path, kind, message)
            outcomes = sorted(rows + errors, key=lambda pair: pair[0])  # input order
            if store is not None:
                store.write_batch(kind, [(todo[i][0], value) for i, value in outcomes])
            results.update(outcomes)
            if bar is not None:
                bar.update(len(rows) + len(errors))
    finally:
        if bar is not None:
            bar.close()
    return results


def _plan(files: Sequence[str], kind_of_all: str | None) -> tuple[list[tuple[FileStat, str]], list[tuple[str, str]]]:
    """Each file's stat and kind; files whose kind is unknown are set aside with a reason."""
    planned, unsupported = [], []
    for path in files:
        kind = kind_of_all or infer_kind(path)
        if kind is None:
            ext = os.path.splitext(path)[1] or "(none)"
            reason = f"unsupported file extension {ext}: pass kind= to embed it as one kind"
            unsupported.append((path, reason))
            logger.warning("skipping %s: unsupported file extension %s", path, ext)
        else:
            planned.append((stat_file(path), kind))
    return planned, unsupported


def check_bulk_args(kind: str | None, batch_size: int, options: Mapping, num_workers: int = 0) -> None:
    """ValueError for a bad argument of a bulk job (local or Ray), before any file is read.

    Per-kind options are checked here too (names and values): they apply to every file,
    so a bad one is the caller's error, never one failed file after another.
    """
    if kind is not None and kind not in FILE_KINDS:
        raise ValueError(f"kind must be one of {FILE_KINDS} or None (from extensions), got {kind!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    unknown = sorted(set(options) - set(FILE_KINDS))
    if unknown:
        raise ValueError(f"preprocess options for unknown input kinds {unknown}; expected some of {FILE_KINDS}")
    for kind, kind_options in options.items():
        validate_options(kind, kind_options)


def _outcomes(
    planned: Sequence[tuple[FileStat, str]],
    new: Mapping[int, torch.Tensor | str],
    store: BulkStore | None,
    dim: int,
) -> list[tuple[str, str, torch.Tensor | str]]:
    """``(kind, path, row or error)`` for every planned file, in input order."""
    if store is not None:  # read rows back from the parts: exactly what load_bulk_output sees
        store.compact()  # the job is complete: drop rows superseded by this run first
        records = {i: store.latest[stat.path] for i, (stat, _) in enumerate(planned)}
        good = [i for i, r in records.items() if r["error"] is None]
        rows = dict(zip(good, store.rows([planned[i][0].path for i in good]).unbind(0)))
        new = {i: rows.get(i, str(records[i]["error"])) for i in records}
    return [(kind, stat.path, new[i]) for i, (stat, kind) in enumerate(planned)]


def embed_files(
    model: Any,
    paths_or_dir: Any,
    kind: str | None = None,
    *,
    batch_size: int = 32,
    num_workers: int = 0,
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    recursive: bool = True,
    progress: bool | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    windows: bool = False,
    modality: str | None = None,
    allow_other_space: bool = False,
    embedding_dtype: str = "float32",
    ranges: Any = None,
    **window_options: Any,
) -> BulkResult | WindowFilesResult:
    """Embed files with an ``ImageBind`` model; optionally stream the results to ``out``.

    ``paths_or_dir``: a directory (walked in sorted order, hidden entries skipped), a
    glob, a path, or a list of these. ``kind`` reads every file as that input
    kind (``modality=``, its 0.1 name, still works and warns); by default it is inferred from each extension (images -> vision, audio,
    video, ``.csv`` -> imu; depth and thermal must be named) and files with other
    extensions are reported in ``unsupported``. ``options`` passes preprocessing
    options per kind, e.g. ``{"imu": {"sample_rate": 400}}``. ``num_workers``
    processes decode files while the model runs (a batch holds ``batch_size`` inputs:
    image 0.6 MB, audio 1 MB, video 18 MB); ``progress``: a tqdm bar (default: on a tty).

    With ``out=DIR`` every batch is written to ``DIR`` as a Parquet part file as soon
    as it is embedded (see :mod:`imagebind_sdk.bulk.format`). Re-running with the same ``out`` (``resume=True``,
    the default) skips files already embedded there, unchanged (same absolute path,
    size and mtime); changed files are embedded again and their new rows win. Files
    that failed are tried again on every run. ``resume=False`` refuses a non-empty
    ``out``. The result always covers all the given files in input order. Resuming an
    ``out`` written by another model space raises ``SpaceMismatchError`` unless ``allow_other_space``.
    ``windows=True`` (``window_s``/``hop_s``): long recordings as windows with timestamps,
    a :class:`~imagebind_sdk.bulk.windowed.WindowFilesResult` (see :mod:`imagebind_sdk.bulk.windowed`).
    ``embedding_dtype`` ("float16", "int8", "uint8", "binary", "ubinary"; needs ``out``): the
    folder stores compact rows (:mod:`imagebind_sdk.vectors.compact`), int8/uint8 with ``ranges``
    (default: the model's fixed calibration) recorded in ``_info.json``; the result and
    ``load_bulk_output`` hold their dequantised rows.
    """
    kind = kind_argument("embed_files", kind, modality)
    files = list_files(paths_or_dir, recursive=recursive)
    common = dict(out=out, resume=resume, allow_other_space=allow_other_space, batch_size=batch_size, num_workers=num_workers, progress=progress)
    if embedding_dtype != "float32" and (out is None or windows):
        raise ValueError(f"embedding_dtype={embedding_dtype!r} sets how an out= folder of whole files stores its "
                         "rows; pass out= (and windows=False), or quantise with imagebind_sdk.vectors.compact")
    if windows:
        return embed_files_windows(model, files, kind, options=options, **common, **window_options)
    if window_options:
        raise TypeError(f"embed_files() got unexpected keyword arguments {sorted(window_options)} "
                        "(window_s/hop_s go with windows=True)")
    return _embed_whole_files(model, files, kind, options=dict(options or {}), compact=(embedding_dtype, ranges),
                              **common)


def _embed_whole_files(
    model: Any, files: list[str], kind: str | None, *, out: str | os.PathLike[str] | None, resume: bool,
    allow_other_space: bool,
    batch_size: int, num_workers: int, progress: bool | None, options: dict[str, Mapping[str, Any]],
    compact: tuple[str, Any] = ("float32", None),
) -> BulkResult:
    """:func:`embed_files` of whole files, one row each."""
    check_bulk_args(kind, batch_size, options, num_workers)
    planned, unsupported = _plan(files, kind)
    for kind in dict.fromkeys(kind for _, kind in planned):
        model.encoder(ENCODER_OF[kind])  # fail fast on an encoder that is not loaded
    dim = int(model.embedding_dim)
    store = (open_store(model, out, resume, allow_other_space=allow_other_space, embedding_dtype=compact[0],
                        ranges=compact[1]) if out is not None else None)
    try:
        done = {i for i, (stat, kind) in enumerate(planned) if store is not None and store.done(stat, kind)}
        todo = [i for i in range(len(planned)) if i not in done]
        logger.info("embedding %d files%s", len(todo), f" ({len(done)} already done in {out})" if store else "")
        run = _run(model, [planned[i] for i in todo], store, batch_size=batch_size, num_workers=num_workers,
                   progress=progress, options=options)
        new = {todo[i]: value for i, value in run.items()}
        outcomes = _outcomes(planned, new, store, dim)
    finally:
        if store is not None:
            store.close()
    result = BulkResult(
        assemble(outcomes, dim, getattr(model, "space", None)),
        failed=[(path, value) for _, path, value in outcomes if isinstance(value, str)],
        unsupported=unsupported,
        embedded=sum(not isinstance(v, str) for v in new.values()),
        already_done=len(done),
        out=Path(out) if out is not None else None,
    )
    logger.info("embed_files: %s", result.summary())
    return result
