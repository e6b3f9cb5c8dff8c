"""embed_files: folders of mixed files, DataLoader workers, streaming to disk, resuming after a kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from imagebind_sdk.bulk.files import embed_files, infer_kind, list_files, load_bulk_output
from imagebind_sdk.bulk.format import INFO, part_files
from imagebind_sdk.bulk.store import BulkStore

N_IMAGES = 40

# Runs a bulk job in a fresh interpreter; encode is slowed down so the job can be killed midway.
KILL_SCRIPT = """
import sys, time
from imagebind_sdk import ImageBind
from imagebind_sdk.bulk.files import embed_files
model = ImageBind.load(sys.argv[1], device="cpu", modalities=["vision"])
encode = model.pipeline.encode_rows
def slow_encode(*args, **kwargs):
    time.sleep(0.1)
    return encode(*args, **kwargs)
model.pipeline.encode_rows = slow_encode
embed_files(model, sys.argv[2], out=sys.argv[3], batch_size=4)
"""


@pytest.fixture
def mixed_dir(tmp_path: Path, assets_dir: Path) -> Path:
    """Images, audio, an IMU log, an unknown extension, a corrupt image and hidden/nested files."""
    root = tmp_path / "mixed"
    (root / "sub").mkdir(parents=True)
    for name in ["dog_image.jpg", "car_image.jpg", "gray_small_0.png", "palette_0.gif", "short_8k_mono_0.wav"]:
        shutil.copy(assets_dir / name, root / name)
    shutil.copy(assets_dir / "u8_11k_0.wav", root / "sub" / "u8_11k_0.wav")
    shutil.copy(assets_dir / "imu" / "imu1_2k.csv", root / "imu1_2k.csv")
    (root / "notes.txt").write_text("not an input")
    (root / "corrupt.jpg").write_bytes(os.urandom(2000))
    (root / ".hidden.jpg").write_bytes(b"hidden files are not listed")
    return root


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory: pytest.TempPathFactory, assets_dir: Path) -> Path:
    """N_IMAGES small distinct images made from the sample photos (read-only for the tests)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    photos = [Image.open(assets_dir / f"{n}_image.jpg").convert("RGB") for n in ("dog", "car", "bird")]
    for i in range(N_IMAGES):
        photo = photos[i % 3]
        w, h = photo.size
        crop = photo.crop((i * 5, i * 3, w - i * 4, h - i * 2)).resize((64 + i, 48 + i))
        crop.save(root / f"img_{i:03d}.{'png' if i % 4 == 0 else 'jpg'}")
    return root


def _files(root: Path, *suffixes: str) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.suffix in suffixes and not p.name.startswith("."))


def _assert_same(a, b) -> None:
    """Two Embeddings: same kinds, same sources in the same order, close rows."""
    assert list(a) == list(b)
    assert a.sources == b.sources
    for kind in a:
        torch.testing.assert_close(a[kind], b[kind])


def _parts(out: Path) -> set[str]:
    return {p.name for p in part_files(out)}


def _recorded_paths(out: Path) -> list[str]:
    """Every path column value of every committed part, read with plain pyarrow."""
    return [p for part in part_files(out) for p in pq.read_table(part, columns=["path"]).column("path").to_pylist()]


def test_infer_kind_and_listing(mixed_dir: Path) -> None:
    assert [infer_kind(p) for p in ["a.JPG", "b.flac", "c.mp4", "d.csv", "e.txt", "f"]] == [
        "vision", "audio", "video", "imu", None, None,
    ]
    listed = list_files(mixed_dir)
    assert listed == sorted(listed) and str(mixed_dir / "sub" / "u8_11k_0.wav") in listed
    assert not any(".hidden" in p for p in listed)
    assert str(mixed_dir / "sub" / "u8_11k_0.wav") not in list_files(mixed_dir, recursive=False)
    assert list_files(str(mixed_dir / "*.png")) == [str(mixed_dir / "gray_small_0.png")]
    given = [mixed_dir / "palette_0.gif", mixed_dir / "dog_image.jpg", mixed_dir / "palette_0.gif"]
    assert list_files(given) == [str(given[0]), str(given[1])]  # list order kept, duplicates dropped
    with pytest.raises(FileNotFoundError, match="no such file"):
        list_files(mixed_dir / "missing")


