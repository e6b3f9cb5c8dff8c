"""Bulk embedding on a Ray cluster with Ray Data; the same Parquet output as ``embed_files``.

>>> from imagebind_sdk.distributed import embed_dataset
>>> summary = embed_dataset("s3-mounted/photos/", checkpoint="imagebind-huge", out="/shared/photos.emb",
...                         concurrency=8, num_gpus_per_actor=1)  # doctest: +SKIP

Stages: list the files (on the driver) -> stat, resume check and preprocessing as
stateless Ray tasks (CPU) -> encoding in an actor pool (``map_batches`` with a
callable class; each actor loads the model once) -> each block committed as one
Parquet part file into ``out`` by stateless tasks. ``out`` must be a folder every
node can write (a local path on one machine, a shared mount on a cluster). Needs
``pip install "imagebind-sdk[distributed]"``; ray is imported only when called.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..bulk.files import check_bulk_args, list_files
from ..bulk.format import checkpoint_identity, part_files
from ..bulk.store import BulkStore, storage_ranges
from ..kinds import FILE_KINDS, infer_kind, kind_argument, unsupported_reason

__all__ = ["DatasetSummary", "embed_dataset"]

logger = logging.getLogger(__name__)

INSTALL = 'pip install "imagebind-sdk[distributed]"'
PREPARE_MEMORY = 768 * 2**20  # bytes reserved per decoding task: measured peak ~480 MB with torch + video decoding
MAX_BLOCKS = 5000  # more blocks than this only add scheduling overhead; each block is one part file


@dataclass
class DatasetSummary:
    """What :func:`embed_dataset` returns: counts of this run, time, and items per node.

    ``already_done``: items already in ``out`` (``skipped``, its 0.1 name, still reads it).
    ``failed_files`` / ``unsupported_files``: ``(path, reason)`` of this run's failed
    files and of listed files of unknown kind (as ``BulkResult.failed`` / ``.unsupported``).
    """

    embedded: int
    already_done: int  # in ``out`` before this run (resume), so not embedded again
    failed: int
    unsupported: int
    seconds: float
    out: str
    nodes: dict[str, int] = field(default_factory=dict)
    failed_files: list[tuple[str, str]] = field(default_factory=list)
    unsupported_files: list[tuple[str, str]] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """The 0.1 name of :attr:`already_done` (``skipped`` means failed in ``Embeddings``)."""
        return self.already_done

    @property
    def items_per_s(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, int]:
        """The counts under the names and in the order of ``BulkResult.summary()`` (the local engine)."""
        return {
            "files": self.embedded + self.already_done + self.failed + self.unsupported, "embedded": self.embedded,
            "already_done": self.already_done, "failed": self.failed, "unsupported": self.unsupported,
        }

    def as_dict(self) -> dict[str, Any]:
        return dict(asdict(self), seconds=round(self.seconds, 2), items_per_s=round(self.items_per_s, 2))


def _paths_from_table(path: Path) -> list[str]:
    """The ``path`` column of a Parquet or CSV file."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        if "path" not in names:
            raise ValueError(f"{path}: expected a column named 'path', found {names}")
        return [str(p) for p in pq.read_table(path, columns=["path"]).column("path").to_pylist()]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["path"] for row in rows]


def _is_path_table(source: Any) -> bool:
    """A Parquet file, or a CSV whose header has a ``path`` column (an IMU CSV has none)."""
    if not isinstance(source, (str, os.PathLike)) or not os.path.isfile(source):
        return False
    suffix = Path(source).suffix.lower()
    if suffix == ".parquet":
        return True
    if suffix != ".csv":
        return False
    with open(source, newline="", encoding="utf-8", errors="replace") as f:
        return "path" in next(csv.reader(f), [])


def _to_dataset(ray: Any, source: Any, batch_size: int) -> tuple[Any, list[str] | None]:
    """A Ray Dataset with a ``path`` column (and maybe ``bytes``), and the paths if known here."""
    if isinstance(source, ray.data.Dataset):
        names = source.schema().names
        if "path" not in names:
            raise ValueError(f"the dataset has columns {names}; expected a 'path' column (and optionally 'bytes')")
        return source.select_columns([c for c in ("path", "bytes") if c in names]), None
    paths = _paths_from_table(Path(source)) if _is_path_table(source) else list_files(source)
    paths = list(dict.fromkeys(os.path.abspath(p) for p in paths))
    blocks = max(1, min(MAX_BLOCKS, math.ceil(len(paths) / batch_size)))
    return ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks), paths


def _open_output(checkpoint: str, out: Any, resume: bool, compact: tuple[str, Any], allow_other_space: bool,
                 load: Mapping[str, Any]) -> BulkStore:
    """Check the checkpoint on the driver (config only) and open ``out`` like embed_files does;
    int8/uint8 ranges not given nor stored in ``out`` are calibrated here, once (text encoder only)."""
    from ..vectors.space import model_space
    from ..weights.hub import resolve

    embedding_dtype, ranges = compact
    resolved = resolve(checkpoint)
    identity = checkpoint_identity(resolved.source, resolved.details.get("revision"))
    space = model_space(resolved.config.to_dict(), resolved.weight_files)  # what every actor loads: no adapter
    ranges = storage_ranges(embedding_dtype, ranges, out, resume, lambda: _calibrate(checkpoint, load))
    return BulkStore.open(out, identity, resolved.config.out_embed_dim, resume=resume, space=space,
                          allow_other_space=allow_other_space, dtype=embedding_dtype,
                          ranges=ranges.to_json() if ranges is not None else None)


