"""The dynamic batching engine: queues per lane and kind feeding one model worker thread per device.

Why this shape:
- Items of concurrent requests wait in queues per lane and (kind, adapter) and are encoded
  together (:mod:`.scheduler` cuts the calls): up to ``max_batch_size`` items and
  ``max_batch_gflops`` of estimated compute per encoder call, or what waited
  ``max_wait_ms`` since the oldest arrived. While the model is busy, queues fill up, so
  batches grow exactly when the server is loaded.
- Kinds never share a batch (video and vision use the same encoder but not the same
  batch), nor do LoRA adapters (the worker switches ``set_adapter`` between batches,
  never inside one), and one request's items of a kind enter their queue in one step: a
  request served alone is always cut into the same calls and gets the same vectors.
- An item of several rows (a video's views, audio's clips) may be encoded over several
  calls: the encoder's per-row outputs are summed and divided by the row count once all
  are in, the mean over rows that one call takes (``Pipeline.run`` with ``normalize=False``).
- A call yields one outcome per row (:meth:`Pipeline.encode_rows` with isolation): a row
  whose vector is NaN/inf, or that the encoder fails on alone, fails only its own item;
  the other items of the call keep their vectors.
- Model calls run in one worker thread per device (PyTorch releases the GIL), never on
  the event loop; decoding and preprocessing run in a thread pool, one task per item,
  so a long video never holds up health checks or text requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from ..kinds import ENCODER_OF, INPUT_KINDS
from ..model.cost import call_gflops, sequence_length
from ..pipeline import Rows, pipeline_of, rows_per_item
from .errors import ApiError, overloaded
from .lanes import current_lane
from .metrics import Metrics
from .pool import DaemonThreadPool
from .scheduler import LANES, Batch, Scheduler, Work
from .settings import Settings

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Item:
    """The engine's side of a queued :class:`Work`: its rows, who waits, the sum so far."""

    rows: torch.Tensor  # (rows, ...): a video's views, audio's clips, else one row
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    total: torch.Tensor | None = None  # sum of the rows' outputs encoded so far


def _resolve(future: asyncio.Future, value: Any, failed: bool) -> None:
    if future.done():
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)


