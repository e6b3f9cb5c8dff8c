"""Which record of a path wins in a bulk output: the latest job's, whatever the writers' clocks say.

A node whose clock is 5 minutes fast is simulated by shifting ``time.time_ns`` where
``bulk_format.write_part`` reads it, exactly the value a skewed node would stamp.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import torch

from imagebind_sdk.bulk import format as bulk_format
from imagebind_sdk.bulk.format import FileStat, content_digest, part_files, records_table
from imagebind_sdk.bulk.store import BulkStore, load_bulk_output
from imagebind_sdk.distributed.stages import write as ray_write_stage

CHECKPOINT = {"source": "tiny", "revision": None}
DIM = 4
SKEW_NS = 5 * 60 * 10**9
REAL_TIME_NS = bulk_format.time.time_ns


def _fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_format.time, "time_ns", lambda: REAL_TIME_NS() + SKEW_NS)


def _vector(value: float) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor([value, 1.0, 0.0, 0.0]), dim=0)


def _local_run(out: Path, stat: FileStat, vector: torch.Tensor) -> None:
    """One job of the local engine: open (resume), commit a batch, compact, close."""
    with BulkStore.open(out, CHECKPOINT, DIM, resume=True) as store:
        if not store.done(stat, "vision"):
            store.write_batch("vision", [(stat, vector)])
        store.compact()


def test_local_job_after_a_fast_clock_job_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, old, new = tmp_path / "out", FileStat("/data/a.jpg", 10, 1), FileStat("/data/a.jpg", 12, 2)
    _fast_clock(monkeypatch)
    _local_run(out, old, _vector(1.0))  # written by a node 5 minutes fast
    monkeypatch.undo()
    _local_run(out, new, _vector(-3.0))  # the file changed; this job runs on a correct clock
    result = load_bulk_output(out)
    torch.testing.assert_close(result.vision[0], _vector(-3.0))
    with BulkStore.open(out, CHECKPOINT, DIM, resume=True) as store:
        assert store.done(new, "vision") and not store.done(old, "vision")
    _local_run(out, new, _vector(-3.0))  # and it stays so on every later run
    torch.testing.assert_close(load_bulk_output(out).vision[0], _vector(-3.0))
    assert len(part_files(out)) == 1


def _ray_run(out: Path, stat: FileStat, vector: torch.Tensor, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    """What embed_dataset does around its workers: open, the write stage on a node, refresh, compact."""
    with BulkStore.open(out, CHECKPOINT, DIM, resume=True) as store:
        batch = records_table([(stat, "vision", vector)], DIM)
        batch = batch.append_column("status", pa.array(["embedded"])).append_column("node", pa.array(["n"]))
        if fast:
            _fast_clock(monkeypatch)
        ray_write_stage(batch, out=str(out), info=store.info, run=store.run)
        monkeypatch.undo()
        store.refresh()
        store.compact()


def test_ray_writer_with_a_fast_clock_does_not_outlive_the_next_run(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Run 1 on a node 5 minutes fast, run 2 (the file changed) on a correct node: run 2's row stays."""
    out = tmp_path / "out"
    _ray_run(out, FileStat("/data/a.jpg", 10, 1), _vector(1.0), monkeypatch, fast=True)
    _ray_run(out, FileStat("/data/a.jpg", 12, 2), _vector(-3.0), monkeypatch, fast=False)
    result = load_bulk_output(out)
    assert result.sources["vision"] == ["/data/a.jpg"]
    torch.testing.assert_close(result.vision[0], _vector(-3.0))


def test_given_bytes_are_identified_by_their_hash(tmp_path: Path) -> None:
    """Same path, same length, other bytes: not done, and the new record replaces the old."""
    out = tmp_path / "out"
    first = FileStat("mem://a.bmp", 6, None, content_digest(b"abcdef"))
    second = FileStat("mem://a.bmp", 6, None, content_digest(b"abcdeg"))
    _local_run(out, first, _vector(1.0))
    with BulkStore.open(out, CHECKPOINT, DIM, resume=True) as store:
        assert store.done(first, "vision") and not store.done(second, "vision")
    _local_run(out, second, _vector(-3.0))
    torch.testing.assert_close(load_bulk_output(out).vision[0], _vector(-3.0))


def test_one_path_with_two_contents_in_one_job_is_a_recorded_failure(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = FileStat("mem://a.bmp", 6, None, content_digest(b"abcdef"))
    b = FileStat("mem://a.bmp", 6, None, content_digest(b"abcdeg"))
    with BulkStore.open(out, CHECKPOINT, DIM, resume=True) as store:
        for stat, value in ((a, 1.0), (b, -3.0)):  # two workers of one job
            batch = records_table([(stat, "vision", _vector(value))], DIM)
            batch = batch.append_column("status", pa.array(["embedded"])).append_column("node", pa.array(["n"]))
            ray_write_stage(batch, out=str(out), info=store.info, run=store.run)
        store.refresh()
        assert load_bulk_output(out).skipped["vision"][0].error.endswith("give each input a unique path")
        (conflict,) = store.settle_conflicts()
        assert conflict.embedded == 2 and len(conflict.identities) == 2
        store.compact()
    result = load_bulk_output(out)
    assert "vision" not in result.sources
    (skipped,) = result.skipped["vision"]
    assert skipped.source == "mem://a.bmp" and "was given 2 times in one job with 2 different contents" in skipped.error
    assert len(part_files(out)) == 1  # both ambiguous rows were deleted, the failure kept
