"""A thread pool whose threads never keep the process alive.

``concurrent.futures.ThreadPoolExecutor`` threads are joined when the interpreter exits,
so one decoder busy on a hostile file kept a stopped server alive for minutes after
"Finished server process". These threads are daemons: the server stops when its
requests are drained or cancelled, whatever a decoder is still doing.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Executor, Future
from typing import Any, Callable

_STOP = None  # the sentinel a worker exits on
IDLE_EXIT_S = 1.0  # how long shutdown(wait=False) waits for idle threads to end


class DaemonThreadPool(Executor):
    """``submit(fn, *args)`` on ``workers`` daemon threads; ``shutdown`` never waits for a busy one
    unless asked to."""

    def __init__(self, workers: int, name: str) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            future: Future = Future()
            self._tasks.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is _STOP:
                return
            future, fn, args, kwargs = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the future
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
        if cancel_futures:  # drop what no thread has started
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if task is not _STOP:
                    task[0].cancel()
        for _ in self._threads:
            self._tasks.put(_STOP)
        # Idle threads end at once; let them, so that none is still exiting (and tearing
        # down its torch thread state) while the interpreter finalises: that raced into
        # "terminate called without an active exception". A busy one is left behind.
        deadline = None if wait else time.monotonic() + IDLE_EXIT_S
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
