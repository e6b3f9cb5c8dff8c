"""The search page (``imagebind-sdk app``): start-up, search latency, first paint, page weight.

1. Time from ``imagebind-sdk app ASSETS`` start to a searchable page (the browser shows
   the index as ready), cold (empty index folder) and warm (a second start: nothing to embed).
2. First contentful paint of the page after the server is ready (Chromium's paint timing),
   and the time until the page reports the index ready.
3. Search latency p50/p95 over 10k and 100k indexed vectors: in-process (``Catalog.search``,
   what ``POST /v1/search`` runs after embedding the query) at 1024-d, and over HTTP
   (``serve --index`` on a synthetic bulk output at the checkpoint's dimension) with
   id queries ("more like this", no model work) and text queries (the model embeds the text).
4. Page weight: bytes the browser downloads for the page, and (``--gradio-python``, a venv
   with gradio installed) the same for a minimal Gradio image->label demo.

    python benchmarks/app.py --checkpoint ../shared/golden/tiny --out /tmp/app.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

logger = logging.getLogger("benchmarks.app")
ASSETS = REPO.parent / "shared" / "assets"
QUERIES = 200


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in samples_s)
    return {"p50_ms": round(statistics.median(ms), 3), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3), "n": len(ms)}


def start(*args: str, checkpoint: str) -> tuple[subprocess.Popen, str, float]:
    """A server process; returns it, its URL and the monotonic time it was started."""
    from app.conftest import free_port

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "imagebind_sdk", *args, "--checkpoint", checkpoint,
                             "--port", str(port), "--log-level", "warning"], env=env)
    return proc, f"http://127.0.0.1:{port}", started


def wait_ready(proc: subprocess.Popen, url: str) -> float:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/.well-known/ready", timeout=1).status_code == 204:
                return time.monotonic()
        except httpx.TransportError:
            pass
        time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def page_ready_s(driver, url: str) -> float:
    """Seconds from navigation to the page saying the index is ready (searchable)."""
    t0 = time.monotonic()
    driver.get(url + "/")
    while not driver.execute_script("return document.body.dataset.ready === 'true'"):
        time.sleep(0.02)
    return time.monotonic() - t0


def startup(driver, checkpoint: str, work: Path) -> dict:
    """App start -> ready (204) -> page searchable, cold then warm on the same index folder."""
    out = {}
    for run in ("cold", "warm"):
        proc, url, started = start("app", str(ASSETS), "--index-dir", str(work / "index"), checkpoint=checkpoint)
        try:
            ready = wait_ready(proc, url)
            page = page_ready_s(driver, url)
            items = httpx.get(url + "/v1/app/status").json()["items"]
        finally:
            stop(proc)
        out[run] = {"server_ready_s": round(ready - started, 3), "page_searchable_s": round(ready - started + page, 3),
                    "items": items}
        logger.info("start-up %s: %s", run, out[run])
    return out


def first_paint(driver, url: str, runs: int = 5) -> dict:
    fcp, ready = [], []
    for _ in range(runs):
        driver.get("about:blank")  # a real navigation each time (a reload of the same URL may not paint anew)
        ready.append(page_ready_s(driver, url))
        paint = driver.execute_script(
            "const e = performance.getEntriesByName('first-contentful-paint')[0]; return e ? e.startTime : null")
        if paint is not None:
            fcp.append(paint)
    return {"first_contentful_paint_ms": round(statistics.median(fcp), 1) if fcp else None, "paints": len(fcp),
            "page_ready_ms": round(1000 * statistics.median(ready), 1), "runs": runs}


def page_bytes(driver, url: str) -> dict:
    """Bytes transferred for the page (navigation + every resource), from the browser's own timing."""
    driver.get("about:blank")
    driver.get(url + "/")
    time.sleep(3)
    return driver.execute_script("""
        const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
        return {requests: entries.length,
                transfer_bytes: entries.reduce((s, e) => s + (e.transferSize || 0), 0),
                body_bytes: entries.reduce((s, e) => s + (e.decodedBodySize || 0), 0),
                origins: [...new Set(entries.map(e => new URL(e.name).origin))]};""")


def synthetic_output(out: Path, n: int, dim: int, source: str) -> None:
    """A bulk output of ``n`` random unit vectors (half vision, half audio) under fake paths."""
    from imagebind_sdk.bulk.format import FileStat, checkpoint_identity
    from imagebind_sdk.bulk.store import BulkStore

    generator = torch.Generator().manual_seed(0)
    with BulkStore.open(out, checkpoint_identity(source), dim, resume=False) as store:
        for start_row in range(0, n, 10_000):
            rows = torch.nn.functional.normalize(torch.randn(min(10_000, n - start_row), dim, generator=generator), dim=-1)
            for kind, parity in (("vision", 0), ("audio", 1)):
                chosen = [(FileStat(f"/synthetic/{start_row + i:07d}.{kind}", 1, 1), rows[i])
                          for i in range(parity, len(rows), 2)]
                store.write_batch(kind, chosen)


