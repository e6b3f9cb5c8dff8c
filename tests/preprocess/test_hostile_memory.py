"""Small hostile inputs do not become gigabytes: each decode adds under 300 MB of peak memory.

Each file is generated here (all under 1 MB) and decoded in a worker process that
first warms up on a tiny input of the same kind, then resets its peak RSS (VmHWM)
and decodes the hostile one. The parent watches the worker's RSS and kills it (its own
child, by pid) as soon as it passes the bound, so the old behaviour (3-5 GB) fails fast
instead of exhausting the machine; the next case starts a new worker.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

import hostile_media as media
from imagebind_sdk.preprocess import video

BOUND_MB = 300  # the goal: no input under 1 MB raises memory by more than this
pytestmark = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to measure RSS")

# One worker decodes the cases in turn (interpreter and torch start once). Before each case
# it warms up on a tiny input of the kind, sets its peak (VmHWM) to its current RSS and says
# "start <rss kB>"; after it, one JSON line. Large buffers are mmapped and given back on free,
# so a case's peak is measured from the RSS the previous one left.
WORKER = r"""
import json, sys
from imagebind_sdk.preprocess import PREPROCESSORS
from imagebind_sdk.preprocess.sources import InputError

def status_kb(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

for line in sys.stdin:
    kind, path, warm = line.rstrip("\n").split("\t")
    PREPROCESSORS[kind](warm)  # lazy imports and first-call buffers
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    base = status_kb("VmRSS")
    print("start", base, flush=True)
    try:
        result = list(PREPROCESSORS[kind](path).shape)
    except InputError as exc:
        result = "InputError: " + str(exc)
    print(json.dumps({"added_mb": (status_kb("VmHWM") - base) / 1024, "result": result}), flush=True)
"""


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
    except OSError:
        return 0


class Worker:
    """The worker process and a thread reading its output lines (so the parent can poll RSS)."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(x) for x in self.proc.stdout], daemon=True).start()

    def decode(self, kind: str, path: Path, warm: Path) -> dict:
        """The case's JSON line, or {"over": MB} when the watchdog stopped it."""
        self.proc.stdin.write(f"{kind}\t{path}\t{warm}\n")
        self.proc.stdin.flush()
        base = int(self._line(180).split()[1])
        started = time.monotonic()
        while time.monotonic() - started < 120:
            above = (_rss_kb(self.proc.pid) - base) / 1024
            if above >= BOUND_MB:
                self.stop()  # our own child, by its pid: the old code went on to 3-5 GB
                return {"over": round(above)}
            try:
                return json.loads(self.lines.get(timeout=0.01))
            except queue.Empty:
                continue
        self.stop()
        return {"hang": True}

    def _line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the worker said nothing in {timeout} s (exit code {self.proc.poll()})") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def worker():
    holder = [Worker()]

    def decode(kind: str, path: Path, warm: Path) -> dict:
        if holder[0].proc.poll() is not None:  # stopped by the watchdog on an earlier case
            holder[0] = Worker()
        return holder[0].decode(kind, path, warm)

    yield decode
    holder[0].stop()


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("warm")
    return {
        "video": media.one_frame_video(folder / "warm.mp4", 32),
        "image": media.palette_png(folder / "warm.png", 32),
        "audio": media.wav_declaring_rate(folder / "warm.wav", 16000, 16000),
    }


CASES: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    # id: (kind, builder, what must happen: "accepted", or refused naming the limit to raise)
    "video-8192sq-h264": ("video", lambda p: media.one_frame_video(p / "big.mp4", 8192), "video.MAX_VIDEO_PIXELS"),
    "video-4096x2304-at-limit": ("video", lambda p: media.one_frame_video(p / "dci.mp4", 4096, height=2304), "accepted"),
    "depth-13000sq-palette-png": ("depth", lambda p: media.palette_png(p / "bomb.png", 13000), "image.MAX_MAP_PIXELS"),
    "vision-13000sq-palette-png": ("vision", lambda p: media.palette_png(p / "bomb.png", 13000), "image.MAX_PIXELS"),
    "depth-4096sq-16bit-png": ("depth", lambda p: media.depth_png_16bit(p / "depth16.png", 4096), "accepted"),
    "audio-wav-1hz-32000-samples": ("audio", lambda p: media.wav_declaring_rate(p / "slow.wav", 1, 32000), "accepted"),
    "audio-3min-8ch-flac-mkv-no-duration": (
        "audio", lambda p: media.flac_in_matroska_without_duration(p / "long.mkv", 180), "accepted"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_small_input_stays_under_the_memory_bound(case: str, tmp_path: Path, warm: dict[str, Path], worker) -> None:
    kind, build, expected = CASES[case]
    path = build(tmp_path)
    assert path.stat().st_size < 1_000_000
    got = worker(kind, path, warm["image" if kind in ("depth", "vision") else kind])
    assert "added_mb" in got and got["added_mb"] < BOUND_MB, f"{case}: {got}"
    if expected == "accepted":
        assert isinstance(got["result"], list), got
    else:
        assert str(got["result"]).startswith("InputError") and f"preprocess.{expected} to allow" in got["result"], got


def test_video_item_size_is_known_before_decoding(warm: dict[str, Path]) -> None:
    """Whatever a video holds (here one 32x32 frame), its model input has the one fixed size."""
    from imagebind_sdk.preprocess import item_nbytes

    expected = item_nbytes("video")
    assert expected == 4 * 15 * 3 * 2 * 224 * 224  # 18 MB: what a server budgets per video item
    assert video.preprocess(warm["video"]).nbytes == expected
