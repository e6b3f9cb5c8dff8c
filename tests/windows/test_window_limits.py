"""Window requests are bounded before decoding; every number finite; moments refuse what has no answer."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from imagebind_sdk.windows.moments import find_moments
from imagebind_sdk.preprocess import windowing
from imagebind_sdk.preprocess.sources import InputError
from imagebind_sdk.windows.embed import Windows, WindowEmbeddings, window_spans

from .test_window_moments import run_cli


def test_window_count_past_the_limit_is_refused_before_listing():
    """hop 1 ms over 120 s is 118,001 windows: refused (the limit is MAX_WINDOWS per input)."""
    with pytest.raises(ValueError, match=r"makes 118001 windows, more than the 100000 allowed per input"):
        windowing.window_starts(Fraction(120), Fraction(2), Fraction(1, 1000))
    at_limit = windowing.window_starts(Fraction(windowing.MAX_WINDOWS + 1), Fraction(2), Fraction(1))
    assert len(at_limit) == windowing.MAX_WINDOWS


def test_window_of_too_many_clips_is_refused():
    """window_s=1e8 planned 5e7 clips per window (over 3 GB); 1000 s plans 500."""
    with pytest.raises(ValueError, match=r"window_s must be at most 120 s \(60 clips of 2 s\), got 1000"):
        windowing.clip_offsets(Fraction(1000), 2)
    assert len(windowing.clip_offsets(Fraction(120), 2)) == 60


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400, Fraction(10**400), 0, -1.0],
                         ids=["nan", "inf", "-inf", "huge-int", "huge-fraction", "zero", "negative"])
def test_spans_must_be_positive_and_finite(value):
    with pytest.raises(ValueError, match=r"hop_s must be a positive, finite number of seconds"):
        window_spans(hop_s=value)


def test_typo_in_a_per_kind_mapping_is_refused():
    with pytest.raises(ValueError, match=r"window_s has a value for 'audoi'.*did you mean 'audio'\?"):
        window_spans(window_s={"audoi": 4})
    with pytest.raises(ValueError, match=r"hop_s has a value for 'text', which is not one of audio, video, imu$"):
        window_spans(hop_s={"text": 4})
    assert window_spans(window_s={"audio": 4})["audio"] == ["4", "1"]


def test_embed_windows_refuses_a_tiny_hop_naming_the_input(tiny_model):
    """60 s of audio at hop 0.5 ms would be 116,001 windows: refused before any is decoded."""
    waveform = torch.zeros(1, 16000 * 60)
    with pytest.raises(InputError, match=r"audio\[0\] .*116001 windows, more than the 100000"):
        tiny_model.embed_windows(audio=(waveform, 16000), hop_s=0.0005)
    with pytest.raises(ValueError, match=r"window_s must be at most 120 s"):
        tiny_model.embed_windows(audio=(waveform, 16000), window_s=1e8)


def test_cli_moments_refuses_nan_and_tiny_hops(tiny_dir, tmp_path):
    import soundfile

    path = tmp_path / "minute.wav"
    soundfile.write(path, np.zeros(8000 * 60, np.int16), 8000, subtype="PCM_16")
    res = run_cli("--audio", str(path), "--text", "a dog", "--hop", "0.0005", tiny_dir=tiny_dir)
    assert res.returncode == 1 and "more than the 100000 allowed per input" in res.stderr, res.stderr
    res = run_cli("--audio", str(path), "--text", "a dog", "--hop", "nan", tiny_dir=tiny_dir)
    assert res.returncode == 1 and "must be a positive, finite number" in res.stderr, res.stderr


def _windows(n: int) -> Windows:
    starts = torch.arange(n, dtype=torch.float64)
    return Windows("audio", "x.wav", torch.nn.functional.normalize(torch.ones(n, 2), dim=1), starts, starts + 2)


def test_find_moments_on_no_windows_is_a_clear_error():
    for empty in (_windows(0), [_windows(0)], WindowEmbeddings([_windows(0)]), []):
        with pytest.raises(ValueError, match=r"no windows to search"):
            find_moments(torch.tensor([1.0, 0.0]), empty)


def test_find_moments_refuses_a_zero_query_and_nan_numbers():
    with pytest.raises(ValueError, match=r"query is an all-zero vector"):
        find_moments(torch.zeros(2), _windows(3))
    with pytest.raises(ValueError, match=r"min_score must be a finite"):
        find_moments(torch.ones(2), _windows(3), min_score=math.nan)
    with pytest.raises(ValueError, match=r"merge_gap_s"):
        find_moments(torch.ones(2), _windows(3), merge_gap_s=math.inf)