def test_mixed_directory_matches_embed(tiny_model, mixed_dir: Path) -> None:
    result = embed_files(tiny_model, mixed_dir, batch_size=2)
    images = [p for p in _files(mixed_dir, ".jpg", ".png", ".gif") if "corrupt" not in p]
    audio, imu = _files(mixed_dir, ".wav"), _files(mixed_dir, ".csv")
    expected = tiny_model.embed(vision=images, audio=audio, imu=imu)
    assert list(result.embeddings) == ["vision", "imu", "audio"]  # kinds in first-seen order
    assert result.embeddings.sources == {"vision": images, "audio": audio, "imu": imu}
    for kind in expected:
        torch.testing.assert_close(result.embeddings[kind], expected[kind])
    assert [p for p, _ in result.unsupported] == [str(mixed_dir / "notes.txt")]
    assert [p for p, _ in result.failed] == [str(mixed_dir / "corrupt.jpg")]
    assert "image" in result.failed[0][1]
    assert [s.source for s in result.embeddings.skipped["vision"]] == [str(mixed_dir / "corrupt.jpg")]
    assert result.summary() == {"files": 9, "embedded": 7, "already_done": 0, "failed": 1, "unsupported": 1}


def test_workers_give_identical_results(tiny_model, mixed_dir: Path) -> None:
    serial = embed_files(tiny_model, mixed_dir, batch_size=3, num_workers=0)
    parallel = embed_files(tiny_model, mixed_dir, batch_size=3, num_workers=2)
    # Same rows, sources and failures; values equal up to 1e-6: under the tests' MKL_CBWR
    # (conftest) a worker's MKL rounds the audio resampler's last bit differently (8e-8).
    assert parallel.embeddings.sources == serial.embeddings.sources
    assert parallel.embeddings.skipped == serial.embeddings.skipped
    for kind in serial.embeddings.sources:
        torch.testing.assert_close(parallel.embeddings[kind], serial.embeddings[kind], rtol=0, atol=1e-6)
    assert parallel.failed == serial.failed and parallel.unsupported == serial.unsupported


def test_explicit_kind_and_video(tiny_model, assets_dir: Path, tmp_path: Path) -> None:
    depth = embed_files(tiny_model, assets_dir / "depth", "depth")
    files = _files(assets_dir / "depth", ".jpg")
    torch.testing.assert_close(depth.embeddings.depth, tiny_model.embed(depth=files).depth)
    shutil.copy(assets_dir / "video" / "wind_noise.mp4", tmp_path / "clip.mp4")
    video = embed_files(tiny_model, [tmp_path / "clip.mp4"])
    torch.testing.assert_close(video.embeddings.video, tiny_model.embed(video=[str(tmp_path / "clip.mp4")]).video)
    with pytest.raises(ValueError, match="kind must be one of"):
        embed_files(tiny_model, tmp_path, "text")


def test_kind_keyword_and_its_old_name(tiny_model, assets_dir: Path) -> None:
    """``kind=`` names the input kind; ``modality=`` (0.1) still works, with a DeprecationWarning."""
    by_kind = tiny_model.embed_files(assets_dir / "depth", kind="depth", progress=False)
    with pytest.warns(DeprecationWarning, match=r"embed_files\(modality=...\) is deprecated.*kind='depth'"):
        by_old_name = tiny_model.embed_files(assets_dir / "depth", modality="depth", progress=False)
    assert torch.equal(by_kind.embeddings.depth, by_old_name.embeddings.depth)
    with pytest.raises(TypeError, match="pass kind= only"):
        embed_files(tiny_model, assets_dir / "depth", "depth", modality="depth")


def test_dataset_summary_says_already_done() -> None:
    from imagebind_sdk.distributed import DatasetSummary

    summary = DatasetSummary(embedded=3, already_done=5, failed=1, unsupported=0, seconds=1.0, out="o")
    assert summary.skipped == 5  # the 0.1 name
    assert summary.as_dict()["already_done"] == 5 and "skipped" not in summary.as_dict()


