"""Parent side: run cases in a worker subprocess with per-case timeouts and an RSS watchdog.

A case that passes its timeout is ``hang``; one whose worker RSS exceeds the baseline by
more than ``MEMORY_LIMIT_MB`` (polled every ``POLL_S``, and the case's own peak RSS) is
``memory``; a worker that dies mid-case is ``crash``. The worker is then killed and a
fresh one continues with the next case.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

from corpus_framework import MEMORY_LIMIT_MB, status_kb

logger = logging.getLogger(__name__)

WORKER = Path(__file__).resolve().parent / "corpus_worker.py"
POLL_S = 0.02
STARTUP_TIMEOUT_S = 180.0


class Worker:
    """One worker process and its line-buffered stdout."""

    def __init__(self, ids: list[str], tmp: Path, tiny: Path, assets: Path, stderr_path: Path) -> None:
        ids_file = tmp / f"ids_{time.monotonic_ns()}.json"
        ids_file.write_text(json.dumps(ids))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
               "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        self._stderr = open(stderr_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(ids_file), str(tmp / "work"), str(tiny), str(assets)],
            stdout=subprocess.PIPE, stderr=self._stderr, env=env,
        )
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)

    def lines(self, timeout: float) -> list[dict] | None:
        """Complete JSON lines available within ``timeout`` ([] if none); None at EOF."""
        if not self._selector.select(timeout):
            return []
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return None
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in complete if line.strip()]

    def rss_kb(self) -> int:
        return status_kb("VmRSS", self.proc.pid)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._selector.close()
        self.proc.stdout.close()
        self._stderr.close()


def _wait_ready(worker: Worker) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        lines = worker.lines(0.5)
        if lines is None:
            raise RuntimeError(f"corpus worker exited during startup (rc={worker.proc.wait()})")
        for line in lines:
            if "ready" in line:
                return int(line["ready"])
    raise RuntimeError("corpus worker did not start in time")


def _run_some(worker: Worker, timeouts: dict[str, float], kinds: dict[str, str], results: dict[str, dict]) -> bool:
    """Collect results until the worker finishes (True) or must be replaced (False)."""
    baseline = _wait_ready(worker)
    current, deadline = None, 0.0
    while True:
        lines = worker.lines(POLL_S)
        if lines is None:
            if current is not None:
                results[current] = {"id": current, "status": "crash",
                                    "detail": f"worker died (exit {worker.proc.wait()})", "peak_mb": 0, "seconds": 0}
            return current is None
        for line in lines:
            if "start" in line:
                current, deadline = line["start"], time.monotonic() + timeouts[line["start"]]
            elif "id" in line:
                if line["peak_mb"] > MEMORY_LIMIT_MB and line["status"] != "memory":
                    line["detail"] = f"{line['peak_mb']:.0f} MB above baseline ({line['status']}: {line['detail']})"
                    line["status"] = "memory"
                results[line["id"]], current = line, None
        if current is None:
            continue
        above_mb = (worker.rss_kb() - baseline) / 1024
        if above_mb > MEMORY_LIMIT_MB:
            results[current] = {"id": current, "status": "memory", "seconds": 0,
                                "detail": f"killed at {above_mb:.0f} MB above baseline", "peak_mb": round(above_mb)}
            return False
        if time.monotonic() > deadline:
            results[current] = {"id": current, "status": "hang", "peak_mb": round(max(above_mb, 0)),
                                "detail": f"no result within {timeouts[current]:.0f} s", "seconds": timeouts[current]}
            return False


def run_cases(cases: Iterable, tmp: Path, tiny: Path, assets: Path) -> dict[str, dict]:
    """Run every case; returns id -> record with ``status``, ``detail``, ``peak_mb``, ``seconds``, ``kind``."""
    cases = list(cases)
    timeouts = {c.id: c.timeout for c in cases}
    kinds = {c.id: c.kind for c in cases}
    results: dict[str, dict] = {}
    pending = [c.id for c in cases]
    while pending:
        worker = Worker(pending, tmp, tiny, assets, tmp / "worker_stderr.log")
        try:
            _run_some(worker, timeouts, kinds, results)
        finally:
            worker.kill()
        remaining = [i for i in pending if i not in results]
        if len(remaining) == len(pending):
            raise RuntimeError("corpus worker made no progress; see worker_stderr.log")
        pending = remaining
    for case_id, record in results.items():
        record["kind"] = kinds[case_id]
    return results
