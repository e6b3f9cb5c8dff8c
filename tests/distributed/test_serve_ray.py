"""`imagebind-sdk serve --engine ray` and `serve run imagebind_sdk.server.ray:app` on two `ray start` nodes.

One cluster for the module (two nodes, each its own process group, stopped by that group's
PID). The server is a real process; clients are real httpx clients on the Serve port. The
replica PIDs the kill test signals come from this cluster's own actor table (a watcher
driver in a subprocess), and are checked to descend from this test process first.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from .conftest import NO_TOKEN, REPO, Cluster, free_port, node_pair, started_by_this_test

pytest.importorskip("ray.serve", reason='needs Ray Serve: pip install "imagebind-sdk[distributed]"')
pytest.importorskip("fastapi", reason='pip install "imagebind-sdk[serve]"')
httpx = pytest.importorskip("httpx", reason="pip install httpx")

CLI_APP, CONFIG_APP = "imagebind", "imagebind-auto"  # Serve applications: the CLI's, and `serve run`'s at /auto
START_TIMEOUT_S = 120.0

# A driver of this cluster that prints, twice a second, one JSON line: the model replicas' actors
# of every Serve application ({"class", "pid", "node", "state"}) and, from `serve.status()`, the
# replica states of each application's model deployment (e.g. {"RUNNING": 2, "STARTING": 1}).
# Ray keeps per-process state, so it runs apart.
WATCHER = """
import json, sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
from ray import serve
from ray._private import state
while True:
    actors = [a for a in state.actors().values() if a.get("ActorClassName", "").endswith(":ImageBind")]
    try:
        apps = serve.status().applications
    except Exception:  # Serve not started yet
        apps = {}
    replicas = {name: {str(k): v for k, v in app.deployments["ImageBind"].replica_states.items()}
                for name, app in apps.items() if "ImageBind" in app.deployments}
    print(json.dumps({"actors": [{"class": a["ActorClassName"], "pid": a["Pid"], "node": a["Address"]["NodeID"],
                                  "state": a["State"]} for a in actors], "replicas": replicas}), flush=True)
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
        """``why``, then the ends of this process's output, Serve's controller log and the nodes' logs."""
        controller = sorted(Path(self.cluster.temp_dir).glob("session_*/logs/serve/controller_*.log"))
        serve_log = "".join(f"--- {p.name}:\n{p.read_text(errors='replace')[-3000:]}\n" for p in controller)
        return f"{why}\n--- {self.log.name}:\n{self.text()[-4000:]}\n{serve_log}{self.cluster.logs_tail()}"

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(self.failure(f"{what} (rc={self.proc.returncode})"))
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """``sig`` to this process (SIGKILL after ``timeout``); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Watcher(Process):
    def _last(self) -> dict[str, Any]:
        lines = [line for line in self.text().splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {"actors": [], "replicas": {}}

    def actors(self, app: str = CLI_APP, state: str = "ALIVE") -> list[dict[str, Any]]:
        """The model replicas' actors of ``app`` in ``state`` (Serve's actor class is ``ServeReplica:APP:DEPLOYMENT``)."""
        return [a for a in self._last()["actors"] if a["class"] == f"ServeReplica:{app}:ImageBind" and a["state"] == state]

    def running(self, app: str) -> int:
        """The model replicas of ``app`` that Serve reports RUNNING (started, not stopping)."""
        return self._last()["replicas"].get(app, {}).get("RUNNING", 0)


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    with node_pair(2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()  # Serve's proxy is one per cluster: every test of the module uses its port


@pytest.fixture(scope="module")
def watcher(cluster: Cluster) -> Watcher:
    proc = Watcher([sys.executable, "-c", WATCHER, cluster.address], cluster)
    yield proc
    proc.stop(signal.SIGKILL)


@dataclass
class Apps:
    cli: Process  # `imagebind-sdk serve --engine ray --replicas 2` at /
    config: Process  # `serve run` of a config file: imagebind_sdk.server.ray:app autoscaling 1:2 at /auto


@pytest.fixture(scope="module")
def apps(cluster: Cluster, port: int, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory,
         watcher: "Watcher") -> Apps:
    """Both applications, started together: the CLI's ready once both its replicas loaded the model;
    serve run's becomes ready meanwhile (the autoscale test waits for it)."""
    command = [sys.executable, "-m", "imagebind_sdk", "serve", "--engine", "ray", "--ray-address", cluster.address,
               "--replicas", "2", "--checkpoint", str(tiny_dir), "--port", str(port), "--max-wait-ms", "50",
               "--workers-preprocess", "1", "--max-request-mb", "1", "--max-inflight-mb", "64",
               "--log-level", "warning"]
    started = time.monotonic()
    cli = Process(command, cluster)
    cli.wait_for(lambda: _answers(port, "/.well-known/live") is not None, "Serve's proxy did not start")
    config = tmp_path_factory.mktemp("serve") / "serve.yaml"
    config.write_text(json.dumps(_config(port, tiny_dir)))  # YAML is a superset of JSON
    apps = Apps(cli, Process(["serve", "run", "--address", cluster.address, str(config)], cluster))
    try:
        cli.wait_for(lambda: "serving on http://" in cli.text(), "the Ray server did not start")
        print(f"Ray server (2 replicas) ready in {time.monotonic() - started:.1f} s")  # noqa: T201 - a figure
        yield apps
    finally:
        apps.config.stop(signal.SIGKILL)  # the cluster goes next: Serve's own shutdown would only cost time
        cli.stop()


