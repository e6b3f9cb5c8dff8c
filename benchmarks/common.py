"""Shared benchmark helpers. Standard library only: imported by both the SDK child and
the reference child (which runs in another virtual environment), before torch is."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ASSETS = Path(os.environ.get("IMAGEBIND_ASSETS", "/work/shared/assets"))
RESULT_MARKER = "@@BENCH_RESULT "
MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")

# Captions of 8-20 CLIP tokens each (start/end tokens included).
CAPTIONS = (
    "a golden retriever running across a grassy park",
    "a red sports car parked on a quiet city street at night",
    "a small bird singing on a branch in the early morning",
    "two children building a sandcastle on a sunny beach",
    "a steaming cup of coffee next to an open laptop",
    "an old wooden boat floating on a calm mountain lake",
    "a crowded train station during the evening rush hour",
    "a cat sleeping on a windowsill in the afternoon sun",
    "fresh vegetables and fruit piled high at a street market",
    "a jazz band playing on a dimly lit stage",
    "snow falling softly over a row of pine trees",
    "a chef slicing onions in a busy restaurant kitchen",
    "waves crashing against the rocks under a stormy sky",
    "a man riding a bicycle along a canal in amsterdam",
    "a dog barking at the mail carrier through the front door",
    "a helicopter flying low over a green valley",
)

# Input files per modality for the end-to-end rows (cycled to fill a batch).
FILES = {
    "vision": ("dog_image.jpg", "car_image.jpg", "bird_image.jpg"),
    "audio": ("dog_audio.wav", "car_audio.wav", "bird_audio.wav"),
    "depth": ("depth/010002.jpg", "depth/010003.jpg", "depth/010004.jpg"),
    "thermal": ("thermal/190001.jpg", "thermal/190002.jpg", "thermal/190003.jpg"),
    "imu": ("imu/imu1_2k.csv", "imu/imu3_4k.csv", "imu/imu6_1500.csv"),
}

# Model-only input shape of ONE item (audio: 3 clips per file, as both pipelines make).
ITEM_SHAPES = {
    "vision": (3, 224, 224),
    "audio": (3, 1, 128, 204),
    "depth": (1, 224, 224),
    "thermal": (1, 224, 224),
    "imu": (6, 2000),
}

# Contention: other processes using this share of all cores during a timed call.
CONTENTION = 0.15
MAX_DISCARDS = 6
MIN_WATCHED_S = 0.25
MIN_TOTAL_S = 2.0  # fast calls are repeated until they fill this many seconds...
MAX_RUNS = 50  # ...up to this many runs
IDLE_WAIT_S = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# The imagebind_huge preset, repeated from imagebind_sdk.model.config on purpose: the
# reference child runs in the reference's venv, where imagebind_sdk is not installed.
HUGE_OVERRIDES = dict(
    vision_embed_dim=1280,
    vision_num_blocks=32,
    vision_num_heads=16,
    text_embed_dim=1024,
    text_num_blocks=24,
    text_num_heads=16,
    out_embed_dim=1024,
)


def files_for(modality: str, count: int) -> list[str]:
    """``count`` asset paths for a modality, cycling through ``FILES``."""
    names = FILES[modality]
    return [str(ASSETS / names[i % len(names)]) for i in range(count)]


def texts_for(count: int) -> list[str]:
    return [CAPTIONS[i % len(CAPTIONS)] for i in range(count)]


def is_huge_config(config: dict[str, Any]) -> bool:
    """True when a checkpoint's config.json describes imagebind_huge."""
    return all(config.get(k) == v for k, v in HUGE_OVERRIDES.items())


