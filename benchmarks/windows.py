"""Windowed embedding of long recordings: peak memory and windows/s (issue 12).

    python benchmarks/windows.py [--workdir /tmp/ibwin] [--video-fps 10] [--huge /work/ib-huge]

Generates a 2-hour 16 kHz mono WAV and a 1-hour 640x360 H.264 video (once, in
--workdir), then runs each case in a fresh process: load the model, note its RSS,
run ``embed_windows`` and report windows/s and the peak RSS above the loaded model
(``ru_maxrss`` after the run minus the RSS after loading). The overlap rows run the
same input with ``prefetch=False`` (decode in the calling thread) and ``True``
(background decoder), one after the other in one process. Prints one JSON line per
case and writes them to benchmarks/results/windows.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TINY = Path(os.environ.get("IMAGEBIND_GOLDEN", "/work/shared/golden")) / "tiny"


def make_wav(path: Path, seconds: int) -> None:
    import numpy as np
    import soundfile

    rate, block = 16000, 600
    rng = np.random.default_rng(0)
    with soundfile.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        for start in range(0, seconds, block):  # written in blocks: the generator stays small too
            t = np.arange(block * rate) / rate + start
            f.write((0.1 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))


def make_video(path: Path, seconds: int, fps: int) -> None:
    import av
    import numpy as np

    width, height = 640, 360
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps * 2)}
        for t in range(seconds * fps):
            rgb = np.stack([(x + 7 * t) % 256, (y + 3 * t) % 256, (x + y + t) % 256], -1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(checkpoint: str, modalities: list[str], kind: str, path: str, overlap: bool) -> dict:
    """One case in this (fresh) process."""
    from imagebind_sdk import ImageBind

    model = ImageBind.load(checkpoint, modalities=modalities, device="cpu")
    base = rss_mb()
    runs = {}
    for prefetch in ((False, True) if overlap else (True,)):
        start = time.perf_counter()
        out = model.embed_windows(**{kind: path}, prefetch=prefetch, progress=False)
        seconds = time.perf_counter() - start
        runs["prefetch" if prefetch else "inline"] = {"windows": len(out[0]), "seconds": round(seconds, 1),
                                                      "windows_per_s": round(len(out[0]) / seconds, 1)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"checkpoint": Path(checkpoint).name, "kind": kind, "file": Path(path).name,
            "model_rss_mb": round(base), "peak_above_model_mb": round(peak - base), **runs}


def run_case(*args: str) -> dict:
    env = {**os.environ, "MKL_CBWR": "COMPATIBLE"}
    res = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", default="/tmp/ibwin")
    parser.add_argument("--video-fps", type=int, default=10)
    parser.add_argument("--huge", default="/work/ib-huge")
    parser.add_argument("--only", nargs="*", default=None, help="case names to run")
    parser.add_argument("--child", nargs=5, metavar=("CKPT", "MODALITIES", "KIND", "PATH", "OVERLAP"))
    args = parser.parse_args()
    if args.child:
        ckpt, mods, kind, path, overlap = args.child
        print(json.dumps(child(ckpt, mods.split(","), kind, path, overlap == "1")))
        return
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    files = {"wav2h": (work / "talk_2h_16k.wav", lambda p: make_wav(p, 7200)),
             "wav20m": (work / "talk_20m_16k.wav", lambda p: make_wav(p, 1200)),
             "video1h": (work / f"video_1h_640x360_{args.video_fps}fps.mp4", lambda p: make_video(p, 3600, args.video_fps)),
             "video5m": (work / f"video_5m_640x360_{args.video_fps}fps.mp4", lambda p: make_video(p, 300, args.video_fps))}
    cases = {
        "tiny_audio_2h": (str(TINY), "audio", "audio", "wav2h", "0"),
        "tiny_video_1h": (str(TINY), "vision", "video", "video1h", "0"),
        "tiny_audio_overlap": (str(TINY), "audio", "audio", "wav20m", "1"),
        "tiny_video_overlap": (str(TINY), "vision", "video", "video5m", "1"),
        "huge_audio_2h": (args.huge, "audio", "audio", "wav2h", "0"),
    }
    results = []
    for name, (ckpt, mods, kind, key, overlap) in cases.items():
        if args.only and name not in args.only:
            continue
        path, make = files[key]
        if not path.exists():
            make(path)
        row = {"case": name, **run_case(ckpt, mods, kind, str(path), overlap)}
        print(json.dumps(row), flush=True)
        results.append(row)
    out = HERE / "results" / "windows.json"
    previous = {r["case"]: r for r in json.loads(out.read_text())} if out.exists() else {}
    previous.update({r["case"]: r for r in results})
    out.write_text(json.dumps(list(previous.values()), indent=1) + "\n")


if __name__ == "__main__":
    main()
