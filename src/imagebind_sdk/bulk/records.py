"""Which of a path's records in an output folder is current, without trusting any clock.

Each part file's metadata says which job wrote it: ``run`` is a number the job's driver
takes when it opens the folder (one more than any run found there), so a later job's
records win whatever the clocks of the nodes that wrote them say (a node 5 minutes fast
once made an old vector outlive the file's new one, every run). ``final`` marks the
driver's own verdicts written after its workers (e.g. a path given twice with different
contents), and ``written_ns`` only orders records of one run that have the same content.
Parts of older versions carry no ``run``: they count as run 0.

Within one run a path should appear once. A path recorded in one run with different
contents (a Ray dataset holding the same path twice with other bytes) is a *conflict*:
no record of it is trusted, and the driver records the path as failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Conflict", "CurrentRecords", "part_order", "record_identity"]

Stamp = tuple[int, int, int, str]  # run, final, written_ns, part name


def part_order(meta: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(run, final, written_ns)`` of a part's metadata; ValueError when a field is malformed."""
    run, final, written = meta.get("run", 0), meta.get("final", False), meta.get("written_ns", 0)
    if isinstance(run, bool) or not isinstance(run, int) or run < 0:
        raise ValueError(f"run must be a non-negative integer, got {run!r}")
    if not isinstance(final, bool) or isinstance(written, bool) or not isinstance(written, int):
        raise ValueError(f"final must be a bool and written_ns an integer, got {final!r}, {written!r}")
    return run, int(final), written


def record_identity(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a record says it embedded: kind, size, mtime and (for bytes) the content hash."""
    return record["kind"], record["size"], record["mtime_ns"], record.get("content_hash")


class Conflict:
    """A path recorded more than once in one run with different contents."""

    def __init__(self, path: str, kind: str, run: int) -> None:
        self.path, self.kind, self.run = path, kind, run
        self.identities: set[tuple[Any, ...]] = set()
        self.embedded = 0
        self.failed = 0

    @property
    def message(self) -> str:
        return (f"ValueError: {self.path} was given {self.embedded + self.failed} times in one job with "
                f"{len(self.identities)} different contents; give each input a unique path")


class CurrentRecords:
    """Path -> its current record, fed every row of every part (in any order).

    ``offer`` answers ``"new"`` (the row is now the path's record), ``"window"`` (one more
    row of the current record: the next window of the same file in the same part) or
    ``None`` (superseded).
    """

    def __init__(self) -> None:
        self._stamps: dict[str, Stamp] = {}
        self._runs: dict[str, Conflict] = {}  # per path: what its newest run recorded

    def offer(self, path: str, stamp: Stamp, record: Mapping[str, Any], windowed: bool) -> str | None:
        self._note_run(path, stamp, record)
        current = self._stamps.get(path)
        if current is not None and current > stamp:
            return None
        if windowed and current == stamp:
            return "window"
        self._stamps[path] = stamp
        return "new"

    def _note_run(self, path: str, stamp: Stamp, record: Mapping[str, Any]) -> None:
        run, final = stamp[0], stamp[1]
        if final:
            return
        seen = self._runs.get(path)
        if seen is None or seen.run < run:
            seen = self._runs[path] = Conflict(path, record["kind"], run)
        if seen.run == run:
            seen.identities.add(record_identity(record))
            if record.get("error") is None:
                seen.embedded += 1
            else:
                seen.failed += 1

    def conflicts(self, run: int | None = None) -> list[Conflict]:
        """Paths whose newest run (``run`` only, if given) recorded different contents, with no
        final verdict after it."""
        return [c for path, c in sorted(self._runs.items())
                if len(c.identities) > 1 and (run is None or c.run == run) and self._stamps[path][:2] == (c.run, 0)]
