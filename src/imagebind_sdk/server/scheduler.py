"""What the model worker encodes next: two lanes, batches cut by compute, long items in turns.

Why this shape (docs/serving.md, "Batching by cost, bounded calls and lanes"):
- A call is bounded by its estimated compute (``--max-batch-gflops``, see
  :mod:`imagebind_sdk.model.cost`), not by its item count alone: one video (15 views)
  costs as much as ~800 one-caption texts. ``--max-batch-size`` still caps the items.
- An item costing more than the bound (a video's views, audio's clips) is encoded in
  several bounded calls over its rows. After each call its rest goes back to the end of
  its queue with a new turn, behind whatever arrived meanwhile: a caption sent during a
  long video waits for about one bounded call, not the whole video.
- Lanes: interactive work goes ahead of bulk work; while bulk work waits, every
  ``bulk_every``-th call is bulk's, so it never starves.
- Within a lane the queue whose head has had its turn longest goes first (no starvation
  between kinds); a queue waits up to ``max_wait`` for companions unless it fills a call.

Not thread-safe: the engine calls it under its lock. No torch here: the engine holds the
tensors in :attr:`Work.payload`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

LANES = ("interactive", "bulk")
# (kind, rows, tokens per row) -> estimated GFLOPs of one encoder call.
Cost = Callable[[str, int, int], float]
Key = tuple[str, "str | None"]  # (kind, LoRA adapter): never two in one call


@dataclass(eq=False)
class Work:
    """One item waiting for its encoder: ``rows`` input rows (a video's views, audio's clips; else 1)."""

    key: Key
    lane: str
    rows: int
    tokens: int  # tokens per row (text: up to its end-of-text)
    turn: float  # its place among queues: arrival, or the end of its last call
    ready_at: float  # when it goes without companions
    payload: Any = None
    done: int = 0  # rows taken into calls so far
    cancelled: bool = False  # nobody waits for it any more (or it failed): skipped
    arrival_call: int = 0  # calls cut before it arrived
    waited_calls: int = -1  # calls cut after it arrived and before its first one (-1: not taken yet)


@dataclass
class Slice:
    """Rows ``start:stop`` of one item, in one call."""

    work: Work
    start: int
    stop: int


@dataclass
class Batch:
    """One encoder call: slices of items of one queue."""

    key: Key
    lane: str
    slices: list[Slice] = field(default_factory=list)
    gflops: float = 0.0


class Scheduler:
    """Queues per lane and (kind, adapter); :meth:`next` cuts the next call."""

    def __init__(self, cost: Cost, max_gflops: float, max_items: int, bulk_every: int) -> None:
        self.cost, self.max_gflops, self.max_items, self.bulk_every = cost, max_gflops, max_items, bulk_every
        self._queues: dict[str, dict[Key, deque[Work]]] = {lane: {} for lane in LANES}
        self._interactive_run = 0  # interactive calls in a row while bulk work waited
        self.calls = 0  # calls cut so far

    def put(self, works: list[Work]) -> None:
        """Queue a request's items of one kind in one step (never interleaved with another's)."""
        for work in works:
            work.arrival_call = self.calls
            self._queues[work.lane].setdefault(work.key, deque()).append(work)

    def requeue(self, work: Work, now: float) -> None:
        """After a call: the rest of a partly encoded item goes last, behind what arrived meanwhile."""
        if work.cancelled or work.done >= work.rows:
            return
        work.turn = work.ready_at = now
        self._queues[work.lane].setdefault(work.key, deque()).append(work)

    def depth(self, lane: str | None = None, kind: str | None = None) -> int:
        """Items waiting (in ``lane``, of ``kind``; None: all)."""
        return sum(len(queue) for name, queues in self._queues.items() if lane in (None, name)
                   for key, queue in queues.items() if kind in (None, key[0]))

    def next(self, now: float, stopping: bool = False) -> Batch | float | None:
        """The next call; or the seconds to wait for one to fill up; or None when nothing waits.
        ``stopping``: whatever waits goes at once."""
        self._drop_cancelled()
        lane = self._lane()
        if lane is None:
            return None
        queues = self._queues[lane]
        key = min((k for k, q in queues.items() if q), key=lambda k: queues[k][0].turn)
        queue = queues[key]
        if not (stopping or queue[0].ready_at <= now or self._fills_a_call(key[0], queue)):
            return queue[0].ready_at - now
        batch = self._cut(key, lane, queue)
        bulk_waits = self.depth("bulk") > 0
        self._interactive_run = self._interactive_run + 1 if lane == "interactive" and bulk_waits else 0
        self.calls += 1
        return batch

    def _lane(self) -> str | None:
        """Interactive first; bulk when alone, or when its turn has come (every ``bulk_every``-th call)."""
        live = [lane for lane in LANES if any(self._queues[lane].values())]
        if len(live) < 2:
            return live[0] if live else None
        return "bulk" if self._interactive_run >= self.bulk_every - 1 else "interactive"

    def _drop_cancelled(self) -> None:
        for queues in self._queues.values():
            for queue in queues.values():
                while queue and queue[0].cancelled:
                    queue.popleft()

    def _fills_a_call(self, kind: str, queue: deque[Work]) -> bool:
        if len(queue) >= self.max_items:
            return True
        rows = sum(work.rows - work.done for work in queue)
        return self.cost(kind, rows, max(work.tokens for work in queue)) >= self.max_gflops

    def _cut(self, key: Key, lane: str, queue: deque[Work]) -> Batch:
        """Rows from the queue's head while the call's cost stays within the bound (at least
        one row, however costly); an item that does not fit whole gives the rows that do."""
        batch, rows, tokens = Batch(key, lane), 0, 0
        while queue and len(batch.slices) < self.max_items:
            work = queue[0]
            if work.cancelled:
                queue.popleft()
                continue
            longest = max(tokens, work.tokens)  # text: a batch runs to its longest text
            per_row = self.cost(key[0], 1, longest)
            fit = int(self.max_gflops / per_row * (1 + 1e-9)) if per_row > 0 else work.rows
            take = min(work.rows - work.done, fit - rows)
            if take <= 0:
                if batch.slices:
                    break
                take = 1
            if work.done == 0:
                work.waited_calls = self.calls - work.arrival_call
            batch.slices.append(Slice(work, work.done, work.done + take))
            work.done += take
            rows, tokens = rows + take, longest
            queue.popleft()
            if work.done < work.rows:  # the rest goes back after this call (requeue)
                break
        batch.gflops = self.cost(key[0], rows, tokens)
        return batch