class Engine:
    """Admission control, preprocessing pool and batched encoder calls for one model."""

    def __init__(self, model: Any, settings: Settings, metrics: Metrics) -> None:
        self.model = model
        self.pipeline = pipeline_of(model)
        self.settings = settings
        self.metrics = metrics
        self._scheduler = Scheduler(self._cost, settings.max_batch_gflops, settings.max_batch_size,
                                    settings.bulk_every)
        self._cond = threading.Condition()
        self._stopping = False
        self._pending = 0  # items admitted and not yet answered (event-loop thread only)
        self._pool = DaemonThreadPool(settings.workers_preprocess, "imagebind-preprocess")  # never blocks exit
        self._worker = threading.Thread(target=self._run, name=f"imagebind-model-{model.device}", daemon=True)
        self._worker.start()

    def _cost(self, kind: str, rows: int, tokens: int) -> float:
        return call_gflops(self.pipeline.config.encoder(ENCODER_OF[kind]), rows, tokens)

    # -- admission ------------------------------------------------------------
    @contextlib.contextmanager
    def admit(self, n_items: int) -> Iterator[None]:
        """Reserve room for a request's items, or refuse it with 503 when the queue is full."""
        if self._stopping:
            raise ApiError(503, "the server is shutting down", {"Retry-After": str(self.settings.retry_after_s)})
        limit = self.settings.max_queue
        if n_items > limit:
            raise ApiError(413, f"the request holds {n_items} items, more than the server queues at once "
                                f"({limit}, --max-queue); split it")
        if self._pending + n_items > limit:
            self.metrics.rejected.inc()
            raise overloaded(
                f"server overloaded: {self._pending} items queued, this request adds {n_items} "
                f"(limit {limit}, --max-queue); retry later", self.settings.retry_after_s,
            )
        self._pending += n_items
        self.metrics.pending.set(self._pending)
        try:
            yield
        finally:
            self._pending -= n_items
            self.metrics.pending.set(self._pending)

    # -- preprocessing --------------------------------------------------------
    async def in_pool(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in the preprocessing pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- encoding -------------------------------------------------------------
    async def encode(self, kind: str, tensors: list[torch.Tensor], adapter: str | None = None,
                     lane: str | None = None) -> Rows:
        """Preprocessed items of one kind -> their (N, D) raw model outputs (normalize=False)
        under LoRA ``adapter`` (None: the base), queued in ``lane`` (None: the request's, see
        :mod:`.lanes`), with the positions of the items that have no vector and why."""
        if not tensors:
            return Rows(torch.empty(0, self.pipeline.embedding_dim), {})
        loop = asyncio.get_running_loop()
        works = self._works(kind, tensors, adapter, lane or current_lane(), loop)
        with self._cond:
            if self._stopping:
                raise ApiError(503, "the server is shutting down")
            self._scheduler.put(works)  # one step: never interleaved with another request
            self._gauges()
            self._cond.notify()
        futures = [work.payload.future for work in works]
        try:
            outcomes = await asyncio.gather(*futures)
        except BaseException:
            for work in works:  # the worker skips what nobody waits for any more
                work.cancelled = True
            raise
        failed = {i: row for i, row in enumerate(outcomes) if isinstance(row, str)}
        zeros = torch.zeros(self.pipeline.embedding_dim)
        return Rows(torch.stack([zeros if isinstance(row, str) else row for row in outcomes]), failed)

    def _works(self, kind: str, tensors: list[torch.Tensor], adapter: str | None, lane: str,
               loop: asyncio.AbstractEventLoop) -> list[Work]:
        """Queue entries for the items: their rows and tokens per row (text: up to end-of-text)."""
        modality = ENCODER_OF[kind]
        encoder = self.pipeline.config.encoder(modality)
        now = time.monotonic()
        ready_at = now + self.settings.max_wait_ms / 1000.0
        works = []
        for tensor in tensors:
            count = rows_per_item(modality, tensor, self.pipeline.config)
            rows = tensor if count > 1 else tensor.unsqueeze(0)
            # Text: end-of-text has the largest id; the encoder runs a batch to its longest.
            tokens = int(tensor.argmax()) + 1 if kind == "text" else sequence_length(encoder)
            works.append(Work((kind, adapter), lane, count, tokens, now, ready_at, _Item(rows, loop.create_future(),
                                                                                       loop)))
        return works

    def _gauges(self) -> None:
        """Queue depths by kind and by lane (under the lock)."""
        for kind in INPUT_KINDS:
            self.metrics.queue_depth.labels(kind).set(self._scheduler.depth(kind=kind))
        for lane in LANES:
            self.metrics.lane_queue_depth.labels(lane).set(self._scheduler.depth(lane=lane))

    def _run(self) -> None:
        """The model worker: take the next call, encode it, hand out the rows; until stopped."""
        torch.set_grad_enabled(False)
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            self._encode_batch(batch)
            with self._cond:  # the rest of a long item goes behind what arrived during this call
                now = time.monotonic()
                for piece in batch.slices:
                    self._scheduler.requeue(piece.work, now)
                self._gauges()

    def _next_batch(self) -> Batch | None:
        """Wait (holding the condition) for a call that is full or whose oldest item waited long enough."""
        while True:
            found = self._scheduler.next(time.monotonic(), self._stopping)
            if isinstance(found, Batch):
                self._gauges()
                return found
            if found is None and self._stopping:
                return None
            self._cond.wait(found)

    def _encode_batch(self, batch: Batch) -> None:
        kind, adapter = batch.key
        pieces = [piece for piece in batch.slices if not piece.work.cancelled]
        if not pieces:
            return
        started = time.perf_counter()
        try:
            if getattr(self.model, "active_adapter", None) != adapter:  # only this thread switches it
                self.model.set_adapter(adapter)
            # Per-row outcomes: a bad row (NaN/inf vector, or an encoder error on it alone,
            # found by retrying row by row) fails only its own item.
            rows = self.pipeline.encode_rows(
                ENCODER_OF[kind], torch.cat([p.work.payload.rows[p.start:p.stop] for p in pieces]),
                batch_size=self.settings.max_batch_size, normalize=False, isolate=True,
            )
        except Exception as exc:  # outside the encoder (e.g. weights): every waiting request fails
            logger.exception("encoding a %s batch of %d items failed", kind, len(pieces))
            for piece in pieces:
                self._finish(kind, piece.work, exc, True)
            return
        self._observe(batch, len(pieces), time.perf_counter() - started)
        offset = 0
        for piece in pieces:
            span = range(offset, offset + piece.stop - piece.start)
            offset = span.stop
            why = next((rows.failed[i] for i in span if i in rows.failed), None)
            if why is not None:  # one bad row fails its item: its other rows are not encoded
                self._finish(kind, piece.work, why, False)
                continue
            item = piece.work.payload
            part = rows.vectors[span.start:span.stop].sum(dim=0)
            item.total = part if item.total is None else item.total + part
            if piece.stop == piece.work.rows:
                self._finish(kind, piece.work, item.total / piece.work.rows, False)

    def _observe(self, batch: Batch, items: int, seconds: float) -> None:
        kind = batch.key[0]
        self.metrics.batch_seconds.labels(kind).observe(seconds)
        self.metrics.batch_size.labels(kind).observe(items)
        self.metrics.batch_gflops.labels(kind).observe(batch.gflops)
        self.metrics.lane_calls.labels(batch.lane).inc()
        for piece in batch.slices:
            if piece.start == 0:
                self.metrics.calls_waited.labels(batch.lane).observe(piece.work.waited_calls)

    def _finish(self, kind: str, work: Work, value: Any, failed: bool) -> None:
        """Hand an item its outcome (a vector, why it has none, or an exception); its rest is dropped."""
        work.cancelled = True
        self.metrics.items.labels(kind).inc()
        item = work.payload
        item.loop.call_soon_threadsafe(_resolve, item.future, value, failed)

    # -- lifecycle ------------------------------------------------------------
    def stop(self) -> None:
        """Finish what is queued, then stop the worker and the pool."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        # Wait out a running batch: exiting while the worker is inside a torch op aborts the process.
        self._worker.join(self.settings.shutdown_timeout_s)
        if self._worker.is_alive():
            logger.warning("the model worker is still busy after %g s", self.settings.shutdown_timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=True)
