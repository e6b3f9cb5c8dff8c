"""A real ``imagebind-sdk serve`` process on a free port with the tiny golden checkpoint."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason='pip install "imagebind-sdk[serve]"')
pytest.importorskip("uvicorn", reason='pip install "imagebind-sdk[serve]"')
httpx = pytest.importorskip("httpx", reason="pip install httpx")

from conftest import GOLDEN, TINY  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def serve_command(port: int, *options: str, host: str = "127.0.0.1") -> list[str]:
    """``imagebind-sdk serve`` of the tiny checkpoint on ``host:port``."""
    return [sys.executable, "-m", "imagebind_sdk", "serve", "--checkpoint", str(TINY), "--host", host,
            "--port", str(port), "--log-level", "warning", *options]


class ServerProcess:
    """``python -m imagebind_sdk serve ...``; ``stop()`` sends SIGTERM and returns the exit status."""

    def __init__(self, *options: str, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(serve_command(self.port, *options, host=host), env=self.environment(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    @staticmethod
    def environment() -> dict[str, str]:
        return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))

    start_timeout_s = START_TIMEOUT_S

    def wait_ready(self) -> "ServerProcess":
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.proc.stdout.read()}")
            try:
                if httpx.get(self.url + "/.well-known/ready", timeout=1).status_code == 204:
                    return self
                self.while_starting()
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become ready")

    def while_starting(self) -> None:
        """Called between readiness polls (a subclass may record progress)."""

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server():
    if not (GOLDEN / "embeddings.safetensors").exists():
        pytest.skip(f"golden data not found at {GOLDEN}")
    proc = ServerProcess("--max-wait-ms", "5").wait_ready()
    yield proc
    assert proc.stop() == 0


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c
