"""Hostile configuration and requests: every number checked, no unauthenticated surprise,
no leaks (paths, memory addresses), malformed JSON answered in the endpoint's own shape."""

from __future__ import annotations

import re
import socket
import subprocess
import time

import httpx
import pytest

from conftest import ASSETS
from .conftest import REPO, ServerProcess, b64, serve_command

ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def run_serve(capsys, *options: str, port: int = 1) -> tuple[int, str]:
    """``serve`` in this process with options that make it exit before serving -> (status, stderr)."""
    from imagebind_sdk.cli import main

    status = main(serve_command(port, *options)[3:])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    (("--api-key", ""), "--api-key"),
    (("--max-wait-ms", "nan"), "--max-wait-ms"),
    (("--max-request-mb", "inf"), "--max-request-mb"),
    (("--shutdown-timeout", "inf"), "--shutdown-timeout"),
    (("--request-timeout", "-1"), "--request-timeout"),
    (("--max-inflight-mb", "nan"), "--max-inflight-mb"),
    (("--max-labels", "0"), "--max-labels"),
    (("--max-wait-ms", "1e9"), "--max-wait-ms"),
])
def test_numbers_and_keys_are_checked(golden_dir, capsys, options, message):
    status, stderr = run_serve(capsys, *options)
    assert status == 2, stderr
    error = [line for line in stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and message in error[0] and "Traceback" not in stderr, stderr


def test_empty_key_from_the_environment_is_refused(golden_dir, capsys, monkeypatch):
    monkeypatch.setenv("IMAGEBIND_API_KEY", "")
    status, stderr = run_serve(capsys)
    assert status == 2 and "must not be empty" in stderr, stderr


def test_busy_port_is_one_line_before_loading(golden_dir):
    with socket.socket() as taken:  # a real process: uvicorn's exit path is what is tested
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        started = time.monotonic()
        done = subprocess.run(serve_command(taken.getsockname()[1]), env=ServerProcess.environment(),
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Application startup complete" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Address already in use" in lines[0] and "--port" in lines[0], lines
    assert time.monotonic() - started < 60


def test_non_loopback_without_key_warns_once(golden_dir):
    proc = ServerProcess("--modalities", "text", host="0.0.0.0").wait_ready()
    assert proc.stop() == 0
    output = proc.proc.stdout.read()
    assert output.count("without an API key") == 1, output


def test_no_paths_or_addresses_in_answers(server, client):
    meta = client.get("/meta").text
    assert str(REPO.parent) not in meta and "/golden" not in meta, meta
    assert client.get("/meta").json()["name"] == "tiny"
    answer = client.post("/v1/embed", json={"text": ["a"]}).json()
    assert answer["model"] == "tiny"
    assert client.post("/v1/embeddings", json={"input": "a"}).json()["model"] == "tiny"


def test_error_messages_lose_memory_addresses():
    from imagebind_sdk.server.security import error_response

    response = error_response("/v1/embed", 400, "x: <PIL.Image.Image mode=RGB at 0x7f3a2b1c0d10> is odd")
    assert not ADDRESS.search(response.body.decode()) and "<PIL.Image.Image mode=RGB>" in response.body.decode()


@pytest.mark.parametrize("path", ["/v1/embed", "/vectorize", "/v1/embeddings"])
@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"text": ' + b"7" * 5000 + b"}", b"{" * 50_000])
def test_hostile_json_is_a_400_in_the_endpoint_shape(server, client, path, body):
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    message = error["message"] if path == "/v1/embeddings" else error
    assert "JSON" in message and len(message) < 300, message
    assert client.get("/.well-known/ready").status_code == 204  # the server is still fine


def test_label_count_is_its_own_limit(server, client):
    audio = b64(ASSETS / "dog_audio.wav")
    labels = [f"label {i}" for i in range(500)]  # x 9 audio templates: 4,500 texts, more than --max-queue
    r = client.post("/v1/zero-shot", json={"labels": labels, "audio": [audio], "top_k": 1})
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["probabilities"][0]) == 500
    r = client.post("/v1/zero-shot", json={"labels": labels * 3, "audio": [audio]})
    assert r.status_code == 413 and "1500 labels" in r.json()["error"] and "--max-labels" in r.json()["error"]
