"""The dynamic batching engine: per-kind queues feeding one model worker thread per device.

Why this shape:
- Items of concurrent requests wait in one queue per input kind and are encoded together
  up to ``max_batch_size`` items or ``max_wait_ms`` after the oldest arrived. While the
  model is busy, queues fill up, so batches grow exactly when the server is loaded.
- Kinds never share a batch (video and vision use the same encoder but not the same
  batch), nor do LoRA adapters (the queue key is (kind, adapter); the worker switches
  ``set_adapter`` between batches, never inside one), and one request's items of a kind enter their queue in one step: a request
  served alone is always cut into the same batches and gets bit-identical vectors.
- A batch yields one outcome per item (:meth:`Pipeline.encode_rows` with isolation): an
  item whose vector is NaN/inf, or that the encoder fails on alone, fails only itself;
  the other items of the batch keep their vectors.
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
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from ..kinds import ENCODER_OF, INPUT_KINDS
from ..pipeline import Rows, pipeline_of
from .errors import ApiError, overloaded
from .metrics import Metrics
from .pool import DaemonThreadPool
from .settings import Settings

logger = logging.getLogger(__name__)



@dataclass
class _Item:
    """One preprocessed input waiting for its encoder."""

    tensor: torch.Tensor
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float
    cancelled: bool = False  # set when the request gave up (timeout, disconnect)


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
        # One queue per (kind, adapter): items of different adapters never share an encoder batch.
        self._queues: dict[tuple[str, str | None], deque[_Item]] = {(kind, None): deque() for kind in INPUT_KINDS}
        self._cond = threading.Condition()
        self._stopping = False
        self._pending = 0  # items admitted and not yet answered (event-loop thread only)
        self._pool = DaemonThreadPool(settings.workers_preprocess, "imagebind-preprocess")  # never blocks exit
        self._worker = threading.Thread(target=self._run, name=f"imagebind-model-{model.device}", daemon=True)
        self._worker.start()

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
    async def encode(self, kind: str, tensors: list[torch.Tensor], adapter: str | None = None) -> Rows:
        """Preprocessed items of one kind -> their (N, D) raw model outputs (normalize=False)
        under LoRA ``adapter`` (None: the base), with the positions of the items that have
        no vector and why."""
        if not tensors:
            return Rows(torch.empty(0, self.pipeline.embedding_dim), {})
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        items = [_Item(t, loop.create_future(), loop, now) for t in tensors]
        with self._cond:
            if self._stopping:
                raise ApiError(503, "the server is shutting down")
            queue = self._queues.setdefault((kind, adapter), deque())
            queue.extend(items)  # one step: never interleaved with another request
            self.metrics.queue_depth.labels(kind).set(len(queue))
            self._cond.notify()
        try:
            outcomes = await asyncio.gather(*(item.future for item in items))
        except BaseException:
            for item in items:  # the worker skips what nobody waits for any more
                item.cancelled = True
            raise
        failed = {i: row for i, row in enumerate(outcomes) if isinstance(row, str)}
        zeros = torch.zeros(self.pipeline.embedding_dim)
        return Rows(torch.stack([zeros if isinstance(row, str) else row for row in outcomes]), failed)

    def _run(self) -> None:
        """The model worker: take the next batch, encode it, hand out the rows; until stopped."""
        torch.set_grad_enabled(False)
        while True:
            with self._cond:
                taken = self._next_batch()
            if taken is None:
                return
            self._encode_batch(*taken)

    def _next_batch(self) -> tuple[tuple[str, str | None], list[_Item]] | None:
        """Wait (holding the condition) for a batch that is full or whose oldest item waited long enough."""
        max_wait = self.settings.max_wait_ms / 1000.0
        while True:
            for queue in self._queues.values():
                while queue and queue[0].cancelled:
                    queue.popleft()
            live = [key for key, queue in self._queues.items() if queue]
            if not live:
                if self._stopping:
                    return None
                self._cond.wait()
                continue
            key = min(live, key=lambda k: self._queues[k][0].enqueued)  # oldest first: no starvation
            queue = self._queues[key]
            wait = queue[0].enqueued + max_wait - time.monotonic()
            if len(queue) >= self.settings.max_batch_size or wait <= 0 or self._stopping:
                batch = [queue.popleft() for _ in range(min(len(queue), self.settings.max_batch_size))]
                self.metrics.queue_depth.labels(key[0]).set(len(queue))
                return key, batch
            self._cond.wait(wait)

    def _encode_batch(self, key: tuple[str, str | None], batch: list[_Item]) -> None:
        kind, adapter = key
        batch = [item for item in batch if not item.cancelled]
        if not batch:
            return
        started = time.perf_counter()
        try:
            if getattr(self.model, "active_adapter", None) != adapter:  # only this thread switches it
                self.model.set_adapter(adapter)
            # Per-item outcomes: a bad item (NaN/inf vector, or an encoder error on it alone,
            # found by retrying item by item) fails only its own request.
            rows = self.pipeline.encode_rows(
                ENCODER_OF[kind], torch.stack([item.tensor for item in batch]),
                batch_size=self.settings.max_batch_size, normalize=False, isolate=True,
            )
        except Exception as exc:  # outside the encoder (e.g. weights): every waiting request fails
            logger.exception("encoding a %s batch of %d failed", kind, len(batch))
            for item in batch:
                item.loop.call_soon_threadsafe(_resolve, item.future, exc, True)
            return
        self.metrics.batch_seconds.labels(kind).observe(time.perf_counter() - started)
        self.metrics.batch_size.labels(kind).observe(len(batch))
        self.metrics.items.labels(kind).inc(len(batch))
        for position, (item, row) in enumerate(zip(batch, rows.vectors)):
            outcome = rows.failed.get(position)  # why this item has no vector, else its row
            item.loop.call_soon_threadsafe(_resolve, item.future, row.clone() if outcome is None else outcome, False)

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
