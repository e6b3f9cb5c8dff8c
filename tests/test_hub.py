"""Hub resolution through huggingface_hub's real code path, against a populated cache."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import assert_matches_reference, populate_hub_cache
from imagebind_sdk import ImageBind, WeightsNotFoundError
from imagebind_sdk.hub import registry, resolve

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


def test_unreachable_hub_falls_back_to_the_cache_after_one_try(hub_cache, golden_embeddings, monkeypatch):
    """With no network, huggingface_hub retries each file for ~20 s before it gives up
    with LocalEntryNotFoundError. After the first such failure the SDK looks up the
    remaining files in the cache only, and a cached checkpoint still loads."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    real = huggingface_hub.hf_hub_download
    online_calls = []

    def unreachable(repo_id, filename, **kwargs):
        if not kwargs.get("local_files_only"):
            online_calls.append(filename)
            raise LocalEntryNotFoundError("connection error and not in the cache (simulated)")
        return real(repo_id, filename, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model = ImageBind.load("someone/imagebind-tiny", cache_dir=hub_cache, device="cpu", modalities=["audio"])
    assert online_calls == ["model.safetensors.index.json"]
    assert_matches_reference(model.encode("audio", golden_embeddings["input/audio"]), golden_embeddings["output/audio"])
