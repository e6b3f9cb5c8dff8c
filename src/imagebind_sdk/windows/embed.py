"""Windowed embeddings of long recordings: one unit vector per window, with timestamps.

>>> out = model.embed_windows(audio="talk.wav")  # doctest: +SKIP
>>> out[0].vectors.shape, out[0].start_s[:3]  # doctest: +SKIP
(torch.Size([11, 1024]), tensor([0., 1., 2.], dtype=torch.float64))

Defaults per kind: audio windows of 2 s every 1 s, video windows of 2 s (one
reference clip: 2 frames x 3 crops, averaged) every 1 s, IMU windows of 2000 steps
(10 s at 200 Hz) every 5 s. Where windows fall, the tail rule and inputs shorter than
a window: :mod:`imagebind_sdk.preprocess.windowing`. Files are decoded incrementally
(:mod:`.preprocess.audio_windows`, :mod:`.preprocess.video_windows`) in a background
thread that stays at most ``QUEUE_BATCHES`` batches ahead of the encoder, so memory
does not grow with the recording and decoding overlaps compute.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch

from ..kinds import ENCODER_OF
from ..vectors.space import as_space
from ..pipeline import Pipeline, pipeline_of
from ..preprocess.audio_windows import audio_windows
from ..preprocess.sources import InputError, describe
from ..preprocess.video_windows import video_windows
from ..preprocess.windowing import WindowPlan, as_fraction, check_kinds, imu_windows
from ..progress import progress_bar

__all__ = ["DEFAULT_HOP_S", "DEFAULT_WINDOW_S", "WindowEmbeddings", "Windows", "embed_windows"]

logger = logging.getLogger(__name__)

WINDOW_KINDS = ("audio", "video", "imu")
DEFAULT_WINDOW_S = {"audio": 2, "video": 2, "imu": 10}
DEFAULT_HOP_S = {"audio": 1, "video": 1, "imu": 5}
STREAMS: dict[str, Callable[..., Iterator[WindowPlan | torch.Tensor]]] = {
    "audio": audio_windows,
    "video": video_windows,
    "imu": imu_windows,
}
# Batches the decoding thread may prepare ahead of the encoder (bounds memory).
QUEUE_BATCHES = 2
# Encoded batches between two returns of freed heap memory to the OS (see _trim_heap).
TRIM_EVERY_BATCHES = 4
# The encoder sees at most this many clips at once, whatever batch_size queues: full-size
# audio's activations at 32 windows peaked 396 MB above the model, at 8 279 MB (20-min WAV,
# benchmarks/RESULTS.md), at no loss of CPU speed (3.2 s vs 4.3 s for 21 windows).
ENCODER_CHUNK = 8
_PUT_POLL_S = 0.1


@dataclass(frozen=True)
class Windows:
    """The windows of one input: ``vectors`` (N, D) unit float32, ``start_s``/``end_s`` (N,) seconds."""

    kind: str
    source: str
    vectors: torch.Tensor
    start_s: torch.Tensor
    end_s: torch.Tensor

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def metadata(self) -> list[dict[str, Any]]:
        """One dict per window: ``source``, ``kind``, ``start_s``, ``end_s``."""
        return [
            {"source": self.source, "kind": self.kind, "start_s": float(a), "end_s": float(b)}
            for a, b in zip(self.start_s.tolist(), self.end_s.tolist())
        ]


class WindowEmbeddings(Sequence[Windows]):
    """What :func:`embed_windows` returns: one :class:`Windows` per input (audio, then video, then IMU).

    ``vectors``, ``start_s``, ``end_s`` and :meth:`metadata` concatenate every input's rows.
    ``failed``: ``(source, error)`` of inputs with no windows (read from a bulk output folder).
    ``space``: the model space of the vectors (``vectors/space.py``; None: unknown).
    """

    def __init__(self, items: Sequence[Windows], failed: Sequence[tuple[str, str]] = (), space: Any = None) -> None:
        self._items = list(items)
        self.failed = list(failed)
        self.space = as_space(space)

    def __getitem__(self, index: int) -> Windows:  # type: ignore[override]
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        parts = ", ".join(f"{w.kind}:{w.source}={len(w)}" for w in self._items)
        return f"WindowEmbeddings({parts})"

    def _cat(self, name: str, empty: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(w, name) for w in self._items]) if self._items else empty

    @property
    def vectors(self) -> torch.Tensor:
        return self._cat("vectors", torch.empty(0, 0))

    @property
    def start_s(self) -> torch.Tensor:
        return self._cat("start_s", torch.empty(0, dtype=torch.float64))

    @property
    def end_s(self) -> torch.Tensor:
        return self._cat("end_s", torch.empty(0, dtype=torch.float64))

    def metadata(self) -> list[dict[str, Any]]:
        return [row for w in self._items for row in w.metadata()]

    def ids(self) -> list[str]:
        """Row ids for an index: ``"<source>@<start>-<end>"`` (and the kind when needed to be unique)."""
        rows = self.metadata()
        ids = [f"{r['source']}@{r['start_s']:.3f}-{r['end_s']:.3f}" for r in rows]
        if len(set(ids)) != len(ids):
            ids = [f"{r['kind']}:{i}#{n}" for n, (r, i) in enumerate(zip(rows, ids))]
        return ids

    def add_to(self, index: Any, *, allow_other_space: bool = False) -> list[str]:
        """Add every window to an :class:`~imagebind_sdk.retrieval.index.EmbeddingIndex`, timestamps in metadata
        (windows of another space than the index's are refused unless ``allow_other_space``)."""
        return index.add(self.vectors, ids=self.ids(), metadata=self.metadata(), space=self.space,
                         allow_other_space=allow_other_space)


def windows_from_records(records: Mapping[str, Mapping[str, Any]], space: Any = None) -> WindowEmbeddings:
    """A windowed bulk output's newest records (path -> record with ``windows``) -> WindowEmbeddings, paths sorted."""
    items, failed = [], []
    for path, record in sorted(records.items()):
        rows = record["windows"]
        if record["error"] is not None or not rows or any(v is None for _, _, v in rows):
            failed.append((path, str(record["error"] or "no embedding recorded")))
            continue
        items.append(Windows(record["kind"], path, torch.from_numpy(np.stack([v for _, _, v in rows])),
                             torch.tensor([a for a, _, _ in rows], dtype=torch.float64),
                             torch.tensor([b for _, b, _ in rows], dtype=torch.float64)))
    return WindowEmbeddings(items, failed, space)


def window_spans(window_s: Any = None, hop_s: Any = None) -> dict[str, list[str]]:
    """``{kind: [window, hop]}`` as exact fraction strings (what a windowed bulk output records)."""
    return {kind: [str(x) for x in _spans(kind, window_s, hop_s)] for kind in WINDOW_KINDS}


def _spans(kind: str, window_s: Any, hop_s: Any) -> tuple[Fraction, Fraction]:
    """(window, hop) of ``kind`` as exact seconds; each argument a number or a mapping per kind."""

    def pick(value: Any, default: Mapping[str, Any], name: str) -> Fraction:
        if isinstance(value, Mapping):
            check_kinds(value, name, WINDOW_KINDS)
            value = value.get(kind)
        return as_fraction(default[kind] if value is None else value, name)

    return pick(window_s, DEFAULT_WINDOW_S, "window_s"), pick(hop_s, DEFAULT_HOP_S, "hop_s")


def _as_items(value: Any) -> list[Any]:
    """One input or a list of them; an audio ``(waveform, rate)`` pair is one input."""
    if isinstance(value, list):
        return value
    if isinstance(value, tuple) and not (len(value) == 2 and isinstance(value[1], (int, float))):
        return list(value)
    return [value]


def _named(kind: str, index: int, item: Any, stream: Iterator[Any]) -> Iterator[Any]:
    """The stream, its input errors renamed to say which input: ``audio[0] (talk.wav): ...``."""
    try:
        yield from stream
    except (InputError, OSError, ValueError) as exc:
        message = f"{kind}[{index}] ({describe(item)}): {exc}"
        raise (FileNotFoundError if isinstance(exc, FileNotFoundError) else InputError)(message) from exc


def _produce(streams: list[Callable[[], Iterator[Any]]], out: queue.Queue, stop: threading.Event) -> None:
    """Background thread: run the streams in order into ``out``; ends with None or the exception."""

    def put(message: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(message, timeout=_PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    try:
        for number, make in enumerate(streams):
            with contextlib.closing(make()) as stream:
                for message in stream:
                    if not put((number, message)):
                        return
        put(None)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        put(exc)


def _messages(streams: list[Callable[[], Iterator[Any]]], prefetch: bool) -> Iterator[tuple[int, Any]]:
    """(input number, plan or batch) in order: decoded in a background thread when ``prefetch``."""
    if not prefetch:
        for number, make in enumerate(streams):
            with contextlib.closing(make()) as stream:
                yield from ((number, message) for message in stream)
        return
    out: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(streams, out, stop), name="imagebind-windows", daemon=True)
    worker.start()
    try:
        while (message := out.get()) is not None:
            if isinstance(message, BaseException):
                raise message
            yield message
    finally:
        stop.set()
        worker.join()


def embed_windows(
    model: Any,
    audio: Any = None,
    video: Any = None,
    imu: Any = None,
    *,
    window_s: float | Fraction | Mapping[str, Any] | None = None,
    hop_s: float | Fraction | Mapping[str, Any] | None = None,
    batch_size: int = 32,
    progress: bool | None = None,
    preprocess: Mapping[str, Mapping[str, Any]] | None = None,
    prefetch: bool = True,
) -> WindowEmbeddings:
    """Embed long recordings window by window (see the module docstring for defaults).

    Each of ``audio``, ``video``, ``imu`` is one input or a list. ``window_s``/``hop_s``
    are seconds, one value for every kind or a mapping ``{"audio": 2, ...}``; audio and
    video windows are at least one 2 s clip. ``preprocess={"imu": {"sample_rate": 100}}``
    passes IMU options (``sample_rate``, ``target_rate``). ``prefetch=False`` decodes in
    the calling thread (no overlap with compute; for measuring it). A progress bar with
    an ETA is shown per input with many windows on a terminal (``progress`` forces it).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    given = {k: v for k, v in dict(audio=audio, video=video, imu=imu).items() if v is not None}
    if not given:
        raise ValueError(f"nothing to embed: pass at least one of {', '.join(WINDOW_KINDS)}")
    options = dict(preprocess or {})
    unknown = sorted(set(options) - {"imu"})
    if unknown:
        raise ValueError(f"preprocess options are taken for imu only, got them for {unknown}")
    pipeline = pipeline_of(model)
    jobs, streams = [], []
    for kind, value in given.items():
        pipeline.encoder(ENCODER_OF[kind])  # fail fast on an unloaded encoder
        window, hop = _spans(kind, window_s, hop_s)
        for index, item in enumerate(_as_items(value)):
            extra = options.get(kind, {})
            jobs.append((kind, index, describe(item)))
            streams.append(lambda k=kind, i=index, it=item, w=window, h=hop, x=extra: _named(
                k, i, it, STREAMS[k](it, w, h, batch_size, **x)))
    windows = _collect(pipeline, jobs, _messages(streams, prefetch), progress)
    windows.space = getattr(model, "space", None)
    return windows


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on other C libraries."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _trim_heap() -> None:
    """Give freed heap pages back to the OS.

    Batches of several MB are allocated in the decoding thread and freed in this one;
    glibc then serves them from its heaps (its mmap threshold rises after the first
    such free) and, with the two threads interleaving, keeps the freed pages: RSS grew
    with the recording's length (a 10-minute 2 fps video: 535 MB above the model, 97 MB
    with trimming). ``malloc_trim`` returns them; elsewhere this is a no-op.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _encode(pipeline: Pipeline, job: tuple[str, int, str], batch: torch.Tensor, plan: WindowPlan,
            first: int) -> torch.Tensor:
    """One batch of an input's windows -> unit vectors; a window whose vector is NaN/inf
    raises :class:`InputError` naming the input and the window (``first``: its number)."""
    kind, index, source = job
    rows = pipeline.encode_rows(ENCODER_OF[kind], batch, batch_size=ENCODER_CHUNK)
    if rows.failed:
        bad = first + min(rows.failed)
        raise InputError(f"{kind}[{index}] ({source}): window {bad} ({plan.starts[bad]:g}-{plan.ends[bad]:g} s): "
                         f"{rows.failed[bad - first]}")
    return rows.vectors


def _collect(
    pipeline: Pipeline, jobs: list[tuple[str, int, str]], messages: Iterator[tuple[int, Any]], progress: bool | None
) -> WindowEmbeddings:
    """Encode the batches as they come; one :class:`Windows` per input."""
    plans: dict[int, WindowPlan] = {}
    parts: dict[int, list[torch.Tensor]] = {n: [] for n in range(len(jobs))}
    bars: dict[int, Any] = {}
    encoded = 0
    try:
        for number, message in messages:
            kind, _, source = jobs[number]
            if isinstance(message, WindowPlan):
                plans[number] = message
                bars[number] = progress_bar(len(message.starts), f"{kind} windows {source}", "window", progress)
                continue
            done = sum(len(part) for part in parts[number])
            parts[number].append(_encode(pipeline, jobs[number], message, plans[number], done))
            del message  # the batch is freed before the heap is trimmed
            encoded += 1
            if encoded % TRIM_EVERY_BATCHES == 0:
                _trim_heap()
            if bars[number] is not None:
                bars[number].update(parts[number][-1].shape[0])
    finally:
        for bar in bars.values():
            if bar is not None:
                bar.close()
    items = []
    for number, (kind, _, source) in enumerate(jobs):
        plan = plans[number]
        vectors = torch.cat(parts[number]) if parts[number] else torch.empty(0, pipeline.embedding_dim)
        items.append(Windows(kind, source, vectors, torch.tensor(plan.starts, dtype=torch.float64),
                             torch.tensor(plan.ends, dtype=torch.float64)))
    return WindowEmbeddings(items)
