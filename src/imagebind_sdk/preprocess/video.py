"""Video -> the vision encoder's video input: 5 clips x 3 crops of 2 frames each.

The reference (ImageBind's ``load_and_transform_video_data``, built on pytorchvideo
and decord) places 5 clips of 2 s evenly over the video, keeps the first and last
frame of each, scales the short side to 224 (bilinear), normalises with the CLIP
statistics and takes three 224-pixel crops along the long side. This module does
the same with PyAV, whose ``rgb24`` frames equal decord's, and decodes only as far
as needed: it indexes the packets first (cheap, no decoding), then decodes towards
the 10 wanted frames, seeking to a keyframe when that skips a long stretch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO, Callable, Iterator

import av
import numpy as np
import torch

from .containers import VIDEO_FORMATS, open_container
from .image import IMAGE_SIZE, check_size
from .options import positive_number
from .sources import InputError, as_binary_stream, source_kind, tensor_to_numpy
from .video_timeline import CLIP_SECONDS, FRAMES_PER_CLIP, NUM_CLIPS, Timeline, clip_indices, timeline_of  # noqa: F401 (re-exported)
from .vision import MEAN, STD

logger = logging.getLogger(__name__)

CROP_SIZE = IMAGE_SIZE
NUM_CROPS = 3
ITEM_SHAPE = (NUM_CLIPS * NUM_CROPS, 3, FRAMES_PER_CLIP, CROP_SIZE, CROP_SIZE)
# Seek to a keyframe instead of decoding on only when that skips at least this many frames.
SEEK_MIN_FRAMES = 64
# Refuse video frames with more pixels than this (DCI 4K, 4096 x 2304 at most), read from the
# stream header before any frame is decoded: a one-frame 8192 x 8192 H.264 file of 198 KB
# decoded to 3-5 GB. Up to this size a decode stays under ~300 MB (one frame at a time).
MAX_VIDEO_PIXELS = 4096 * 2304
# Frame rates above this are a unit mistake (fps given in frames per ms, ...), not a camera.
MAX_FPS = 1_000_000.0


def preprocess(item: Any, *, fps: float | None = None) -> torch.Tensor:
    """One video -> float32 tensor (15, 3, 2, 224, 224), clip-major then crop.

    ``item`` is a path, bytes or a binary file object holding an encoded video, or
    decoded frames ``(T, H, W, 3)`` uint8 (numpy or torch) together with ``fps``.
    ``fps`` applies to decoded frames only; files use their stream's average rate.
    """
    check_options(fps=fps)
    if isinstance(item, (np.ndarray, torch.Tensor)):
        frames = _frames_from_array(item)
        if fps is None:
            raise InputError("decoded frames need their frame rate: pass fps=<frames per second>")
        indices = clip_frame_indices(frames.shape[0], float(fps))
        return frames_to_model_input(np.asarray(frames[indices]))
    if source_kind(item) is not None:  # each frame scaled as soon as it is decoded
        return scaled_to_model_input(decode_frames(item, Timeline.clip_frames, transform=scaled_frame))
    raise InputError(
        "expected a video path, bytes, file object or (T, H, W, 3) uint8 frames, "
        f"got {type(item).__name__}"
    )


def check_options(*, fps: float | None = None) -> None:
    """ValueError for an invalid option value (checked before any item is read)."""
    if fps is not None and positive_number("fps", fps, "frames per second") > MAX_FPS:
        raise ValueError(f"fps must be at most {MAX_FPS:g} frames per second, got {fps!r}")


def check_frame_size(width: int, height: int) -> None:
    """InputError for a frame over ``MAX_VIDEO_PIXELS`` or one :func:`.image.check_size` refuses."""
    if width * height > MAX_VIDEO_PIXELS:
        raise InputError(
            f"video frame is {width}x{height} = {width * height} pixels, over the {MAX_VIDEO_PIXELS}-pixel "
            "limit for videos (checked before decoding); raise "
            "imagebind_sdk.preprocess.video.MAX_VIDEO_PIXELS to allow it"
        )
    check_size(width, height, "video frame")


def clip_frame_indices(num_frames: int, fps: float) -> list[int]:
    """Indices of the frames kept, clip by clip, frames placed at the rate ``fps`` (the
    reference's placement, see :mod:`.video_timeline`)."""
    return Timeline(fps, num_frames).clip_frames()


def frames_to_model_input(frames: np.ndarray) -> torch.Tensor:
    """(NUM_CLIPS * FRAMES_PER_CLIP, H, W, 3) uint8 -> (15, 3, 2, 224, 224).

    As the reference: scale to [0, 1], short side to 224, normalise, three crops.
    """
    return scaled_to_model_input([scaled_frame(frame) for frame in frames])


def scaled_to_model_input(scaled: list[torch.Tensor]) -> torch.Tensor:
    """NUM_CLIPS * FRAMES_PER_CLIP frames from :func:`scaled_frame` -> (15, 3, 2, 224, 224)."""
    clips = [torch.stack(scaled[k : k + FRAMES_PER_CLIP], dim=1) for k in range(0, len(scaled), FRAMES_PER_CLIP)]
    return torch.stack([crop for clip in clips for crop in normalised_crops(clip)])


def clip_crops(clip_frames: np.ndarray) -> list[torch.Tensor]:
    """One clip's (FRAMES_PER_CLIP, H, W, 3) uint8 frames -> its NUM_CROPS (3, 2, 224, 224) crops."""
    return normalised_crops(torch.stack([scaled_frame(frame) for frame in clip_frames], dim=1))


def scaled_frame(frame: np.ndarray) -> torch.Tensor:
    """One (H, W, 3) uint8 frame -> float (3, h, w) in [0, 1], short side 224.

    Frame by frame, as soon as it is decoded: a frame costs its own float copy, never a
    whole clip's (the reference scales the clip (C, T, H, W) at once; bilinear scaling
    treats T as a batch, so each frame's numbers are the same to the last bit).
    """
    pixels = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[:, None]  # C, 1, H, W
    return short_side_scale(pixels.float().div_(255.0), CROP_SIZE)[:, 0]


def normalised_crops(clip: torch.Tensor) -> list[torch.Tensor]:
    """A scaled clip (3, T, h, w) -> its NUM_CROPS normalised (3, T, 224, 224) crops."""
    mean = torch.tensor(MEAN, dtype=torch.float32)[:, None, None, None]
    std = torch.tensor(STD, dtype=torch.float32)[:, None, None, None]
    return three_crops((clip - mean) / std, CROP_SIZE)


def short_side_scale(video: torch.Tensor, size: int) -> torch.Tensor:
    """(C, T, H, W): bilinear resize so the short side is ``size`` (pytorchvideo's sizes)."""
    height, width = video.shape[-2:]
    if width < height:
        new_h, new_w = int(math.floor(float(height) / width * size)), size
    else:
        new_h, new_w = size, int(math.floor(float(width) / height * size))
    return torch.nn.functional.interpolate(video, size=(new_h, new_w), mode="bilinear", align_corners=False)


def three_crops(clip: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Crops of size² at the start, centre and end of the long side of (C, T, H, W)."""
    height, width = clip.shape[-2:]
    y_mid, x_mid = math.ceil((height - size) / 2), math.ceil((width - size) / 2)
    if height > width:
        offsets = [(0, x_mid), (y_mid, x_mid), (height - size, x_mid)]
    else:
        offsets = [(y_mid, 0), (y_mid, x_mid), (y_mid, width - size)]
    return [clip[..., y : y + size, x : x + size] for y, x in offsets]


def _frames_from_array(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """Decoded frames (T, H, W, 3) uint8 -> numpy (a view where possible)."""
    if isinstance(frames, torch.Tensor):
        frames = tensor_to_numpy(frames)
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise InputError(
            f"expected decoded frames of shape (T, H, W, 3), found shape {tuple(frames.shape)}"
        )
    if frames.dtype != np.uint8:
        raise InputError(f"expected decoded frames of dtype uint8, found dtype {frames.dtype}")
    if 0 in frames.shape:
        raise InputError(f"decoded frames are empty: shape {tuple(frames.shape)}")
    check_size(frames.shape[2], frames.shape[1], "video frame")  # already in memory: the image guards only
    return frames


@dataclass
class _PacketIndex:
    """What a demux pass learns: frame count, and pts/keyframes in display order."""

    count: int
    pts: list[int] | None  # sorted presentation timestamps; None if any is missing/duplicated
    keyframes: list[int]  # display-order indices of keyframes (empty without pts)
    time_base: Fraction | None = None

    def timeline(self, fps: float) -> Timeline:
        return timeline_of(fps, self.pts, self.time_base, self.count)


def decode_clip_frames(item: Any) -> np.ndarray:
    """Encoded video -> the wanted frames (NUM_CLIPS * FRAMES_PER_CLIP, H, W, 3) uint8."""
    return decode_frames(item, Timeline.clip_frames)


def probe(item: Any) -> tuple[float, int]:
    """(frame rate, frame count) of an encoded video, from demuxing only (no decoding)."""
    timeline = probe_timeline(item)
    return timeline.fps, timeline.count


def probe_timeline(item: Any) -> Timeline:
    """The :class:`Timeline` (frame rate, count, timestamps if the rate varies) of an
    encoded video, from demuxing only (no decoding)."""
    stream = as_binary_stream(item)
    try:
        fps, index = _scan(stream)
        return index.timeline(fps)
    finally:
        if stream is not item:
            stream.close()


def decode_frames(
    item: Any,
    indices: list[int] | Callable[[Timeline], list[int]],
    transform: Callable[[np.ndarray], Any] | None = None,
) -> Any:
    """Frames ``indices`` (display order) of an encoded video: ``(len(indices), H, W, 3)`` uint8.

    ``indices`` may be a function of the stream's :class:`Timeline` (frame count, rate
    and, for a variable frame rate, timestamps), evaluated after the demux pass. Only
    the frames up to the last wanted are decoded, seeking to a keyframe over long gaps; frame sizes are checked (:func:`check_frame_size`) from
    the stream header before anything is decoded. With ``transform``, each wanted RGB
    frame is handed to it as soon as it is decoded and the list of its results is
    returned (so no full-size frame outlives its transform).
    """
    stream = as_binary_stream(item)
    start = stream.tell()
    try:
        fps, index = _scan(stream)
        wanted = indices(index.timeline(fps)) if callable(indices) else list(indices)
        if not wanted or min(wanted) < 0 or max(wanted) >= index.count:
            raise InputError(f"expected frame indices in 0..{index.count - 1}, got {wanted}")
        convert = transform or (lambda rgb: rgb)
        frames = None
        if index.pts is not None:
            stream.seek(start)
            frames = _decode_by_pts(stream, index, sorted(set(wanted)), convert)
        if frames is None:
            stream.seek(start)
            frames = _decode_by_count(stream, sorted(set(wanted)), convert)
        return [frames[i] for i in wanted] if transform else np.stack([frames[i] for i in wanted])
    finally:
        if stream is not item:
            stream.close()


def decode_in_order(stream: BinaryIO, wanted: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Decode from the start, yielding ``(index, frame)`` for each of the sorted ``wanted``
    display-order indices as it is decoded; stops after the last. Frames the stream lacks
    (fewer decode than were indexed) repeat the last decoded one, as :func:`decode_frames`."""
    container, video = _open(stream)
    size, position, last = _stream_size(video), 0, None
    with container:
        try:
            for count, frame in enumerate(container.decode(video)):
                last = frame
                while position < len(wanted) and wanted[position] == count:
                    yield count, _to_rgb(frame, size)
                    position += 1
                if position == len(wanted):
                    return
        except av.FFmpegError as exc:
            raise InputError(f"video is corrupt: decoding failed ({exc})") from exc
        if last is None:
            raise InputError("video stream holds no decodable frames")
        logger.warning("video decoded fewer frames than indexed; reusing the last for %s", wanted[position:])
        fill = _to_rgb(last, size)
    yield from ((index, fill) for index in wanted[position:])


def _open(stream: BinaryIO) -> tuple[Any, Any]:
    """Open a container and its first video stream, or raise InputError."""
    container = open_container(stream, VIDEO_FORMATS, "video", max_pixels=MAX_VIDEO_PIXELS)
    if not container.streams.video:
        container.close()
        raise InputError("expected a file with a video stream, found none")
    video = container.streams.video[0]
    size = _stream_size(video)
    if size is not None:
        try:
            check_frame_size(*size)  # from the header: before demuxing or decoding
        except InputError:
            container.close()
            raise
    return container, video


def _scan(stream: BinaryIO) -> tuple[float, _PacketIndex]:
    """Frame rate (float, as decord) and a packet index, from demuxing without decoding."""
    container, video = _open(stream)
    with container:
        rate = video.average_rate or video.guessed_rate or video.base_rate
        time_base = video.time_base
        if not rate or rate <= 0:
            raise InputError("video stream has no usable frame rate")
        pts, keys = [], []
        try:
            for packet in container.demux(video):
                if packet.size:
                    pts.append(packet.pts)
                    keys.append(bool(packet.is_keyframe))
        except av.FFmpegError as exc:
            raise InputError(f"video is corrupt: demuxing failed ({exc})") from exc
    if not pts:
        raise InputError("video stream holds no frames")
    if any(p is None for p in pts) or len(set(pts)) != len(pts):
        return float(rate), _PacketIndex(len(pts), None, [])
    order = sorted(pts)
    position = {p: i for i, p in enumerate(order)}
    keyframes = sorted(position[p] for p, key in zip(pts, keys) if key)
    return float(rate), _PacketIndex(len(pts), order, keyframes, time_base)


def _stream_size(video: Any) -> tuple[int, int] | None:
    width, height = video.codec_context.width, video.codec_context.height
    return (width, height) if width and height else None


def _to_rgb(frame: Any, size: tuple[int, int] | None) -> np.ndarray:
    """A decoded frame -> (H, W, 3) uint8 RGB, scaled to the stream's size if it differs."""
    if size is None:
        check_frame_size(frame.width, frame.height)
        return frame.to_ndarray(format="rgb24")
    if (frame.width, frame.height) == size:
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(format="rgb24", width=size[0], height=size[1])


def _decode_by_pts(
    stream: BinaryIO, index: _PacketIndex, wanted: list[int], convert: Callable[[np.ndarray], Any]
) -> dict[int, Any] | None:
    """Decode the wanted frames, naming frames by pts and seeking over long gaps.

    Returns None when decoded timestamps do not match the packet index (the caller
    then falls back to counting frames from the start).
    """
    container, video = _open(stream)
    lookup = {p: i for i, p in enumerate(index.pts)}
    size = _stream_size(video)
    found: dict[int, Any] = {}
    position, decoder = -1, None
    with container:
        try:
            for target in wanted:
                key = max((k for k in index.keyframes if k <= target), default=0)
                if decoder is None or key - position > SEEK_MIN_FRAMES:
                    if key > 0:
                        logger.debug("seeking to keyframe %d for frame %d", key, target)
                        container.seek(index.pts[key], stream=video, backward=True)
                    decoder = container.decode(video)
                for frame in decoder:
                    position = lookup.get(frame.pts, -2)
                    if position == -2:
                        return None
                    if position in wanted:
                        found[position] = convert(_to_rgb(frame, size))
                    if position >= target:
                        break
                if target not in found:
                    return None
        except av.FFmpegError as exc:
            raise InputError(f"video is corrupt: decoding failed ({exc})") from exc
    return found


def _decode_by_count(stream: BinaryIO, wanted: list[int], convert: Callable[[np.ndarray], Any]) -> dict[int, Any]:
    """Decode from the start, numbering frames in display order; stop after the last wanted."""
    container, video = _open(stream)
    size = _stream_size(video)
    found: dict[int, Any] = {}
    last, count = None, 0
    with container:
        try:
            for count, frame in enumerate(container.decode(video)):
                if count in wanted:
                    found[count] = convert(_to_rgb(frame, size))
                last = frame
                if count >= wanted[-1]:
                    break
        except av.FFmpegError as exc:
            raise InputError(f"video is corrupt: decoding failed ({exc})") from exc
        if last is None:
            raise InputError("video stream holds no decodable frames")
        missing = [i for i in wanted if i not in found]
        if missing:  # fewer frames decode than packets were indexed: reuse the last one
            logger.warning("video decoded only %d frames; reusing the last for %s", count + 1, missing)
            fill = convert(_to_rgb(last, size))
            found.update({i: fill for i in missing})
    return found