def _calibrate(checkpoint: str, load: Mapping[str, Any]) -> Any:
    """The model's fixed int8 ranges (:func:`~imagebind_sdk.vectors.compact.calibrate`), on the driver's CPU."""
    from ..api import ImageBind
    from ..vectors.compact import calibrate

    # The actors' backend and quantisation; their device and dtype need not exist on the driver.
    return calibrate(ImageBind.load(checkpoint, modalities=["text"], device="cpu", backend=load["backend"],
                                    quantize=load["quantize"]))


def _check_cpus(ray: Any, concurrency: Any, cpus_per_actor: float) -> None:
    """A fixed pool that takes every CPU leaves none for decoding: the job would wait forever."""
    total = ray.cluster_resources().get("CPU", 0)
    if isinstance(concurrency, int) and concurrency * cpus_per_actor >= total:
        raise ValueError(
            f"{concurrency} encoding actors x num_cpus_per_actor={cpus_per_actor} take all {total:g} CPUs of "
            "the cluster, leaving none for decoding; lower concurrency or num_cpus_per_actor (e.g. 0.5)"
        )


def _actor_pool(ray: Any, concurrency: int | tuple[int, int] | None) -> Any:
    if concurrency is None:
        return ray.data.ActorPoolStrategy(min_size=1, max_size=None)
    if isinstance(concurrency, int):
        return ray.data.ActorPoolStrategy(size=concurrency)
    low, high = concurrency
    return ray.data.ActorPoolStrategy(min_size=low, max_size=high)


def embed_dataset(
    source: Any,
    *,
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    kind: str | None = None,
    batch_size: int = 32,
    concurrency: int | tuple[int, int] | None = None,
    num_gpus_per_actor: float = 0, num_cpus_per_actor: float = 1,
    preprocess: Mapping[str, Mapping[str, Any]] | None = None,
    resume: bool = True,
    ray_address: str | None = None,
    modality: str | None = None,
    backend: str = "torch",
    device: str | None = None,
    dtype: str | None = None,
    quantize: str | None = None,
    embedding_dtype: str = "float32", ranges: Any = None, allow_other_space: bool = False,
) -> DatasetSummary:
    """Embed many files on Ray into the bulk output folder ``out`` (see :mod:`imagebind_sdk.bulk.format`).

    ``source``: a directory, glob, path or list of paths (as ``embed_files``), a Parquet/CSV file
    with a ``path`` column, or a ``ray.data.Dataset`` with ``path`` (files each worker can open) or
    ``bytes`` + ``path`` (contents; ``path`` names them). ``kind`` reads every file as that input
    kind (default: from extensions; ``modality=``, its 0.1 name, still works and warns).
    ``concurrency``: encoding actors, an int (fixed pool) or ``(min, max)`` (autoscaling; default
    ``(1, unlimited)``), each with ``num_gpus_per_actor`` GPUs and ``num_cpus_per_actor`` CPUs.
    ``preprocess``: options per kind, e.g. ``{"imu": {"sample_rate": 400}}``. ``resume`` skips items
    already in ``out`` with the same path, size and mtime (given bytes: the same blake2b hash). Bad
    files are recorded in the ``error`` column and never fail the job; a path given twice with
    different bytes is recorded as failed. Joins ``ray_address`` (e.g. ``"auto"``) unless Ray is
    initialised, else starts a local Ray. ``backend``/``device``/``dtype``/``quantize``: each actor's
    ``ImageBind.load`` options (device: cuda with GPUs per actor, else cpu); onnxruntime exports once,
    on the driver. ``embedding_dtype``/``ranges``: as in ``embed_files`` (int8 ranges not given nor
    in ``out`` are calibrated once on the driver); ``allow_other_space``: resume another space's ``out``.
    """
    kind = kind_argument("embed_dataset", kind, modality)
    options = {k: dict(v) for k, v in (preprocess or {}).items()}
    check_bulk_args(kind, batch_size, options)
    load = check_load_options(backend, device or ("cuda" if num_gpus_per_actor else "cpu"), dtype, quantize)
    ray = _import_ray()
    start = time.perf_counter()
    store = _open_output(os.fspath(checkpoint), out, resume, (embedding_dtype, ranges), allow_other_space, load)
    started_ray = not ray.is_initialized()
    try:
        if started_ray:
            ray.init(address=ray_address, logging_level=logging.WARNING)
        _check_cpus(ray, concurrency, num_cpus_per_actor)
        ds, paths = _to_dataset(ray, source, batch_size)
        counts = _run_settled(store, paths, kind, lambda: _run(
            ray, ds, paths, store, os.fspath(checkpoint), kind, batch_size, options,
            _actor_pool(ray, concurrency), num_gpus_per_actor, num_cpus_per_actor, load))
    finally:
        store.close()
        if started_ray:
            ray.shutdown()
    summary = DatasetSummary(**counts, seconds=time.perf_counter() - start, out=os.fspath(out))
    logger.info("embed_dataset: %s", summary.as_dict())
    return summary


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(f"embed_dataset needs Ray: {INSTALL}") from None
    return ray


