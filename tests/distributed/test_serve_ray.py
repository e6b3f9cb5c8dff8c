"""`imagebind-sdk serve --engine ray` and `serve run imagebind_sdk.server.ray:app` on two `ray start` nodes.

One cluster for the module (two nodes, each its own process group, stopped by that group's
PID). The server is a real process; clients are real httpx clients on the Serve port. The
replica PIDs the kill test signals come from this cluster's own actor table (a watcher
driver in a subprocess), and are checked to descend from this test process first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from .conftest import NO_TOKEN, REPO, Cluster, free_port, node_pair, started_by_this_test

pytest.importorskip("ray.serve", reason='needs Ray Serve: pip install "imagebind-sdk[distributed]"')
pytest.importorskip("fastapi", reason='pip install "imagebind-sdk[serve]"')
httpx = pytest.importorskip("httpx", reason="pip install httpx")

REPLICA_CLASS = "ServeReplica:imagebind:ImageBind"  # Serve's actor class: application "imagebind", deployment
START_TIMEOUT_S = 120.0
# Autoscaling metrics every half second instead of Ray's 10 s, so scaling shows within seconds.
FAST_METRICS = {"RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
                "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5"}

# A driver of this cluster that prints, twice a second, the Serve replicas of the model as one
# JSON line: [{"pid", "node", "state"}]. Ray keeps per-process state, so it runs apart.
WATCHER = """
import json, sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
from ray._private import state
while True:
    actors = [a for a in state.actors().values() if a.get("ActorClassName") == sys.argv[2]]
    print(json.dumps([{"pid": a["Pid"], "node": a["Address"]["NodeID"], "state": a["State"]} for a in actors]),
          flush=True)
    time.sleep(0.5)
"""


def environment() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"), RAY_USAGE_STATS_ENABLED="0",
                **NO_TOKEN)


class Process:
    """A command of this test, its output in a file; ``stop`` signals it (this Popen's PID only)."""

    def __init__(self, command: list[str], cluster: Cluster) -> None:
        self.cluster = cluster
        self.log = Path(tempfile.mkstemp(prefix="proc_", suffix=".log", dir=cluster.temp_dir)[1])
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment())

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def failure(self, why: str) -> str:
        return f"{why}\n--- {self.log.name}:\n{self.text()[-4000:]}\n{self.cluster.logs_tail()}"

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(self.failure(f"{what} (rc={self.proc.returncode})"))
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Watcher(Process):
    def replicas(self, state: str = "ALIVE") -> list[dict[str, Any]]:
        lines = [line for line in self.text().splitlines() if line.startswith("[")]
        return [a for a in json.loads(lines[-1]) if a["state"] == state] if lines else []


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    with node_pair(2, env=FAST_METRICS) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()  # Serve's proxy is one per cluster: every test of the module uses its port


@pytest.fixture(scope="module")
def watcher(cluster: Cluster) -> Watcher:
    proc = Watcher([sys.executable, "-c", WATCHER, cluster.address, REPLICA_CLASS], cluster)
    yield proc
    proc.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def server(cluster: Cluster, port: int, tiny_dir: Path) -> Process:
    """`serve --engine ray --replicas 2`; ready once it logs its URL (every replica loaded)."""
    command = [sys.executable, "-m", "imagebind_sdk", "serve", "--engine", "ray", "--ray-address", cluster.address,
               "--replicas", "2", "--checkpoint", str(tiny_dir), "--port", str(port), "--max-wait-ms", "5",
               "--workers-preprocess", "1", "--max-request-mb", "1", "--max-inflight-mb", "64",
               "--log-level", "warning"]
    proc = Process(command, cluster)
    started = time.monotonic()
    proc.wait_for(lambda: "serving on http://" in proc.text(), "the Ray server did not start")
    print(f"Ray server ready in {time.monotonic() - started:.1f} s")  # noqa: T201 - a measured figure
    yield proc
    proc.stop()


def close(got: Any, ref: torch.Tensor, tol: float = 1e-5) -> bool:
    got = torch.tensor(got, dtype=torch.float32)
    return got.shape == ref.shape and float((got - ref).abs().max()) <= tol * max(1.0, float(ref.abs().max()))


