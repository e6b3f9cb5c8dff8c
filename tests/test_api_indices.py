"""Issue 9 (A.1, C.12): errors name the item's index in the caller's list, and an error
inside ``embed`` closes its progress bar before it propagates."""

from __future__ import annotations

import pytest
import torch

from imagebind_sdk import InputError

# kind -> a good item (a file of /work/shared/assets) and a missing file of the same kind.
GOOD = {
    "vision": "dog_image.jpg", "audio": "dog_audio.wav", "depth": "depth/010002.jpg",
    "thermal": "thermal/190001.jpg", "imu": "imu/imu1_2k.csv", "video": "video/wind_noise.mp4",
}
MISSING_EXT = {"vision": "jpg", "audio": "wav", "depth": "png", "thermal": "jpg", "imu": "csv", "video": "mp4"}


@pytest.mark.parametrize("batch_size", [1, 2])
@pytest.mark.parametrize("kind", sorted(set(GOOD) - {"video"}))
def test_preprocess_errors_name_the_index_in_the_call(tiny_model, assets_dir, kind, batch_size):
    """The 3rd item is bad: with batch_size 1 or 2 it is not the first of its batch."""
    good = str(assets_dir / GOOD[kind])
    missing = f"/nonexistent/never-read.{MISSING_EXT[kind]}"
    with pytest.raises((InputError, FileNotFoundError), match=rf"^{kind}\[2\] \({missing}\)"):
        tiny_model.embed(**{kind: [good, good, missing]}, batch_size=batch_size)


def test_video_errors_name_the_index_in_the_call(tiny_model, assets_dir):
    """Video (slow to decode): one good item, batch_size 1."""
    missing = "/nonexistent/never-read.mp4"
    with pytest.raises((InputError, FileNotFoundError), match=rf"^video\[1\] \({missing}\)"):
        tiny_model.embed(video=[str(assets_dir / GOOD["video"]), missing], batch_size=1)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_non_finite_row_errors_name_the_index_in_the_call(tiny_model, batch_size):
    ok = torch.rand(3, 224, 224, generator=torch.Generator().manual_seed(0))
    items = [ok, ok, torch.full((3, 224, 224), 1e20)]
    with pytest.raises(InputError, match=r"^vision\[2\] \(<torch\.Tensor shape=\(3, 224, 224\)>\): the embedding is not finite"):
        tiny_model.embed(vision=items, batch_size=batch_size)
    out = tiny_model.embed(vision=items, batch_size=batch_size, on_error="skip")
    assert [s.index for s in out.skipped["vision"]] == [2]


# -- C.12 a bar is closed before the error propagates -----------------------------------
def _assert_bars_closed(capsys, excinfo) -> None:
    """Checked while the exception (and so its traceback's frames, which hold the bar) is alive,
    as when a caller prints it: garbage collection must not be what closes the bar."""
    from imagebind_sdk import progress

    assert excinfo.value.__traceback__ is not None
    assert progress._open_bars() == []  # tqdm.close() disables the bar
    err = capsys.readouterr().err
    assert "embedding" in err and err.endswith("\n"), repr(err)  # the bar line was ended


def test_embed_error_closes_the_progress_bar(tiny_model, capsys):
    with pytest.raises(FileNotFoundError, match=r"vision\[1\]") as excinfo:
        tiny_model.embed(vision=[torch.rand(3, 224, 224), "/nonexistent/never-read.jpg"], batch_size=1,
                         progress=True)
    _assert_bars_closed(capsys, excinfo)


def test_text_error_closes_the_progress_bar(tiny_dir, capsys):
    from imagebind_sdk import ImageBind

    model = ImageBind.load(tiny_dir, modalities=["text"], device="cpu")
    poisoned = int(model.tokenizer(["zebra"])[0, 1])
    model.encoder("text").stem.token_embedding.weight.data[poisoned] = 3e38  # finite, overflows LayerNorm
    with pytest.raises(InputError, match=r"text\[1\] \(a zebra\)") as excinfo:
        model.embed(text=["a dog", "a zebra"], batch_size=1, progress=True)
    _assert_bars_closed(capsys, excinfo)
