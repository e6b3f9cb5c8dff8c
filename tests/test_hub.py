"""Hub resolution through huggingface_hub's real code path, against a populated cache."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import assert_matches_reference, populate_hub_cache
from imagebind_sdk import ImageBind, WeightsNotFoundError
from imagebind_sdk.weights.hub import registry, resolve

HUGE_REVISION = "51fc1ff707903501e60bdb2f73dd4e8818eef099"


@pytest.fixture
def hub_cache(tmp_path, tiny_dir):
    cache = tmp_path / "hub"
    files = {"config.json": tiny_dir / "config.json", "model.safetensors": tiny_dir / "model.safetensors"}
    populate_hub_cache(cache, "someone/imagebind-tiny", files, "a" * 40)
    populate_hub_cache(cache, "nielsr/imagebind-huge", files, HUGE_REVISION)
    return cache


def test_registry_pins_the_hub_revision():
    entry = registry()["imagebind-huge"]
    assert entry["repo_id"] == "nielsr/imagebind-huge" and entry["revision"] == HUGE_REVISION


def test_repo_id_from_cache_local_files_only(hub_cache, golden_embeddings):
    model = ImageBind.load("someone/imagebind-tiny", cache_dir=hub_cache, local_files_only=True, device="cpu")
    for m in ("vision", "audio"):
        assert_matches_reference(model.encode(m, golden_embeddings[f"input/{m}"]), golden_embeddings[f"output/{m}"])


def test_alias_resolves_pinned_revision_from_cache(hub_cache):
    resolved = resolve("imagebind-huge", cache_dir=hub_cache, local_files_only=True)
    assert resolved.details == {"repo_id": "nielsr/imagebind-huge", "revision": HUGE_REVISION}
    assert HUGE_REVISION in str(resolved.weight_files[0])


def test_hf_hub_offline_env_in_a_fresh_process(hub_cache, golden_embeddings, tmp_path):
    script = (
        "import sys, torch; from imagebind_sdk import ImageBind\n"
        f"m = ImageBind.load('someone/imagebind-tiny', cache_dir={str(hub_cache)!r}, modalities=['text'], device='cpu')\n"
        "torch.save(m.embed(text=['A dog.']).text, sys.argv[1])\n"
    )
    out_file = tmp_path / "out.pt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", script, str(out_file)], env=env, check=True, timeout=120)
    import torch

    assert_matches_reference(torch.load(out_file), golden_embeddings["output/text"][:1])


def test_offline_and_not_cached_says_how_to_get_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match=r"imagebind-sdk download imagebind-huge[\s\S]*imagebind_huge\.pth"):
        ImageBind.load("imagebind-huge", cache_dir=tmp_path)
    with pytest.raises(WeightsNotFoundError, match="not available locally"):
        ImageBind.load("someone/not-cached", cache_dir=tmp_path, local_files_only=True)


def test_unreachable_hub_loads_a_cached_checkpoint(hub_cache, golden_embeddings, tmp_path):
    """No network (HF_ENDPOINT is a closed loopback port): one probe fails at once and
    config and weights come from the cache, with no retries."""
    script = (
        "import sys, torch; from imagebind_sdk import ImageBind\n"
        f"m = ImageBind.load('someone/imagebind-tiny', cache_dir={str(hub_cache)!r}, modalities=['audio'], device='cpu')\n"
        "torch.save(m.encode('audio', torch.load(sys.argv[1])), sys.argv[2])\n"
    )
    import torch

    torch.save(golden_embeddings["input/audio"], tmp_path / "in.pt")
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    env.pop("HF_HUB_OFFLINE", None)
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Retry" not in res.stderr
    assert_matches_reference(torch.load(tmp_path / "out.pt"), golden_embeddings["output/audio"])


# --- no network / unknown repository, through huggingface_hub's real HTTP code ------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connections are refused


@pytest.fixture
def fake_hub():
    """A loopback HTTP server answering every request as the Hub does for a repository
    that does not exist (401 + X-Error-Code: RepoNotFound). HF_ENDPOINT points at it."""
    import http.server
    import threading

    class NoSuchRepo(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(401)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("X-Error-Message", "Repository not found")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = _answer

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NoSuchRepo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _load_in_subprocess(endpoint: str, source: str, cache: str, *cli: str) -> tuple[subprocess.CompletedProcess, float]:
    import time

    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": cache}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("IMAGEBIND_CHECKPOINT", None)
    if cli:
        cmd = [sys.executable, "-m", "imagebind_sdk", *cli]
    else:
        cmd = [sys.executable, "-c", f"from imagebind_sdk import ImageBind; ImageBind.load({source!r}, modalities=['text'])"]
    start = time.monotonic()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    return res, time.monotonic() - start


def _start_up_seconds() -> float:
    """What a fresh interpreter takes, now, to import what the commands above import: the part of
    their time that is no network at all (10 s on this 2-core VM under other jobs' load)."""
    import time

    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "import huggingface_hub, imagebind_sdk.api, imagebind_sdk.cli"],
                   check=True, timeout=120)
    return time.monotonic() - start


NETWORK_S = 5  # the most the failing network part may take (retries took 27 s)


def test_unreachable_hub_fails_fast_with_one_clear_error(tmp_path):
    res, seconds = _load_in_subprocess(f"http://127.0.0.1:{_closed_port()}", "imagebind-huge", str(tmp_path))
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("imagebind_sdk.weights.hub.WeightsNotFoundError: cannot reach the Hugging Face Hub"), res.stderr
    assert "imagebind_huge.pth" in last and "imagebind-sdk download" not in last  # no point without network
    assert "Retry" not in res.stderr and seconds < NETWORK_S + 1.5 * _start_up_seconds(), (seconds, res.stderr)


def test_download_command_without_network_is_one_line_and_does_not_suggest_itself(tmp_path):
    res, seconds = _load_in_subprocess(
        f"http://127.0.0.1:{_closed_port()}", "", str(tmp_path), "download", "imagebind-huge"
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagebind-sdk: error: cannot reach"), res.stderr
    assert "imagebind-sdk download" not in res.stderr and seconds < NETWORK_S + 1.5 * _start_up_seconds()


def test_unknown_repository_says_so(tmp_path, fake_hub):
    res, _ = _load_in_subprocess(fake_hub, "nobody/no-such-model", str(tmp_path))
    assert res.returncode != 0
    assert "nobody/no-such-model: no such repository on the Hugging Face Hub" in res.stderr, res.stderr
    assert "Retry" not in res.stderr
