"""Worker process: load the tiny model once, run cases in order, one JSON line per event.

    python corpus_worker.py IDS_JSON TMP_DIR TINY_DIR ASSETS_DIR

Prints ``{"ready": baseline_kb}`` once the model is loaded and warmed up (every kind
embedded once, so lazy imports and allocator pools are in the baseline), then per case
``{"start": id}`` and ``{"id", "status", "detail", "peak_mb", "seconds"}``. The parent
kills it on a timeout or when its RSS passes the memory limit, and restarts it.
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from corpus_framework import Ctx, classify, reset_peak, status_kb, write_json_line  # noqa: E402


def warm_up(model) -> None:
    model.embed(
        text=["a dog"], vision=[np.zeros((20, 20, 3), np.uint8)], depth=[np.ones((20, 20), np.float32)],
        thermal=[np.zeros((20, 20), np.float32)], imu=[np.zeros((6, 50), np.float32)],
        audio=[(np.zeros(16000, np.float32), 16000)], video=[np.zeros((4, 16, 16, 3), np.uint8)],
        preprocess={"video": {"fps": 2}},
    )
    import av  # noqa: F401  (lazy decoders used by audio/video paths)
    import soundfile  # noqa: F401


def main() -> None:
    ids_file, tmp_root, tiny, assets = sys.argv[1:5]
    logging.basicConfig(level=logging.CRITICAL)  # skipped-item warnings would flood stderr
    from corpus_cases import all_cases
    from imagebind_sdk import ImageBind

    cases = all_cases()
    model = ImageBind.load(tiny, device="cpu")
    warm_up(model)
    gc.collect()
    baseline = status_kb("VmRSS")
    out = sys.stdout
    write_json_line(out, {"ready": baseline})
    for case_id in json.loads(Path(ids_file).read_text()):
        case = cases[case_id]
        tmp = Path(tmp_root) / case_id.replace("/", "__")
        tmp.mkdir(parents=True, exist_ok=True)
        ctx = Ctx(model=model, tmp=tmp, assets=Path(assets), tiny=Path(tiny))
        write_json_line(out, {"start": case_id})
        reset_peak()  # no gc.collect() here: 0.3 s a case with torch loaded
        started = time.perf_counter()
        try:
            record = classify(case, ctx, value=case.run(ctx))
        except BaseException as exc:  # noqa: BLE001 - classifying every outcome is the point
            if isinstance(exc, KeyboardInterrupt):
                raise
            record = classify(case, ctx, exc=exc)
        seconds = time.perf_counter() - started
        peak_mb = max(0, status_kb("VmHWM") - baseline) / 1024
        record.update(id=case_id, peak_mb=round(peak_mb, 1), seconds=round(seconds, 3))
        write_json_line(out, record)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