def b64(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode("ascii")


class Load:
    """``clients`` threads posting ``body`` to ``url`` until ``stop()``; ``responses`` in order of arrival."""

    def __init__(self, url: str, body: dict, clients: int) -> None:
        self.responses: list[httpx.Response] = []
        self._stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(url, body), daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _client(self, url: str, body: dict) -> None:
        with httpx.Client(timeout=60) as c:
            while not self._stopping.is_set():
                self.responses.append(c.post(url, json=body))

    def stop(self) -> list[httpx.Response]:
        self._stopping.set()
        for t in self.threads:
            t.join(timeout=90)
        return self.responses


def test_two_replicas_serve_on_both_nodes(server: Process, port: int, cluster: Cluster) -> None:
    load = Load(f"http://127.0.0.1:{port}/v1/embed", {"text": ["a dog"]}, 4)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len({r.headers.get("x-imagebind-node") for r in list(load.responses)}) < 2:
        time.sleep(0.2)
    responses = load.stop()
    assert responses and all(r.status_code == 200 for r in responses), server.failure(str(responses[:3]))
    replicas = Counter(r.headers["x-imagebind-replica"] for r in responses)
    nodes = {r.headers["x-imagebind-node"] for r in responses}
    assert len(replicas) == 2 and len(nodes) == 2, server.failure(f"replicas {replicas}, nodes {nodes}")


def test_answers_equal_the_single_process_model(server: Process, port: int, tiny_model: Any,
                                                assets_dir: Path) -> None:
    dog, car, bark = assets_dir / "dog_image.jpg", assets_dir / "car_image.jpg", assets_dir / "dog_audio.wav"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
        body = c.post("/v1/embed", json={"text": ["a dog", "a car"], "vision": [{"b64": b64(dog)}, b64(car)],
                                         "audio": [{"b64": b64(bark)}]}).json()
        ref = tiny_model.embed(text=["a dog", "a car"], vision=[dog, car], audio=[bark])
        for kind in ("text", "vision", "audio"):
            assert close(body["embeddings"][kind], ref[kind]), kind
        with open(dog, "rb") as f:  # multipart: the body and its content type cross the gateway as sent
            multipart = c.post("/v1/embed", data={"text": "a dog"}, files=[("vision", ("dog.jpg", f, "image/jpeg"))])
        assert close(multipart.json()["embeddings"]["vision"], ref.vision[:1])
        raw = c.post("/vectorize", json={"texts": ["a dog"], "images": [b64(dog)]}).json()
        ref_raw = tiny_model.embed(text=["a dog"], vision=[dog], normalize=False)
        assert close(raw["textVectors"], ref_raw.text) and close(raw["imageVectors"], ref_raw.vision)
        openai = c.post("/v1/embeddings", json={"input": ["a dog", "a car"], "model": "tiny"}).json()
        assert close([d["embedding"] for d in openai["data"]], ref.text)
        assert c.get("/.well-known/live").status_code == 204 and c.get("/.well-known/ready").status_code == 204
        assert c.get("/meta").json()["model"]["source"] == "tiny"
        big = c.post("/v1/embeddings", content=b"x" * (2 * 2**20), headers={"Content-Type": "application/json"})
        assert big.status_code == 413 and "--max-request-mb" in big.json()["error"]["message"]  # OpenAI's shape
        bad = c.post("/v1/embed", json={"vision": ["not base64!"]})
        assert bad.status_code == 400 and "vision[0]" in bad.json()["error"]


def test_a_replica_killed_under_load_loses_no_request(server: Process, port: int, watcher: Watcher,
                                                      tiny_model: Any, assets_dir: Path) -> None:
    dog = assets_dir / "dog_image.jpg"
    ref = tiny_model.embed(text=["a dog barks"], vision=[dog])
    watcher.wait_for(lambda: len(watcher.replicas()) == 2, "the watcher did not see two replicas", timeout=60)
    load = Load(f"http://127.0.0.1:{port}/v1/embed", {"text": ["a dog barks"], "vision": [b64(dog)]}, 8)
    time.sleep(2)
    victim = watcher.replicas()[0]["pid"]
    assert started_by_this_test(victim), f"PID {victim} is not a process of this test's cluster"
    before = len(load.responses)
    os.kill(victim, signal.SIGKILL)
    time.sleep(5)
    responses = load.stop()
    statuses = Counter(r.status_code for r in responses)
    print(f"kill test: {dict(statuses)}, {len(responses) - before} after the kill")  # noqa: T201 - figures
    assert set(statuses) <= {200, 503}, server.failure(f"statuses {statuses}")
    for r in responses:
        if r.status_code == 503:
            assert r.headers.get("retry-after"), r.text
        else:
            body = r.json()["embeddings"]
            assert close(body["text"], ref.text) and close(body["vision"], ref.vision), "a wrong vector"
    assert statuses[200] > before and len(responses) > before + 8, "the server stopped answering after the kill"
    assert "a replica failed under" in server.text(), server.failure("no request was retried: none was in flight?")


def test_autoscale_up_under_load_and_down_when_idle(server: Process, cluster: Cluster, port: int,
                                                   watcher: Watcher, tiny_dir: Path, tmp_path: Path) -> None:
    assert server.stop() == 0, server.failure("the CLI did not stop cleanly on SIGTERM")
    watcher.wait_for(lambda: not watcher.replicas(), "the CLI's replicas were not deleted", timeout=60)
    config = tmp_path / "serve.yaml"
    autoscale = {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1, "upscale_delay_s": 0.5,
                 "downscale_delay_s": 2, "look_back_period_s": 1}
    app = {"name": "imagebind", "route_prefix": "/", "import_path": "imagebind_sdk.server.ray:app",
           "args": {"checkpoint": str(tiny_dir), "max_wait_ms": 5, "workers_preprocess": 1, "autoscale": autoscale}}
    config.write_text(json.dumps({"http_options": {"host": "127.0.0.1", "port": port}, "applications": [app]}))
    run = Process(["serve", "run", "--address", cluster.address, str(config)], cluster)  # YAML is a superset of JSON
    try:
        run.wait_for(lambda: len(watcher.replicas()) == 1 and _ready(port), "serve run did not start")
        load = Load(f"http://127.0.0.1:{port}/v1/embed", {"text": ["a dog"]}, 8)
        run.wait_for(lambda: len(watcher.replicas()) == 2, "no scale-up to 2 replicas under load", timeout=60)
        responses = load.stop()
        assert {r.status_code for r in responses} == {200}, run.failure(str(Counter(r.status_code for r in responses)))
        run.wait_for(lambda: len(watcher.replicas()) == 1, "no scale-down to 1 replica when idle", timeout=60)
    finally:
        run.stop(signal.SIGINT)  # serve run deletes its applications on Ctrl-C


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/.well-known/ready", timeout=2).status_code == 204
    except httpx.TransportError:
        return False