def test_out_dir_round_trip_and_resume(tiny_model, mixed_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = embed_files(tiny_model, mixed_dir, batch_size=2, out=out)
    assert first.embeddings == embed_files(tiny_model, mixed_dir, batch_size=2).embeddings
    assert load_bulk_output(out) == first.embeddings
    info = json.loads((out / INFO).read_text())
    assert info["embedding_dim"] == tiny_model.embedding_dim and info["dtype"] == "float32"
    assert info["checkpoint"]["source"] == os.path.abspath(tiny_model.source)
    parts = _parts(out)
    assert parts and all(name.endswith(".parquet") for name in parts)
    assert sorted(_recorded_paths(out)) == sorted(_files(mixed_dir, ".jpg", ".png", ".gif", ".wav", ".csv"))

    again = embed_files(tiny_model, mixed_dir, batch_size=2, out=out)
    assert again.summary()["embedded"] == 0 and again.summary()["already_done"] == 7
    assert again.embeddings == first.embeddings  # only the corrupt file was tried again
    assert sorted(_recorded_paths(out)) == sorted(_files(mixed_dir, ".jpg", ".png", ".gif", ".wav", ".csv"))

    changed = mixed_dir / "gray_small_0.png"
    shutil.copy(mixed_dir / "palette_0.gif", changed)  # new content under the old name
    third = embed_files(tiny_model, mixed_dir, batch_size=2, out=out)
    assert third.summary()["embedded"] == 1 and third.summary()["already_done"] == 6
    recorded = _recorded_paths(out)  # the superseded row was deleted once the job completed
    assert len(recorded) == len(set(recorded)) == 8  # 7 embedded + the corrupt file's error
    row = third.embeddings.sources["vision"].index(str(changed))
    torch.testing.assert_close(third.embeddings.vision[row], tiny_model.embed(vision=[str(changed)]).vision[0])
    loaded = load_bulk_output(out)
    assert loaded == third.embeddings
    assert sorted(loaded.sources["vision"]) == sorted(set(loaded.sources["vision"]))  # newest record wins


def test_touched_file_is_reembedded(tiny_model, images_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(images_dir, src, dirs_exist_ok=True)
    out = tmp_path / "out"
    embed_files(tiny_model, src, out=out, batch_size=8)
    st = os.stat(src / "img_005.jpg")
    os.utime(src / "img_005.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = embed_files(tiny_model, src, out=out, batch_size=8)
    assert again.summary()["embedded"] == 1 and again.summary()["already_done"] == N_IMAGES - 1


def test_refusals(tiny_model, mixed_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    embed_files(tiny_model, [mixed_dir / "dog_image.jpg"], out=out)
    with pytest.raises(FileExistsError, match="resume=True"):
        embed_files(tiny_model, [mixed_dir / "dog_image.jpg"], out=out, resume=False)
    info = json.loads((out / INFO).read_text())
    with BulkStore.open(out, info["checkpoint"], tiny_model.embedding_dim, resume=True):
        with pytest.raises(RuntimeError, match="another embedding job"):
            embed_files(tiny_model, [mixed_dir / "dog_image.jpg"], out=out)
    (out / INFO).write_text(json.dumps({**info, "embedding_dim": 1024}))
    with pytest.raises(ValueError, match="1024-d"):
        embed_files(tiny_model, [mixed_dir / "dog_image.jpg"], out=out)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "data.bin").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not a bulk embedding output"):
        embed_files(tiny_model, [mixed_dir / "dog_image.jpg"], out=stranger)


def test_interrupted_write_leftovers_are_tolerated(tiny_model, images_dir: Path, tmp_path: Path) -> None:
    """Temp files of a killed writer are removed on resume; readers never see them."""
    out = tmp_path / "out"
    clean = embed_files(tiny_model, images_dir, batch_size=4)
    embed_files(tiny_model, sorted(images_dir.iterdir())[:12], out=out, batch_size=4)
    parts = _parts(out)
    (out / ".tmp-0123-part-00.parquet").write_bytes(b"PAR1 partial")  # killed mid-write
    assert load_bulk_output(out).vision.shape[0] == 12
    resumed = embed_files(tiny_model, images_dir, batch_size=4, out=out)
    assert resumed.summary()["already_done"] == 12 and resumed.summary()["embedded"] == N_IMAGES - 12
    _assert_same(load_bulk_output(out), clean.embeddings)
    assert parts < _parts(out) and not any(p.name.startswith(".tmp-") for p in out.iterdir())


def test_deleted_part_is_reembedded(tiny_model, images_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = embed_files(tiny_model, images_dir, out=out, batch_size=16)
    victim = sorted(part_files(out))[0]
    lost = len(_recorded_paths(out)) - pq.read_metadata(victim).num_rows
    victim.unlink()
    assert load_bulk_output(out).vision.shape[0] == lost  # what is committed stays readable
    again = embed_files(tiny_model, images_dir, out=out, batch_size=16)
    assert again.summary()["already_done"] == lost and again.summary()["embedded"] == N_IMAGES - lost
    _assert_same(load_bulk_output(out), first.embeddings)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_job_resumes_without_loss_or_duplicates(
    tiny_model, tiny_dir: Path, images_dir: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", KILL_SCRIPT, str(tiny_dir), str(images_dir), str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    recorded, deadline = 0, time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        recorded = len(part_files(out)) * 4 if (out / INFO).exists() else 0
        if 0 < recorded < N_IMAGES:
            proc.send_signal(sig)
            break
        time.sleep(0.005)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -sig, f"job was not killed midway (rc={proc.returncode}): {stderr.decode()[-2000:]}"

    partial = _recorded_paths(out)  # every committed part is whole and readable
    assert 0 < len(partial) < N_IMAGES

    resumed = embed_files(tiny_model, images_dir, out=out, batch_size=4)
    assert resumed.summary()["already_done"] == len(partial)
    assert resumed.summary()["embedded"] == N_IMAGES - len(partial)
    clean = embed_files(tiny_model, images_dir, batch_size=4)
    loaded = load_bulk_output(out)
    assert loaded.sources["vision"] == _files(images_dir, ".jpg", ".png")
    assert len(set(loaded.sources["vision"])) == N_IMAGES  # each path exactly once
    _assert_same(loaded, clean.embeddings)
    _assert_same(resumed.embeddings, clean.embeddings)


def test_progress_bar(tiny_model, images_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(images_dir.iterdir())[:6]
    embed_files(tiny_model, files, progress=True)
    err = capsys.readouterr().err
    assert "embedding files" in err and "6/6" in err and "file/s" in err
    embed_files(tiny_model, files)  # stderr is not a terminal under pytest: no bar by default
    assert "embedding files" not in capsys.readouterr().err


def test_model_method_is_the_bulk_function(tiny_model, assets_dir):
    from imagebind_sdk import embed_files

    paths = sorted(str(p) for p in assets_dir.glob("*.wav"))
    via_method = tiny_model.embed_files(paths, progress=False)
    via_function = embed_files(tiny_model, paths, progress=False)
    assert via_method.embeddings.sources["audio"] == paths
    assert torch.equal(via_method.embeddings.audio, via_function.embeddings.audio)


# -- bad output folders: each is refused with a message naming the file, or its items are redone --


@pytest.fixture
def done_out(tiny_model, images_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    embed_files(tiny_model, sorted(images_dir.iterdir())[:12], out=out, batch_size=4)
    return out


def _resume_equals_clean(tiny_model, images_dir: Path, out: Path, redone: int) -> None:
    files = sorted(images_dir.iterdir())[:12]
    again = embed_files(tiny_model, files, out=out, batch_size=4)
    assert again.summary()["embedded"] == redone and again.summary()["already_done"] == 12 - redone
    _assert_same(load_bulk_output(out), embed_files(tiny_model, files, batch_size=4).embeddings)
    assert len(_recorded_paths(out)) == 12


@pytest.mark.parametrize("damage", ["truncated", "flipped", "column-name"])
def test_damaged_part_is_named_then_redone(tiny_model, images_dir: Path, done_out: Path, damage: str) -> None:
    victim = sorted(part_files(done_out))[1]
    data = bytearray(victim.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":  # a bit flip inside the embedding pages: caught by the page checksums
        data[len(data) // 3] ^= 0xFF
    else:  # a bit flip in a column name of the footer ("mtime_ns" -> "mtime_nr"): was a bare KeyError
        data[data.index(b"mtime_ns") + 7] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=victim.name):
        load_bulk_output(done_out)
    _resume_equals_clean(tiny_model, images_dir, done_out, redone=4)
    assert (done_out / f"_damaged-{victim.name}.bad").exists()  # kept aside, never read as a part


def test_part_of_another_output_is_refused(tiny_model, images_dir: Path, done_out: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    embed_files(tiny_model, sorted(images_dir.iterdir())[20:24], out=other, batch_size=4)
    stranger = part_files(other)[0]
    shutil.copy(stranger, done_out / stranger.name)
    for call in (lambda: load_bulk_output(done_out), lambda: embed_files(tiny_model, images_dir, out=done_out)):
        with pytest.raises(ValueError, match=f"{stranger.name}: a part file of another output"):
            call()


@pytest.mark.parametrize("dim", [-32, 0, 10**12, "32", True])
def test_info_with_bad_dimension_is_refused(tiny_model, images_dir: Path, done_out: Path, dim) -> None:
    info = json.loads((done_out / INFO).read_text())
    (done_out / INFO).write_text(json.dumps({**info, "embedding_dim": dim}))
    for call in (lambda: load_bulk_output(done_out), lambda: embed_files(tiny_model, images_dir, out=done_out)):
        with pytest.raises(ValueError, match=rf"{INFO}: embedding_dim must be an integer in \[1, 65536\]"):
            call()


def test_other_checkpoint_is_refused(tiny_model, images_dir: Path, done_out: Path) -> None:
    """Outputs without a space (written before spaces) are matched by the checkpoint's path; with
    spaces known, by the space (the same files elsewhere resume; other spaces: tests/test_spaces.py)."""
    info = json.loads((done_out / INFO).read_text())
    moved = {**info, "checkpoint": {"source": "/elsewhere/ckpt", "revision": None}}
    (done_out / INFO).write_text(json.dumps(moved))
    assert embed_files(tiny_model, images_dir, out=done_out).already_done == 12
    del moved["space"]
    (done_out / INFO).write_text(json.dumps(moved))
    with pytest.raises(ValueError, match=f"{INFO} was written with checkpoint .*/elsewhere/ckpt"):
        embed_files(tiny_model, images_dir, out=done_out)


def test_nothing_outside_the_folder_is_read(tiny_model, images_dir: Path, done_out: Path, tmp_path: Path) -> None:
    """A symlinked part (pointing outside), a stray Parquet file and a symlinked info are refused."""
    outside = tmp_path / "outside.parquet"
    shutil.copy(part_files(done_out)[0], outside)
    link = done_out / "part-0000000000000000.parquet"
    link.symlink_to(outside)
    with pytest.raises(ValueError, match=f"{link.name}: not a regular file"):
        load_bulk_output(done_out)
    link.unlink()
    stray = done_out / "mine.parquet"
    shutil.copy(outside, stray)
    with pytest.raises(ValueError, match="mine.parquet: a Parquet file that is not a part"):
        embed_files(tiny_model, images_dir, out=done_out)
    stray.unlink()
    info = done_out / INFO
    (tmp_path / "info.json").write_bytes(info.read_bytes())
    info.unlink()
    info.symlink_to(tmp_path / "info.json")
    with pytest.raises(ValueError, match="not a regular file"):
        load_bulk_output(done_out)


def test_old_format_folder_is_refused(tiny_model, images_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "info.json").write_text('{"format": "imagebind-sdk-bulk", "format_version": 1}')
    (old / "manifest.jsonl").write_text("")
    with pytest.raises(ValueError, match="older imagebind-sdk"):
        embed_files(tiny_model, images_dir, out=old)


def test_bad_options_refused_before_any_file(tiny_model, assets_dir: Path, tmp_path: Path) -> None:
    # Options apply to every file: a bad value or name is the caller's error, not N failed files.
    with pytest.raises(ValueError, match="mode"):
        embed_files(tiny_model, assets_dir / "depth", "depth", options={"depth": {"mode": "metric"}}, out=tmp_path / "o")
    with pytest.raises(ValueError, match="unknown depth option"):
        embed_files(tiny_model, assets_dir / "depth", "depth", options={"depth": {"colour": 1}})
    assert not (tmp_path / "o").exists()