def _config(port: int, tiny_dir: Path) -> dict[str, Any]:
    """A config file for `serve run`: the importable app, autoscaling with short delays."""
    # The downscale delay outlasts the dips of a test's load (with 1 s, Serve removed the replica
    # it was still starting while eight clients kept sending).
    # Metrics every half second instead of Ray's 10 s (`metrics_interval_s`, deprecated in Ray 2.60
    # in favour of environment variables that it does not read yet), so scaling shows within seconds.
    autoscale = {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1, "upscale_delay_s": 0.5,
                 "downscale_delay_s": 3, "look_back_period_s": 2, "metrics_interval_s": 0.5}
    args = {"checkpoint": str(tiny_dir), "max_wait_ms": 5, "workers_preprocess": 1, "shutdown_timeout_s": 1,
            "autoscale": autoscale}
    app = {"name": CONFIG_APP, "route_prefix": "/auto", "import_path": "imagebind_sdk.server.ray:app", "args": args}
    return {"http_options": {"host": "127.0.0.1", "port": port}, "applications": [app]}


def _answers(port: int, path: str) -> int | None:
    """The status of ``GET path``, None while nothing listens."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code
    except httpx.TransportError:
        return None


@pytest.fixture(scope="module")
def server(apps: Apps) -> Process:
    return apps.cli


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
        self.errors: list[Exception] = []
        self._stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(url, body), daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _client(self, url: str, body: dict) -> None:
        with httpx.Client(timeout=60) as c:
            while not self._stopping.is_set():
                try:
                    self.responses.append(c.post(url, json=body))
                except httpx.HTTPError as exc:  # a dropped connection or a timeout: no answer at all
                    self.errors.append(exc)

    def stop(self) -> list[httpx.Response]:
        self._stopping.set()
        for t in self.threads:
            t.join(timeout=90)
        return self.responses


USAGE_ERRORS = [
    (["--replicas", "2"], "--replicas need --engine ray"),
    (["--engine", "ray", "--replicas", "2", "--autoscale", "1:2"], "not allowed with argument"),
    (["--engine", "ray", "--autoscale", "2"], "autoscale: expected MIN:MAX"),
    (["--engine", "ray", "--autoscale", "3:1"], "0 <= MIN <= MAX"),
    (["--engine", "ray", "--replicas", "0"], "replicas: must be >= 1"),
    (["--engine", "ray", "--num-gpus-per-replica", "-1"], "num_gpus_per_replica: must be >= 0"),
    (["--engine", "ray", "--max-batch-size", "0"], "--max-batch-size"),
    (["--engine", "ray", "--index", "out"], "--index is not served by --engine ray"),
]


def test_usage_errors_exit_2_naming_the_option(capsys: pytest.CaptureFixture, tiny_dir: Path) -> None:
    """Refused before any cluster is joined (the given --ray-address is never reached)."""
    from imagebind_sdk.cli import main

    for options, message in USAGE_ERRORS:
        address = ["--ray-address", "127.0.0.1:1"] if "ray" in options else []
        try:
            code = main(["serve", "--checkpoint", str(tiny_dir), *options, *address])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        assert code == 2 and message in capsys.readouterr().err, options


def test_application_args_are_checked_by_name() -> None:
    from imagebind_sdk.server.ray import ArgsError, app

    for args, message in [({"replica": 2}, "unknown args ['replica']"), ({"replicas": "two"}, "replicas: expected int"),
                          ({"modalities": "text,smell"}, "modalities: expected names"),
                          ({"autoscale": {"max_replicas": 2, "upscale_delay": 1}}, "unknown fields ['upscale_delay']"),
                          ({"autoscale": {"max_replicas": 2, "upscale_delay_s": -1}}, "upscale_delay_s"),
                          ({"offline": "maybe"}, "offline: expected bool")]:
        with pytest.raises(ArgsError, match=re.escape(message)):
            app(args)
    assert app({"replicas": "2", "max_batch_size": "8", "modalities": "text"}) is not None  # `serve run k=v` strings


def test_two_replicas_serve_on_both_nodes(server: Process, port: int, cluster: Cluster) -> None:
    load = Load(f"http://127.0.0.1:{port}/v1/embed", {"text": ["a dog"]}, 4)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len({r.headers.get("x-imagebind-node") for r in list(load.responses)}) < 2:
        time.sleep(0.2)
    responses = load.stop()
    assert responses and all(r.status_code == 200 for r in responses) and not load.errors, \
        server.failure(f"{responses[:3]}, {load.errors[:3]}")
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
        streamed = c.post("/v1/embed", content=iter([b"x" * 2**19] * 4), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413, streamed.text  # no Content-Length: counted as it streams
        bad = c.post("/v1/embed", json={"vision": ["not base64!"]})
        assert bad.status_code == 400 and "vision[0]" in bad.json()["error"]


def test_autoscale_up_under_load_and_down_when_idle(apps: Apps, port: int, watcher: Watcher,
                                                   assets_dir: Path) -> None:
    """The `serve run` application (config file, importable app) under its route prefix. Before the kill
    test: the replica Serve starts in place of the killed one would slow this one's start."""
    def count() -> int:
        return watcher.running(CONFIG_APP)

    apps.config.wait_for(lambda: _answers(port, "/auto/.well-known/ready") == 204, "serve run did not start")
    apps.config.wait_for(lambda: count() == 1, "serve run's application does not hold one replica when idle")
    started = time.monotonic()
    load = Load(f"http://127.0.0.1:{port}/auto/v1/embed", {"vision": [b64(assets_dir / "dog_image.jpg")]}, 8)

    def serving() -> int:  # replicas that answered: a started actor serves only once its model is loaded
        return len({r.headers.get("x-imagebind-replica") for r in list(load.responses)})

    apps.config.wait_for(lambda: count() == 2 and serving() == 2, "no scale-up to 2 serving replicas under load",
                         timeout=90)
    up = time.monotonic() - started
    responses = load.stop()
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {200} and not load.errors, apps.config.failure(f"{statuses}, {load.errors[:3]}")
    started = time.monotonic()  # Serve's status says at once what its controller decided
    apps.config.wait_for(lambda: count() == 1, "no scale-down to 1 replica when idle", timeout=60)
    print(f"autoscale: 2 replicas serve {up:.1f} s into the load, back to 1 after "  # noqa: T201 - figures
          f"{time.monotonic() - started:.1f} s idle")
    assert _answers(port, "/auto/.well-known/ready") == 204