def peak_rss_mb() -> float:
    """Peak resident set size of this process (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores from /proc/stat; (0, 0) if unavailable."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class CpuWatch:
    """Share of all cores used by OTHER processes (and the hypervisor's steal) between
    construction and ``other_busy()``: this process's own CPU time is subtracted."""

    def __init__(self) -> None:
        self.busy, self.total = _cpu_jiffies()
        self.own = time.process_time()
        self.wall = time.perf_counter()

    def own_util(self) -> float:
        """This process's CPU time / wall time (about the thread count when undisturbed)."""
        return (time.process_time() - self.own) / max(time.perf_counter() - self.wall, 1e-9)

    def other_busy(self) -> float:
        busy, total = _cpu_jiffies()
        if total <= self.total:
            return 0.0
        cores = os.cpu_count() or 1
        wall_jiffies = (total - self.total) / cores  # jiffies per core elapsed
        own_jiffies = (time.process_time() - self.own) * CLOCK_TICKS
        return max(0.0, (busy - self.busy - own_jiffies) / (wall_jiffies * cores))


def wait_until_idle(max_wait_s: float, threshold: float = CONTENTION) -> float:
    """Sleep until other processes use < ``threshold`` of the cores (at most ``max_wait_s``)."""
    waited, busy = 0.0, busy_fraction()
    while busy >= threshold and waited < max_wait_s:
        time.sleep(1.0)
        waited += 2.0
        busy = busy_fraction()
    return busy


def _enough(times: list[float], runs: int, budget_s: float) -> bool:
    """Stop at ``budget_s`` seconds (slow calls, >= 1 run); otherwise after ``runs``
    runs AND ``MIN_TOTAL_S`` seconds (fast calls get more runs), at most ``MAX_RUNS``."""
    total = sum(times)
    return total >= budget_s or (len(times) >= runs and total >= MIN_TOTAL_S) or len(times) >= MAX_RUNS


def time_calls(fn: Callable[[], Any], runs: int, budget_s: float, warmup: int = 1) -> dict[str, Any]:
    """``warmup`` untimed calls, then timed calls until ``_enough``: at least ``runs``
    unless one measurement already took ``budget_s`` seconds (then >= 1 run).

    A timed call during which other processes used >= ``CONTENTION`` of the cores is
    discarded and repeated after they go idle (at most ``MAX_DISCARDS`` times per
    measurement; after that contended calls are kept and counted in ``contended``).
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    utils: list[float] = []
    discarded, contended = 0, 0
    overall = CpuWatch()
    while True:
        watch = CpuWatch()
        fn()
        elapsed, other = time.perf_counter() - watch.wall, watch.other_busy()
        if elapsed < MIN_WATCHED_S:  # too short for /proc/stat's 10 ms ticks to tell
            other = 0.0
        if other >= CONTENTION and discarded < MAX_DISCARDS:
            discarded += 1
            wait_until_idle(IDLE_WAIT_S)
            continue
        contended += other >= CONTENTION
        times.append(elapsed)
        utils.append(watch.own_util())
        if _enough(times, runs, budget_s):
            break
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "runs": len(times),
        "warmup": warmup,
        "cpu_util": statistics.median(utils),
        "discarded": discarded,
        "contended": contended,
        "other_busy": overall.other_busy(),
    }


def e2e_warmup(batch: int) -> int:
    """End-to-end rows warm up at batch 1 only: larger batches follow the model-only
    rows at the same batch size (forward warm) and e2e batch 1 (decoders warm)."""
    return 1 if batch == 1 else 0


def busy_fraction(interval_s: float = 1.0) -> float:
    """Share of all cores busy over ``interval_s`` (from /proc/stat); 0 if unknown."""
    busy0, total0 = _cpu_jiffies()
    time.sleep(interval_s)
    busy1, total1 = _cpu_jiffies()
    if total1 <= total0:
        return 0.0
    return (busy1 - busy0) / (total1 - total0)


def emit(result: dict[str, Any]) -> None:
    """The child's single result line on stdout, parsed by the parent."""
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def cpu_info() -> dict[str, Any]:
    """CPU model and the SIMD flags that matter for float32/int8 GEMM."""
    model, flags = "", []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = sorted(f for f in value.split() if f == "avx2" or f.startswith(("avx512", "amx", "avx_vnni")))
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "cpu_flags": flags,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def _process_fields() -> dict[str, Any]:
    """What every child reports about itself: peak RSS and the torch it ran."""
    import torch

    return {"peak_rss_mb": peak_rss_mb(), "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__}


def startup_result(start: float, imported: float, loaded: float, done: float, watch: CpuWatch, **extra: Any) -> dict[str, Any]:
    """The start-up record both children return: phase durations, contention, peak RSS."""
    return {
        "import_s": imported - start,
        "load_s": loaded - imported,
        **extra,
        "first_forward_s": done - loaded,
        "end_wall": time.time(),
        "other_busy": watch.other_busy(),
        **_process_fields(),
    }


def throughput_result(
    forward: Callable[[Any], Any],
    make_input: Callable[[int], Any],
    e2e_call: Callable[[int], Callable[[], Any] | None],
    batches: list[int],
    runs: int,
    budget_s: float,
    load_s: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The throughput record both children return, and the batch-1 outputs for parity.

    Model-only rows time ``forward`` on ``make_input(batch)``; end-to-end rows time
    ``e2e_call(batch)`` (from files), stopping where it returns None (no loader).
    """
    rows, outputs = [], {}
    for batch in batches:
        x = make_input(batch)
        stats = time_calls(lambda: forward(x), runs, budget_s)
        rows.append({"mode": "model", "batch": batch, **stats, "items_per_s": batch / stats["median_s"]})
        outputs.setdefault("model", forward(x[:1]))
    for batch in batches:
        call = e2e_call(batch)
        if call is None:
            break
        stats = time_calls(call, runs, budget_s, warmup=e2e_warmup(batch))
        rows.append({"mode": "e2e", "batch": batch, **stats, "items_per_s": batch / stats["median_s"]})
        outputs.setdefault("e2e", e2e_call(1)())
    return {"rows": rows, "load_s": load_s, **_process_fields()}, outputs
