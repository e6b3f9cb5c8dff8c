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

from ..bulk import check_bulk_args, list_files
from ..bulk_format import checkpoint_identity
from ..bulk_store import BulkStore
from ..kinds import FILE_KINDS, infer_kind

__all__ = ["DatasetSummary", "embed_dataset"]

logger = logging.getLogger(__name__)

INSTALL = 'pip install "imagebind-sdk[distributed]"'
PREPARE_MEMORY = 768 * 2**20  # bytes reserved per decoding task: measured peak ~480 MB with torch + video decoding
MAX_BLOCKS = 5000  # more blocks than this only add scheduling overhead; each block is one part file


@dataclass
class DatasetSummary:
    """What :func:`embed_dataset` returns: counts of this run, time, and items per node."""

    embedded: int
    skipped: int
    failed: int
    unsupported: int
    seconds: float
    out: str
    nodes: dict[str, int] = field(default_factory=dict)

    @property
    def items_per_s(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(asdict(self), items_per_s=round(self.items_per_s, 2))


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


def _open_output(checkpoint: str, out: Any, resume: bool) -> BulkStore:
    """Check the checkpoint on the driver (config only) and open ``out`` like embed_files does."""
    from ..hub import resolve

    resolved = resolve(checkpoint)
    identity = checkpoint_identity(resolved.source, resolved.details.get("revision"))
    return BulkStore.open(out, identity, resolved.config.out_embed_dim, resume=resume)


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
    modality: str | None = None,
    batch_size: int = 32,
    concurrency: int | tuple[int, int] | None = None,
    num_gpus_per_actor: float = 0,
    num_cpus_per_actor: float = 1,
    preprocess: Mapping[str, Mapping[str, Any]] | None = None,
    resume: bool = True,
    ray_address: str | None = None,
    backend: str = "torch",
    device: str | None = None,
    dtype: str | None = None,
    quantize: str | None = None,
) -> DatasetSummary:
    """Embed many files on Ray into the bulk output folder ``out`` (see :mod:`imagebind_sdk.bulk_format`).

    ``source``: a directory, glob, path or list of paths (as ``embed_files``), a
    Parquet/CSV file with a ``path`` column, or a ``ray.data.Dataset`` with ``path``
    (files each worker can open) or ``bytes`` + ``path`` (contents; ``path`` names
    them). ``modality`` reads every file as that kind (default: from extensions).
    ``concurrency``: encoding actors, an int (fixed pool) or ``(min, max)``
    (autoscaling; default ``(1, unlimited)``), each with ``num_gpus_per_actor`` GPUs
    and ``num_cpus_per_actor`` CPUs. ``preprocess``: options per kind, e.g.
    ``{"imu": {"sample_rate": 400}}``. ``resume`` skips items already embedded in
    ``out`` with the same path, size and mtime. Bad files are recorded in the
    ``error`` column and never fail the job. Connects to ``ray_address`` (e.g.
    ``"auto"``) unless Ray is already initialised, else starts a local Ray.
    ``backend``/``device``/``dtype``/``quantize``: each actor's ``ImageBind.load`` options (device:
    cuda with GPUs per actor, else cpu); onnxruntime exports once, on the driver, into its cache.
    """
    options = {k: dict(v) for k, v in (preprocess or {}).items()}
    check_bulk_args(modality, batch_size, options)
    load = check_load_options(backend, device or ("cuda" if num_gpus_per_actor else "cpu"), dtype, quantize)
    try:
        import ray
    except ImportError:
        raise ImportError(f"embed_dataset needs Ray: {INSTALL}") from None
    start = time.perf_counter()
    store = _open_output(os.fspath(checkpoint), out, resume)
    started_ray = not ray.is_initialized()
    try:
        if started_ray:
            ray.init(address=ray_address, logging_level=logging.WARNING)
        _check_cpus(ray, concurrency, num_cpus_per_actor)
        ds, paths = _to_dataset(ray, source, batch_size)
        counts = _run(ray, ds, paths, store, os.fspath(checkpoint), modality, batch_size, options,
                      _actor_pool(ray, concurrency), num_gpus_per_actor, num_cpus_per_actor, load)
        store.refresh()
        store.compact()  # the job is complete: drop rows superseded by this run
    finally:
        store.close()
        if started_ray:
            ray.shutdown()
    summary = DatasetSummary(**counts, seconds=time.perf_counter() - start, out=os.fspath(out))
    logger.info("embed_dataset: %s", summary.as_dict())
    return summary


def check_load_options(backend: str, device: str, dtype: str | None, quantize: str | None) -> dict[str, Any]:
    """The actors' ``ImageBind.load`` options, checked here so that a bad one fails before any actor starts."""
    import torch

    from ..api_checks import check_quantize
    from ..dtypes import as_dtype
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


def _run(ray: Any, ds: Any, paths: list[str] | None, store: BulkStore, checkpoint: str, modality: str | None,
         batch_size: int, options: dict, pool: Any, gpus: float, cpus: float, load: dict) -> dict[str, Any]:
    """Build the pipeline, stream it to the end, and add up the writers' counts."""
    from .stages import Encoder, modalities_for, prepare, write

    kinds = [modality] if modality else ([infer_kind(p) for p in paths] if paths is not None else list(FILE_KINDS))
    _warm_backend(checkpoint, kinds, load)

    done = frozenset((p, r["kind"], r["size"], r["mtime_ns"]) for p, r in store.latest.items() if r["error"] is None)
    # The memory reservation bounds how many decoding tasks share a node's RAM, and (as a
    # remote argument the actors lack) keeps Ray Data from fusing decoding into the
    # encoding actors, which would otherwise hold their GPU while decoding.
    ds = ds.map_batches(prepare, batch_size=batch_size, batch_format="pyarrow", memory=PREPARE_MEMORY,
                        fn_kwargs={"modality": modality, "done": done, "options": options})
    ds = ds.map_batches(
        Encoder, batch_size=batch_size, batch_format="pyarrow", compute=pool, num_gpus=gpus, num_cpus=cpus,
        fn_constructor_kwargs={"checkpoint": checkpoint, "modalities": modalities_for(kinds) or ["vision"],
                               "batch_size": batch_size, **load},
    )
    ds = ds.map_batches(write, batch_size=None, batch_format="pyarrow",
                        fn_kwargs={"out": os.path.abspath(store.out_dir), "info": store.info})
    totals: dict[str, Any] = {"embedded": 0, "failed": 0, "skipped": 0, "unsupported": 0, "nodes": {}}
    for row in ds.iter_rows():
        for key in ("embedded", "failed", "skipped", "unsupported"):
            totals[key] += int(row[key])
        for node, n in json.loads(row["nodes"]).items():
            totals["nodes"][node] = totals["nodes"].get(node, 0) + n
    return totals
