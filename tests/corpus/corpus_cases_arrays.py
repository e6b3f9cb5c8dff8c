"""Decoded inputs (numpy, tensor, PIL, dicts, tuples) and text with bad values, dtypes, shapes."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from corpus_framework import Case, Ctx, Violation

# kind -> (a valid float array of that kind, embed() keyword arguments besides the item)
BASE: dict[str, tuple[Callable[[], np.ndarray], dict]] = {
    "vision": (lambda: np.random.default_rng(0).random((32, 40, 3), np.float32), {}),
    "depth": (lambda: np.full((32, 40), 2.5, np.float32), {}),
    "thermal": (lambda: np.random.default_rng(1).random((32, 40), np.float32), {}),
    "video": (lambda: np.random.default_rng(2).random((12, 24, 32, 3), np.float32),
              {"preprocess": {"video": {"fps": 4}}}),
    "imu": (lambda: np.sin(np.arange(6 * 300, dtype=np.float32).reshape(6, 300) / 30), {}),
    "audio": (lambda: np.sin(np.arange(32000, dtype=np.float32) / 7) * 0.3, {}),
}


def _wrap(kind: str, array: Any, form: str) -> Any:
    """The array in the given form; audio arrays travel with their sample rate."""
    value = torch.from_numpy(array) if form == "tensor" else array
    if kind == "audio":
        return {"array": value, "sampling_rate": 16000} if form == "dict" else (value, 16000)
    return value


def _item_case(kind: str, form: str, label: str, make: Callable[[], Any], expect: str,
               type_misuse: bool = False) -> Case:
    extra = BASE[kind][1]

    def run(ctx: Ctx) -> Any:
        return ctx.embed(**{kind: [_wrap(kind, make(), form)]}, **extra)

    return Case(f"{kind}/{form}/{label}", kind, expect, run, names=(f"{kind}[0]",), type_misuse=type_misuse)


def _with(base: Callable[[], np.ndarray], fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[], np.ndarray]:
    return lambda: fn(base())


def _poke(value: float) -> Callable[[np.ndarray], np.ndarray]:
    def fn(a: np.ndarray) -> np.ndarray:
        a.flat[a.size // 2] = value
        return a

    return fn


VALUES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "one-nan": (_poke(np.nan), "refuse"),
    "one-inf": (_poke(np.inf), "refuse"),
    "all-1e38": (lambda a: np.full_like(a, 1e38), "either"),
    "all-1e20": (lambda a: np.full_like(a, 1e20), "either"),
    "all-minus-3e38": (lambda a: np.full_like(a, -3e38), "either"),
    "float64": (lambda a: a.astype(np.float64), "ok"),
    "float16": (lambda a: a.astype(np.float16), "either"),
    "complex64": (lambda a: a.astype(np.complex64), "refuse"),
    "bool": (lambda a: a > 0.5, "either"),
    "int64-huge": (lambda a: (a * 2**62).astype(np.int64), "either"),
    "zero-length": (lambda a: a[:0], "refuse"),
    "scalar": (lambda a: np.array(a.flat[0]), "refuse"),
    "rank5": (lambda a: a.reshape(1, 1, 1, 1, -1) if a.ndim != 4 else a[None, None], "refuse"),
    "extra-channels-7": (lambda a: np.repeat(a[..., None], 7, -1) if a.ndim < 4 else np.repeat(a, 3, -1)[..., :7],
                         "refuse"),
}


# Labels also run in the second form (tensor for arrays, dict for audio).
SECOND_FORM = ("one-nan", "all-1e20", "complex64", "zero-length")


def value_cases() -> list[Case]:
    cases = []
    for kind, (base, _) in BASE.items():
        forms = ("tuple", "dict") if kind == "audio" else ("numpy", "tensor")
        for form in forms:
            for label, (fn, expect) in VALUES.items():
                if form in ("tensor", "dict") and label not in SECOND_FORM:
                    continue  # the first form covers the rest
                # Video arrays are uint8 frames only: refusing float frames is a documented choice.
                expect = "either" if kind == "video" and expect == "ok" else expect
                cases.append(_item_case(kind, form, label, _with(base, fn), expect))
        cases.append(_item_case(kind, "numpy" if kind != "audio" else "tuple", "object-dtype",
                                lambda: np.array([[object()] * 4] * 4, dtype=object), "refuse"))
    return cases


def _audio_rate(label: str, rate: Any, expect: str = "refuse") -> Case:
    def run(ctx: Ctx) -> Any:
        return ctx.embed(audio=[(BASE["audio"][0](), rate)])

    return Case(f"audio/tuple/rate-{label}", "audio", expect, run, names=("audio[0]",))


def audio_pair_cases() -> list[Case]:
    rates = {"0": 0, "negative": -16000, "nan": float("nan"), "inf": float("inf"), "1e12": 1e12,
             "fractional": 16000.5, "bool": True, "string": "16000", "none": None, "1hz": 1}
    cases = [_audio_rate(label, rate, "either" if label == "1hz" else "refuse") for label, rate in rates.items()]
    dicts = {
        "dict-no-rate": {"array": BASE["audio"][0]()},
        "dict-empty": {},
        "dict-path-missing": {"path": "/nonexistent/x.wav", "array": None},
        "samples-by-channels": (np.zeros((32000, 2), np.float32), 16000),
        "bare-array": BASE["audio"][0](),
        "list-of-lists-ragged": ([[0.1, 0.2], [0.3]], 16000),
        "triple": (BASE["audio"][0](), 16000, "x"),
    }
    for label, item in dicts.items():
        cases.append(Case(f"audio/{label}", "audio", "refuse",
                          lambda ctx, item=item: ctx.embed(audio=[item]), names=("audio[0]",)))
    return cases


def _pil(label: str, make: Callable[[], Image.Image], expect: str, kind: str = "vision") -> Case:
    return Case(f"{kind}/pil/{label}", kind, expect, lambda ctx: ctx.embed(**{kind: [make()]}), names=(f"{kind}[0]",))


def pil_cases() -> list[Case]:
    rgb = np.random.default_rng(3).integers(0, 256, (30, 50, 3), np.uint8)
    return [
        _pil("rgb", lambda: Image.fromarray(rgb), "ok"),
        _pil("cmyk", lambda: Image.fromarray(rgb).convert("CMYK"), "ok"),
        _pil("mode-F-1e38", lambda: Image.fromarray(np.full((20, 20), 1e38, np.float32), "F"), "either"),
        _pil("mode-F-nan", lambda: Image.fromarray(np.full((20, 20), np.nan, np.float32), "F"), "refuse"),
        _pil("mode-F-one-inf", lambda: Image.fromarray(np.eye(20, dtype=np.float32) * np.inf), "refuse"),
        _pil("mode-I-huge", lambda: Image.fromarray(np.full((20, 20), 2**31 - 1, np.int32), "I"), "either"),
        _pil("zero-size", lambda: Image.new("RGB", (0, 0)), "refuse"),
        _pil("1x30000", lambda: Image.new("RGB", (30000, 1)), "refuse"),
        _pil("mode-F-nan", lambda: Image.fromarray(np.full((20, 20), np.nan, np.float32), "F"), "refuse", "depth"),
        _pil("mode-F-inf", lambda: Image.fromarray(np.full((20, 20), np.inf, np.float32), "F"), "refuse", "thermal"),
        _pil("rgba", lambda: Image.fromarray(rgb).convert("RGBA"), "either", "thermal"),
    ]


def _equal_case(kind: str, label: str, make: Callable[[Ctx], Any], ref: Callable[[Ctx], Any], rows: int = 1) -> Case:
    return Case(f"{kind}/{label}", kind, "ok", lambda ctx: ctx.embed(**{kind: make(ctx)})[kind],
                rows=rows, reference=lambda ctx: ctx.embed(**{kind: ref(ctx)})[kind])


def equivalence_cases() -> list[Case]:
    rgb = np.random.default_rng(4).integers(0, 256, (40, 30, 3), np.uint8)
    imu = BASE["imu"][0]()
    wave = BASE["audio"][0]()
    return [
        _equal_case("vision", "numpy/uint8-same-as-pil", lambda c: [rgb], lambda c: [Image.fromarray(rgb)]),
        _equal_case("vision", "tensor/uint8-chw-same-as-pil", lambda c: [torch.from_numpy(rgb).permute(2, 0, 1)],
                    lambda c: [Image.fromarray(rgb)]),
        _equal_case("vision", "numpy/batch-nhwc-is-n-images", lambda c: np.stack([rgb, rgb[::-1]]),
                    lambda c: [rgb, np.ascontiguousarray(rgb[::-1])], rows=2),
        _equal_case("imu", "numpy/time-by-channels-same", lambda c: [np.ascontiguousarray(imu.T)], lambda c: [imu]),
        _equal_case("audio", "dict/same-as-tuple", lambda c: [{"array": wave, "sampling_rate": 16000}],
                    lambda c: [(wave, 16000)]),
        _equal_case("audio", "tuple/int16-same-as-float", lambda c: [((wave * 32768).astype(np.int16), 16000)],
                    lambda c: [(((wave * 32768).astype(np.int16) / 32768).astype(np.float32), 16000)]),
    ]


def _nonfinite_output(label: str, run: Callable[[Ctx], Any], expect: str = "either", names=("vision[0]",),
                      rows: int = 1) -> Case:
    return Case(f"output/{label}", "vision", expect, run, names=names, rows=rows)


def _skip_nonfinite(ctx: Ctx) -> Any:
    good = torch.zeros(3, 224, 224)
    out = ctx.embed(vision=[good, torch.full((3, 224, 224), 1e20)], on_error="skip")
    if out.vision.shape[0] == 1 and [s.index for s in out.skipped.get("vision", [])] != [1]:
        raise Violation(f"row dropped but skipped lists {out.skipped!r}")
    return out


def output_cases() -> list[Case]:
    """Issue 9 A.1: finite but huge preprocessed inputs must not come out as NaN rows."""
    return [
        _nonfinite_output("vision-tensor-1e20", lambda c: c.embed(vision=torch.full((3, 224, 224), 1e20))),
        _nonfinite_output("vision-skip-1e20", _skip_nonfinite),
        Case("output/encode-audio-1e20", "audio", "either",
             lambda c: c.model.encode("audio", torch.full((1, 3, 1, 128, 204), 1e20)), names=("audio",)),
        Case("output/audio-3e38-skip", "audio", "ok", _skip_audio_overflow, rows=1),
        Case("output/encode-vision-wrong-shape", "vision", "refuse",
             lambda c: c.model.encode("vision", torch.zeros(1, 3, 100, 100)), names=("vision",)),
        Case("output/encode-unknown-modality", "vision", "refuse",
             lambda c: c.model.encode("image", torch.zeros(1, 3, 224, 224)), names=("image",)),
    ]


def _skip_audio_overflow(ctx: Ctx) -> Any:
    sign = np.sign(np.sin(np.arange(32000)))
    out = ctx.embed(audio=[(BASE["audio"][0](), 16000), (np.full(32000, 3e38) * sign, 16000)], on_error="skip")
    if [s.index for s in out.skipped.get("audio", [])] != [1]:
        raise Violation(f"the 3e38 item was not listed as skipped: {out.skipped!r}")
    return out


def _text(label: str, value: Any, expect: str, rows: int = 1, names=("text",), misuse: bool = False) -> Case:
    return Case(f"text/{label}", "text", expect, lambda ctx: ctx.embed(text=value), names=names, rows=rows,
                type_misuse=misuse)


def _zero_shot(ctx: Ctx) -> Any:
    result = ctx.model.zero_shot("dog,cat", vision=[np.zeros((20, 20, 3), np.uint8)])
    if len(result.labels) != 2:
        raise Violation(f"'dog,cat' scored as labels {result.labels}")
    return None


def text_cases() -> list[Case]:
    return [
        _text("empty-string", "", "ok"),
        _text("one-million-chars", "dog " * 250_000, "ok"),
        _text("unicode-garbage", "\u202e\u0000\ufeff\U0001f436\u200b" * 500, "ok"),
        _text("lone-surrogate", "a dog \ud800", "either", names=("text[0]",)),
        _text("empty-list", [], "ok", rows=0),
        _text("int", 5, "refuse", misuse=True),
        _text("bytes", b"a dog", "refuse", misuse=True),
        _text("none-in-list", ["a dog", None], "refuse", names=("text[1]",), misuse=True),
        Case("text/python-name-image", "text", "refuse",
             lambda c: c.model.embed(image=[np.zeros((8, 8, 3), np.uint8)]), names=("vision",), type_misuse=True),
        Case("text/zero-shot-comma-string", "text", "ok", _zero_shot),
        Case("text/zero-shot-one-label", "text", "refuse",
             lambda c: c.model.zero_shot(["dog"], vision=[np.zeros((20, 20, 3), np.uint8)]), names=("label",)),
    ]


def cases() -> list[Case]:
    return value_cases() + audio_pair_cases() + pil_cases() + equivalence_cases() + output_cases() + text_cases()