def test_a_replica_killed_under_load_loses_no_request(server: Process, port: int, watcher: Watcher,
                                                      tiny_model: Any, assets_dir: Path) -> None:
    dog = assets_dir / "dog_image.jpg"
    ref = tiny_model.embed(text=["a dog barks"], vision=[dog])
    watcher.wait_for(lambda: len(watcher.actors()) == 2, "the watcher did not see two replicas", timeout=60)
    load = Load(f"http://127.0.0.1:{port}/v1/embed", {"text": ["a dog barks"], "vision": [b64(dog)]}, 8)
    time.sleep(1.5)
    # --max-wait-ms 50: each request waits in its replica's queue, so the kill finds some in flight
    # (with 5 ms, a loaded machine once killed a replica holding none, and nothing was retried).
    victim = watcher.actors()[0]["pid"]
    assert started_by_this_test(victim), f"PID {victim} is not a process of this test's cluster"
    before = len(load.responses)
    os.kill(victim, signal.SIGKILL)
    time.sleep(4)
    responses = load.stop()
    statuses = Counter(r.status_code for r in responses)
    print(f"kill test: {dict(statuses)}, {len(responses) - before} after the kill")  # noqa: T201 - figures
    assert set(statuses) <= {200, 503} and not load.errors, server.failure(f"statuses {statuses}, {load.errors[:3]}")
    for r in responses:
        if r.status_code == 503:
            assert r.headers.get("retry-after"), r.text
        else:
            body = r.json()["embeddings"]
            assert close(body["text"], ref.text) and close(body["vision"], ref.vision), "a wrong vector"
    assert statuses[200] > before and len(responses) > before + 8, "the server stopped answering after the kill"
    assert "a replica failed under" in server.text(), server.failure("no request was retried: none was in flight?")


def test_sigterm_deletes_only_the_cli_application(apps: Apps, port: int, watcher: Watcher) -> None:
    started = time.monotonic()
    assert apps.cli.stop() == 0, apps.cli.failure("the CLI did not stop cleanly on SIGTERM")
    print(f"CLI stopped in {time.monotonic() - started:.1f} s")  # noqa: T201
    deadline = time.monotonic() + 30
    while watcher.actors(CLI_APP):  # serve.delete returned: its replicas are stopping or gone
        assert time.monotonic() < deadline, apps.cli.failure(f"the CLI's replicas outlived it: {watcher.actors()}")
        time.sleep(0.2)
    assert _answers(port, "/auto/.well-known/live") == 204  # the other application still serves
    assert _answers(port, "/v1/embed") == 404  # nothing routes at / any more
