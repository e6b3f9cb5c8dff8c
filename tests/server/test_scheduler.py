"""The scheduler alone (no model, no server): calls cut by estimated compute, long items in
turns behind newcomers, interactive ahead of bulk, and bulk's guaranteed share.

Costs are the real estimates of imagebind-huge (``model/cost.py``): a video view or an
image 334 GFLOPs, a 10-token text 6 GFLOPs.
"""

from __future__ import annotations

import pytest

from imagebind_sdk.kinds import ENCODER_OF
from imagebind_sdk.model.config import ImageBindConfig
from imagebind_sdk.model.cost import call_gflops, row_gflops, sequence_length
from imagebind_sdk.server.scheduler import Batch, Scheduler, Work
from imagebind_sdk.server.settings import Settings

HUGE = ImageBindConfig.preset("imagebind_huge")
VIEW = row_gflops(HUGE.encoder("vision"))


def cost(kind: str, rows: int, tokens: int) -> float:
    return call_gflops(HUGE.encoder(ENCODER_OF[kind]), rows, tokens)


def work(kind: str, lane: str = "interactive", rows: int = 1, tokens: int | None = None, at: float = 0.0) -> Work:
    tokens = tokens or sequence_length(HUGE.encoder(ENCODER_OF[kind]))
    return Work((kind, None), lane, rows, tokens, turn=at, ready_at=at)


def cut(scheduler: Scheduler, now: float = 1.0) -> Batch:
    batch = scheduler.next(now)
    assert isinstance(batch, Batch), batch
    return batch


def spans(batch: Batch) -> list[tuple[int, int]]:
    return [(piece.start, piece.stop) for piece in batch.slices]


def test_huge_costs_per_kind() -> None:
    """The per-item costs docs/serving.md states for imagebind-huge."""
    assert round(VIEW) == 334 and sequence_length(HUGE.encoder("vision")) == 257
    assert round(row_gflops(HUGE.encoder("text"), 10), 1) == 6.0
    assert round(row_gflops(HUGE.encoder("text"))) == 47  # all 77 tokens
    assert round(3 * row_gflops(HUGE.encoder("audio"))) == 122  # 3 clips of 229 tokens
    assert round(15 * VIEW) == 5013  # a video: 15 views


def test_a_video_goes_in_bounded_calls_behind_newcomers() -> None:
    scheduler = Scheduler(cost, max_gflops=5 * VIEW, max_items=32, bulk_every=4)
    video = work("video", rows=15)
    scheduler.put([video])
    first = cut(scheduler)
    assert spans(first) == [(0, 5)] and first.gflops <= 5 * VIEW * (1 + 1e-9)
    text = work("text", tokens=10, at=1.5)  # arrives during the video's first call
    scheduler.put([text])
    scheduler.requeue(video, now=2.0)  # the call ends
    assert cut(scheduler, 2.0).slices[0].work is text  # the caption goes between the video's calls
    assert text.waited_calls == 0
    assert spans(cut(scheduler, 2.1)) == [(5, 10)]
    scheduler.requeue(video, now=3.0)
    assert spans(cut(scheduler, 3.0)) == [(10, 15)]
    scheduler.requeue(video, now=4.0)  # done: not queued again
    assert scheduler.next(4.0) is None


def test_two_videos_take_turns_and_small_items_share_a_call() -> None:
    scheduler = Scheduler(cost, max_gflops=6 * VIEW, max_items=32, bulk_every=4)
    a, b = work("video", rows=15), work("video", rows=15)
    scheduler.put([a, b])
    assert [(p.work, p.start, p.stop) for p in cut(scheduler).slices] == [(a, 0, 6)]
    scheduler.requeue(a, now=2.0)
    assert [(p.work, p.start, p.stop) for p in cut(scheduler, 2.0).slices] == [(b, 0, 6)]  # b before a's rest
    scheduler.requeue(b, now=3.0)
    assert spans(cut(scheduler, 3.0)) == [(6, 12)]
    scheduler.requeue(a, now=4.0)
    assert spans(cut(scheduler, 4.0)) == [(6, 12)]
    scheduler.requeue(b, now=5.0)
    last = cut(scheduler, 5.0)  # a's last 3 views and b's first 3 of its last 3
    assert [(p.work, p.start, p.stop) for p in last.slices] == [(a, 12, 15), (b, 12, 15)]


def test_text_calls_cost_their_longest_text_and_stay_within_max_items() -> None:
    per_long = row_gflops(HUGE.encoder("text"))  # 77 tokens
    scheduler = Scheduler(cost, max_gflops=3 * per_long, max_items=5, bulk_every=4)
    scheduler.put([work("text", tokens=10) for _ in range(6)])
    assert len(cut(scheduler).slices) == 5  # max_items
    scheduler.put([work("text", tokens=77), work("text", tokens=77), work("text", tokens=77)])
    # The short text left and 2 long ones: three rows of 77 tokens fill the bound; the third long one waits.
    batch = cut(scheduler)
    assert [p.work.tokens for p in batch.slices] == [10, 77, 77]
    assert batch.gflops == pytest.approx(cost("text", 3, 77))


def test_interactive_goes_first_and_bulk_still_gets_every_nth_call() -> None:
    scheduler = Scheduler(cost, max_gflops=VIEW, max_items=32, bulk_every=3)
    scheduler.put([work("video", lane="bulk", rows=15)])
    lanes = []
    for call in range(9):
        scheduler.put([work("text", tokens=10, at=1.0 + call)])  # interactive work keeps coming
        batch = cut(scheduler, 1.0 + call)
        lanes.append(batch.lane)
        for piece in batch.slices:
            scheduler.requeue(piece.work, 1.5 + call)
    assert lanes == ["interactive", "interactive", "bulk"] * 3


def test_a_lone_item_waits_for_companions_unless_it_fills_a_call() -> None:
    scheduler = Scheduler(cost, max_gflops=2 * VIEW, max_items=32, bulk_every=4)
    scheduler.put([Work(("vision", None), "interactive", 1, 257, turn=0.0, ready_at=0.010)])
    assert scheduler.next(0.0) == pytest.approx(0.010)  # seconds to wait
    scheduler.put([Work(("vision", None), "interactive", 1, 257, turn=0.001, ready_at=0.011)])
    assert len(cut(scheduler, 0.002).slices) == 2  # the bound is reached: no more waiting


def test_settings_check_the_new_numbers() -> None:
    with pytest.raises(ValueError, match="--max-batch-gflops"):
        Settings(max_batch_gflops=0)
    with pytest.raises(ValueError, match="--bulk-every"):
        Settings(bulk_every=1)
