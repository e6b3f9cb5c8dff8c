"""Encoded inputs (path, bytes, file object) of every file kind with bad content.

Each kind x form x content: empty, truncated, random bytes, wrong magic (a file of
another kind), unicode garbage; decompression bombs for images; lying WAV
headers; absurd video frames; odd-but-valid files that must give the same vector as
the reference path; a bad item in a batch, raised and skipped.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

import corpus_builders as B
from corpus_framework import Case, Ctx, Violation

FORMS = ("path", "bytes", "file")
EXT = {"vision": "jpg", "depth": "png", "thermal": "jpg", "audio": "wav", "video": "mp4", "imu": "csv"}
UNICODE_GARBAGE = "\ufeff\u202e\x00\ud7ff\U0001f600 caf\u00e9 \u0000\u200b" * 40


@lru_cache(maxsize=None)
def _video_bytes(width: int = 64, height: int = 48, frames: int = 20) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return B.video_file(Path(tmp) / "v.mp4", width, height, frames).read_bytes()


def valid_bytes(kind: str, ctx: Ctx) -> bytes:
    """A small valid encoded file of ``kind``."""
    return {
        "vision": lambda: (ctx.assets / "dog_image.jpg").read_bytes(),
        "depth": lambda: (ctx.assets / "depth" / "010002.jpg").read_bytes(),
        "thermal": lambda: (ctx.assets / "thermal" / "190001.jpg").read_bytes(),
        "audio": lambda: (ctx.assets / "dog_audio.wav").read_bytes(),
        "video": lambda: _video_bytes(),
        "imu": lambda: B.csv_text().encode(),
    }[kind]()


def wrong_magic(kind: str) -> bytes:
    return B.wav_bytes() if kind in ("vision", "depth", "thermal", "video", "imu") else B.image_bytes("PNG")


BAD_CONTENT: dict[str, Callable[[str, Ctx], bytes]] = {
    "empty": lambda kind, ctx: b"",
    "truncated": lambda kind, ctx: B.truncated(valid_bytes(kind, ctx), 0.3),
    "random": lambda kind, ctx: B.random_bytes(),
    "wrong-magic": lambda kind, ctx: wrong_magic(kind),
    "unicode-garbage": lambda kind, ctx: UNICODE_GARBAGE.encode("utf-8", "surrogatepass"),
}
# Truncated audio/CSV/video may still hold a usable prefix: decoding it or refusing are both right.
TRUNCATED_EITHER = {"audio", "imu", "video"}


def as_form(ctx: Ctx, form: str, name: str, data: bytes) -> Any:
    """The same content as a path string, bytes or an open binary file object."""
    if form == "bytes":
        return data
    path = ctx.file(name, data)
    return str(path) if form == "path" else open(path, "rb")


def _bad(kind: str, form: str, content: str, maker: Callable[[str, Ctx], bytes], expect: str) -> Case:
    name = f"{kind}_{form}_{content}.{EXT[kind]}"

    def run(ctx: Ctx) -> Any:
        return ctx.embed(**{kind: [as_form(ctx, form, name, maker(kind, ctx))]})

    return Case(f"{kind}/{form}/{content}", kind, expect, run, names=(f"{kind}[0]",))


def bad_content_cases() -> list[Case]:
    cases = []
    for kind in EXT:
        for form in FORMS:
            for content, maker in BAD_CONTENT.items():
                either = content == "truncated" and kind in TRUNCATED_EITHER
                cases.append(_bad(kind, form, content, maker, "either" if either else "refuse"))
    return cases


def _bomb(kind: str, form: str, label: str, data: Callable[[], bytes], expect: str = "refuse") -> Case:
    def run(ctx: Ctx) -> Any:
        return ctx.embed(**{kind: as_form(ctx, form, f"{kind}_{label}.{label.split('-')[0]}", data())})

    return Case(f"{kind}/{form}/{label}", kind, expect, run, names=(f"{kind}[0]",))


def bomb_cases() -> list[Case]:
    cases = []
    for form in ("path", "bytes"):
        cases += [
            _bomb("vision", form, "png-bomb-60000x60000", B.png_bomb),
            _bomb("vision", form, "jpg-bomb-65000x65000", B.jpeg_bomb),
            _bomb("vision", form, "gif-bomb-65535x65535", B.gif_bomb),
            _bomb("depth", form, "png-bomb-16bit", lambda: B.png_bomb(50000, 50000, 16, 0)),
            _bomb("thermal", form, "png-bomb-grey", lambda: B.png_bomb(50000, 50000, 8, 0)),
            _bomb("vision", form, "png-aspect-1x40000", lambda: B.image_bytes("PNG", (40000, 1))),
            _bomb("vision", form, "png-zero-width", lambda: B.png_bomb(0, 10)),
        ]
    cases += [
        _bomb("vision", "bytes", "png-1x1", lambda: B.image_bytes("PNG", (1, 1)), "either"),
        _bomb("vision", "bytes", "png-16bit-grey", lambda: B.image_bytes("PNG", (40, 30), "I;16"), "either"),
        _bomb("vision", "bytes", "tiff-float", lambda: _float_tiff(1e38), "either"),
        _bomb("vision", "bytes", "tiff-float-nan", lambda: _float_tiff(np.nan)),
    ]
    return cases


def _float_tiff(value: float) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32), value, np.float32), mode="F").save(buf, format="TIFF")
    return buf.getvalue()


def _wav(form: str, label: str, data: Callable[[], bytes], expect: str = "refuse") -> Case:
    def run(ctx: Ctx) -> Any:
        return ctx.embed(audio=[as_form(ctx, form, f"audio_{label}.wav", data())])

    return Case(f"audio/{form}/{label}", "audio", expect, run, names=("audio[0]",))


def audio_header_cases() -> list[Case]:
    cases = []
    for form in FORMS:
        cases += [
            # A header claiming ~2e9 samples over 1000 real ones: decode what is there or refuse.
            _wav(form, "lying-size-1e9-samples", B.wav_lying, "either"),
            _wav(form, "zero-sample-rate", lambda: B.wav_lying(2000, rate=0)),
            _wav(form, "zero-channels", lambda: B.wav_lying(2000, channels=0)),
        ]
    cases += [
        _wav("bytes", "rate-4000000000", lambda: B.wav_lying(2000, rate=4_000_000_000)),
        _wav("bytes", "65535-channels", lambda: B.wav_lying(2000, channels=65535)),
        _wav("bytes", "10-samples", lambda: B.wav_bytes(np.zeros(10, np.int16)), "either"),
        _wav("bytes", "0-samples", lambda: B.wav_bytes(np.zeros(0, np.int16))),
        _wav("bytes", "rate-1hz", lambda: B.wav_bytes(np.zeros(100, np.int16), rate=1), "either"),
    ]
    return cases


def _video(label: str, make: Callable[[Path], Path], expect: str = "refuse", timeout: float = 60.0) -> Case:
    def run(ctx: Ctx) -> Any:
        return ctx.embed(video=[str(make(ctx.tmp / f"video_{label}.mp4"))])

    return Case(f"video/path/{label}", "video", expect, run, names=("video[0]",), timeout=timeout)


def video_cases() -> list[Case]:
    return [
        # Issue 9 B.5: 20 frames of 8000x16 took 21 s and 4.4 GB.
        _video("frames-8000x16", lambda p: B.video_file(p, 8000, 16, 20)),
        _video("frames-16x4000", lambda p: B.video_file(p, 16, 4000, 4)),
        _video("one-frame", lambda p: B.video_file(p, 32, 32, 1), "either"),
        _video("2000-frames-16x16", lambda p: B.video_file(p, 16, 16, 2000, fps=100), "either"),
    ]


def _same_as_path(kind: str, form: str, path_of: Callable[[Ctx], Path]) -> Case:
    def run(ctx: Ctx) -> Any:
        path = path_of(ctx)
        item: Any = path.read_bytes() if form == "bytes" else open(path, "rb")
        return ctx.embed(**{kind: [item]})[kind]

    def reference(ctx: Ctx) -> Any:
        return ctx.embed(**{kind: [str(path_of(ctx))]})[kind]

    return Case(f"{kind}/{form}/same-as-path", kind, "ok", run, reference=reference, timeout=60.0)


def _asset(*parts: str) -> Callable[[Ctx], Path]:
    return lambda ctx: ctx.assets.joinpath(*parts)


def _generated(kind: str) -> Callable[[Ctx], Path]:
    return lambda ctx: ctx.file(f"{kind}_valid.{EXT[kind]}", valid_bytes(kind, ctx))


def equivalence_cases() -> list[Case]:
    paths = {
        "vision": _asset("cmyk_0.jpg"), "depth": _asset("depth", "010003.jpg"),
        "thermal": _asset("thermal", "190002.jpg"), "audio": _asset("mid_22k_stereo_0.flac"),
        "video": _generated("video"), "imu": _asset("imu", "imu3_4k.csv"),
    }
    cases = [_same_as_path(kind, form, path) for kind, path in paths.items() for form in ("bytes", "file")]
    for name in ("palette_0.gif", "alpha_0.png", "exif_rotated_0.jpg", "tall_0.png", "gray_small_0.png"):
        cases.append(_same_as_path("vision", "bytes", _asset(name)))
        cases[-1] = Case(f"vision/bytes/same-as-path-{name}", "vision", "ok", cases[-1].run,
                         reference=cases[-1].reference)
    return cases


def _batch(kind: str, on_error: str) -> Case:
    def run(ctx: Ctx) -> Any:
        good = str(_generated(kind)(ctx))
        out = ctx.embed(**{kind: [good, good, ctx.file(f"bad.{EXT[kind]}", B.random_bytes())]}, on_error=on_error)
        if on_error == "skip" and [s.index for s in out.skipped.get(kind, [])] != [2]:
            raise Violation(f"skipped {out.skipped!r}, expected index 2 listed")
        return out

    expect = "ok" if on_error == "skip" else "refuse"
    return Case(f"{kind}/batch/bad-third-{on_error}", kind, expect, run, names=(f"{kind}[2]", "bad."),
                rows=2, timeout=60.0)


def batch_cases() -> list[Case]:
    return [_batch(kind, on_error) for kind in EXT for on_error in ("raise", "skip")]


def missing_path_cases() -> list[Case]:
    def missing(kind: str) -> Case:
        return Case(f"{kind}/path/missing", kind, "refuse",
                    lambda ctx: ctx.embed(**{kind: str(ctx.tmp / f"nope.{EXT[kind]}")}), names=(f"{kind}[0]", "nope"))

    def directory(kind: str) -> Case:
        return Case(f"{kind}/path/directory", kind, "refuse",
                    lambda ctx: ctx.embed(**{kind: str(ctx.tmp)}), names=(f"{kind}[0]",))

    def text_mode(kind: str) -> Case:
        def run(ctx: Ctx) -> Any:
            path = ctx.file(f"tm.{EXT[kind]}", valid_bytes(kind, ctx))
            out = ctx.embed(**{kind: open(path, "r", encoding="latin-1")})
            return out[kind]

        # CSV is text: a text-mode file object is a fine IMU input; binary formats must say "rb".
        expect, reference = ("ok", lambda ctx: ctx.embed(imu=valid_bytes("imu", ctx)).imu) if kind == "imu" \
            else ("refuse", None)
        return Case(f"{kind}/file/text-mode", kind, expect, run, names=(f"{kind}[0]",), reference=reference)

    return [make(kind) for kind in EXT for make in (missing, directory, text_mode)]


def cases() -> list[Case]:
    return (bad_content_cases() + bomb_cases() + audio_header_cases() + video_cases()
            + equivalence_cases() + batch_cases() + missing_path_cases())