def _run_settled(store: BulkStore, paths: list[str] | None, kind: str | None, run: Any) -> dict[str, Any]:
    """``run()``'s counts once its parts are read back: conflicting rows settled, failed and
    unsupported files named, and rows superseded by this run dropped (the job is complete)."""
    parts_before = {p.name for p in part_files(store.out_dir)}
    counts = run()
    store.refresh()
    _settle_conflicts(store, counts)
    counts.update(_named_files(store, parts_before, paths if kind is None else []))
    store.compact()
    return counts


def _named_files(store: BulkStore, parts_before: set[str], paths: list[str] | None) -> dict[str, Any]:
    """The files this run failed (error rows in the parts it wrote) and the listed files of unknown kind."""
    failed = [(path, record["error"]) for path, record in sorted(store.latest.items())
              if record["error"] is not None and record["part"] not in parts_before]
    unsupported = [(path, unsupported_reason(path)) for path in paths or [] if infer_kind(path) is None]
    return {"failed_files": failed, "unsupported_files": unsupported}


def check_load_options(backend: str, device: str, dtype: str | None, quantize: str | None) -> dict[str, Any]:
    """The actors' ``ImageBind.load`` options, checked here so that a bad one fails before any actor starts."""
    import torch

    from ..weights.quantize import check_quantize
    from ..weights.dtypes import as_dtype
    from ..export import check_backend, check_onnx_options

    check_backend(backend)
    if backend == "torch":
        check_quantize(quantize, torch.device(device), as_dtype(dtype))
    else:
        check_onnx_options(device, dtype, quantize, False)
    return {"backend": backend, "device": device, "dtype": dtype, "quantize": quantize}


def _warm_backend(checkpoint: str, kinds: list[str], load: Mapping[str, Any]) -> None:
    """onnxruntime: export the needed encoders into the cache now, once, rather than in every actor."""
    from .stages import modalities_for

    if load["backend"] != "onnxruntime":
        return
    from ..export.cache import cached_export, is_export_folder

    if not is_export_folder(checkpoint):
        cached_export(checkpoint, modalities_for(kinds) or ["vision"], quantize=load["quantize"])


def _run(ray: Any, ds: Any, paths: list[str] | None, store: BulkStore, checkpoint: str, kind: str | None,
         batch_size: int, options: dict, pool: Any, gpus: float, cpus: float, load: dict) -> dict[str, Any]:
    """Build the pipeline, stream it to the end, and add up the writers' counts."""
    from .stages import Encoder, modalities_for, prepare, write

    kinds = [kind] if kind else ([infer_kind(p) for p in paths] if paths is not None else list(FILE_KINDS))
    _warm_backend(checkpoint, kinds, load)
    done = frozenset((p, r["kind"], r["size"], r["mtime_ns"], r["content_hash"])
                     for p, r in store.latest.items() if r["error"] is None)
    # The memory reservation bounds how many decoding tasks share a node's RAM, and (as a
    # remote argument the actors lack) keeps Ray Data from fusing decoding into the
    # encoding actors, which would otherwise hold their GPU while decoding.
    ds = ds.map_batches(prepare, batch_size=batch_size, batch_format="pyarrow", memory=PREPARE_MEMORY,
                        fn_kwargs={"kind": kind, "done": done, "options": options})
    ds = ds.map_batches(
        Encoder, batch_size=batch_size, batch_format="pyarrow", compute=pool, num_gpus=gpus, num_cpus=cpus,
        fn_constructor_kwargs={"checkpoint": checkpoint, "modalities": modalities_for(kinds) or ["vision"],
                               "batch_size": batch_size, "storage": store.info, **load},
    )
    ds = ds.map_batches(write, batch_size=None, batch_format="pyarrow",
                        fn_kwargs={"out": os.path.abspath(store.out_dir), "info": store.info, "run": store.run})
    totals: dict[str, Any] = {"embedded": 0, "failed": 0, "already_done": 0, "unsupported": 0, "nodes": {}}
    for row in ds.iter_rows():
        for key in ("embedded", "failed", "already_done", "unsupported"):
            totals[key] += int(row[key])
        for node, n in json.loads(row["nodes"]).items():
            totals["nodes"][node] = totals["nodes"].get(node, 0) + n
    return totals


def _settle_conflicts(store: BulkStore, counts: dict[str, Any]) -> None:
    """A path the dataset gave more than once with different bytes: recorded as failed, counted so."""
    for conflict in store.settle_conflicts():
        logger.warning("%s", conflict.message)
        counts["embedded"] -= conflict.embedded
        counts["failed"] += conflict.embedded
