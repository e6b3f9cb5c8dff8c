"""find_moments on a recording with known events, through Python and the CLI; windows in an index."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from imagebind_sdk.retrieval.index import EmbeddingIndex
from imagebind_sdk.windows.moments import find_moments, format_timestamp
from imagebind_sdk.windows.embed import Windows
from .window_media import BURST_S, BURSTS, NOISE_MINUTES


def overlaps(moment: dict, start: float, end: float) -> bool:
    return moment["start_s"] < end and start < moment["end_s"]


@pytest.fixture(scope="module")
def burst_windows(tiny_model, bursts_recording):
    return tiny_model.embed_windows(audio=str(bursts_recording))


def test_top_moment_is_the_queried_burst(burst_windows):
    windows = burst_windows[0]
    assert len(windows) == NOISE_MINUTES * 60 - 1
    for start, _ in BURSTS:
        query = windows.vectors[int(start) + 1]  # the window [start + 1, start + 3), inside the burst
        moments = find_moments(query, burst_windows, top_k=3)
        assert overlaps(moments[0], start, start + BURST_S), moments
        assert moments[0]["score"] == pytest.approx(1.0, abs=1e-5)
        assert set(moments[0]) == {"source", "start_s", "end_s", "score"}
        assert [m["score"] for m in moments] == sorted((m["score"] for m in moments), reverse=True)


def test_model_find_moments_with_a_query_file(tiny_model, bursts_recording, tone_query):
    """A 2 s file of the second burst's tone finds that burst (model.find_moments(query=...))."""
    query = tiny_model.embed(audio=str(tone_query)).audio[0]
    moments = tiny_model.find_moments(query=query, audio=str(bursts_recording), top_k=3)
    start = BURSTS[1][0]
    assert overlaps(moments[0], start, start + BURST_S), moments
    by_text = tiny_model.find_moments(text="a beep", audio=str(bursts_recording), top_k=2, min_score=-1.0)
    assert len(by_text) == 1  # min_score=-1 keeps every window: one segment spanning the recording
    assert by_text[0]["start_s"] == 0.0 and by_text[0]["end_s"] == NOISE_MINUTES * 60


def test_merging_rule():
    """Windows above the threshold merge across gaps <= merge_gap_s; a segment scores its best window."""
    starts = torch.arange(10, dtype=torch.float64)
    vectors = torch.zeros(10, 2)
    vectors[:, 1] = 1.0
    vectors[[2, 4, 8], 0] = torch.tensor([3.0, 2.0, 5.0])  # cosine with (1, 0) high at 2, 4 and 8
    w = Windows("audio", "x.wav", torch.nn.functional.normalize(vectors, dim=1), starts, starts + 2)
    moments = find_moments(torch.tensor([1.0, 0.0]), w, top_k=5, min_score=0.5)
    assert [(m["start_s"], m["end_s"]) for m in moments] == [(8.0, 10.0), (2.0, 6.0)]
    apart = find_moments(torch.tensor([1.0, 0.0]), w, min_score=0.5, merge_gap_s=0.0)
    assert [(m["start_s"], m["end_s"]) for m in apart] == [(8.0, 10.0), (2.0, 6.0)]  # [2,4) and [4,6) touch
    with pytest.raises(ValueError, match="one query vector"):
        find_moments(torch.ones(2, 2), w)


def test_format_timestamp():
    assert format_timestamp(0) == "00:00:00.0"
    assert format_timestamp(3725.25) == "01:02:05.2" or format_timestamp(3725.25) == "01:02:05.3"
    assert format_timestamp(59.96) == "00:01:00.0"


def test_windows_in_an_index_carry_timestamps(burst_windows, tmp_path):
    index = EmbeddingIndex()
    ids = burst_windows.add_to(index)
    assert len(index) == len(burst_windows[0]) and ids[0].endswith("@0.000-2.000")
    start = BURSTS[2][0]
    hit = index.search(burst_windows[0].vectors[int(start)], top_k=1)[0][0]
    assert hit["metadata"]["start_s"] == start and hit["metadata"]["end_s"] == start + 2
    assert hit["metadata"]["source"] == burst_windows[0].source and hit["metadata"]["kind"] == "audio"
    index.save(tmp_path / "idx")
    again = EmbeddingIndex.load(tmp_path / "idx").search(burst_windows[0].vectors[int(start)], top_k=1)[0][0]
    assert again["metadata"] == hit["metadata"]


def run_cli(*args: str, tiny_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMAGEBIND_CHECKPOINT": str(tiny_dir), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "imagebind_sdk", "moments", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_moments(tiny_dir, bursts_recording, tone_query):
    res = run_cli("--audio", str(bursts_recording), "--query-audio", str(tone_query), "--top-k", "2", "--json",
                  tiny_dir=tiny_dir)
    assert res.returncode == 0, res.stderr
    moments = json.loads(res.stdout)
    assert len(moments) <= 2 and overlaps(moments[0], BURSTS[1][0], BURSTS[1][0] + BURST_S)
    text = run_cli("--audio", str(bursts_recording), "--text", "applause", "--top-k", "3", tiny_dir=tiny_dir)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.strip().splitlines()
    assert 1 <= len(lines) <= 3
    span, score, source = lines[0].split("  ")
    assert span.count("–") == 1 and len(span) == len("00:00:00.0–00:00:02.0")
    assert float(score) <= 1.0 and source == str(bursts_recording)
    usage = run_cli("--audio", str(bursts_recording), tiny_dir=tiny_dir)
    assert usage.returncode == 2 and "one query" in usage.stderr