def in_process_search(out: Path) -> dict:
    from imagebind_sdk.app.catalog import Catalog

    t0 = time.perf_counter()
    catalog = Catalog.load([out])
    load_s = time.perf_counter() - t0
    queries = torch.nn.functional.normalize(torch.randn(QUERIES, catalog.dim), dim=-1)
    result = {"load_s": round(load_s, 3)}
    times = []  # the floor: one matrix-vector product over the same rows, no top-k, no results
    for query in queries:
        t0 = time.perf_counter()
        torch.mv(catalog.index.embeddings, query)
        times.append(time.perf_counter() - t0)
    result["matmul_only"] = percentiles(times)
    for name, kinds in (("all", None), ("kinds=vision", ["vision"])):
        times = []
        for query in queries:
            t0 = time.perf_counter()
            catalog.search(query, 10, kinds)
            times.append(time.perf_counter() - t0)
        result[name] = percentiles(times)
    return result


def http_search(out: Path, checkpoint: str, n: int) -> dict:
    proc, url, started = start("serve", "--index", str(out), checkpoint=checkpoint)
    try:
        ready_s = wait_ready(proc, url) - started
        result = {"serve_index_ready_s": round(ready_s, 3)}
        with httpx.Client(base_url=url, timeout=120) as client:
            ids = torch.randint(0, n, (QUERIES,), generator=torch.Generator().manual_seed(1)).tolist()
            for name, bodies in (("id", [{"query": [{"id": i}], "top_k": 10} for i in ids]),
                                 ("text", [{"query": [{"text": f"a photo of thing {i}"}], "top_k": 10}
                                           for i in ids[:50]])):
                times = []
                for body in bodies:
                    t0 = time.perf_counter()
                    response = client.post("/v1/search", json=body)
                    times.append(time.perf_counter() - t0)
                    response.raise_for_status()
                result[name] = percentiles(times)
    finally:
        stop(proc)
    return result


def gradio_weight(driver, python: str) -> dict:
    """A minimal Gradio demo (image in, label out) in its own venv: the page's transferred bytes."""
    from app.conftest import free_port

    port = free_port()
    script = ("import gradio as gr\n"
              "gr.Interface(lambda im: {'dog': 1.0}, gr.Image(), gr.Label(), analytics_enabled=False).launch("
              f"server_port={port}, share=False)\n")
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([python, "-c", script], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"the Gradio demo exited with {proc.returncode}")
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        return page_bytes(driver, url)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def page_rows(driver, checkpoint: str, work: Path) -> dict:
    """Start-up (cold, warm), then first paint and page weight on a ready ``serve --index``."""
    rows = {"startup": startup(driver, checkpoint, work)}
    proc, url, _ = start("serve", "--index", str(work / "index"), checkpoint=checkpoint)
    try:
        wait_ready(proc, url)
        rows["first_paint"] = first_paint(driver, url)
        rows["page_weight"] = page_bytes(driver, url)
    finally:
        stop(proc)
    logger.info("first paint %s, weight %s", rows["first_paint"], rows["page_weight"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(REPO.parent / "shared" / "golden" / "tiny"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=1024, help="dimension of the in-process search rows")
    parser.add_argument("--gradio-python", default=None, help="python of a venv with gradio, for its page weight")
    parser.add_argument("--parts", nargs="+", default=["page", "gradio", "search"],
                        choices=["page", "gradio", "search"], help="which measurements to run (default: all)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from app.conftest import start_browser

    from imagebind_sdk.api import ImageBind

    model_dim = ImageBind.load(args.checkpoint, modalities=["text"]).embedding_dim
    results: dict = {"checkpoint": args.checkpoint, "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "page" in args.parts or "gradio" in args.parts:
            driver = start_browser(work / "profile")
            try:
                if "page" in args.parts:
                    results.update(page_rows(driver, args.checkpoint, work))
                if "gradio" in args.parts and args.gradio_python:
                    results["gradio_page_weight"] = gradio_weight(driver, args.gradio_python)
                    logger.info("gradio weight %s", results["gradio_page_weight"])
            finally:
                driver.quit()
        for n in args.sizes if "search" in args.parts else []:
            synthetic_output(work / f"wide-{n}", n, args.dim, args.checkpoint)
            synthetic_output(work / f"model-{n}", n, model_dim, args.checkpoint)
            results[f"search_{n}"] = {f"in_process_{args.dim}d": in_process_search(work / f"wide-{n}"),
                                      f"http_{model_dim}d": http_search(work / f"model-{n}", args.checkpoint, n)}
            logger.info("search %d: %s", n, results[f"search_{n}"])
    results["load_avg_end"] = os.getloadavg()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
