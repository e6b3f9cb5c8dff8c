"""The files behind items: the original (with range requests, for players that seek) and a small JPEG.

Only paths the catalog lists are ever opened, looked up by item id: a client cannot
name a path; and only media files among them (by extension). A file that changed kind on disk (e.g. replaced by a directory or a
link to one) is refused rather than followed.
"""

from __future__ import annotations

import bisect

import io
import mimetypes
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..kinds import infer_kind
from ..server.errors import ApiError
from .catalog import Catalog, Item

THUMBNAIL_PX = 320  # the long side; the page shows results at most ~300 px wide
THUMBNAIL_CACHE = 512  # thumbnails kept in memory (~20 kB each)
IMAGE_KINDS = ("vision", "depth", "thermal")
EXTRA_TYPES = {".flac": "audio/flac", ".opus": "audio/ogg", ".m4a": "audio/mp4", ".webm": "video/webm",
               ".mkv": "video/x-matroska", ".csv": "text/csv"}


def lookup(catalog: Catalog, item_id: int) -> Item:
    try:
        return catalog.item(item_id)
    except KeyError as exc:
        raise ApiError(404, str(exc.args[0])) from None


def media_file(item: Item) -> tuple[Path, str]:
    """The item's file (a regular media file that still exists) and its MIME type.

    A bulk output may come from elsewhere (``serve --index``) and its paths are data: only
    files with a media extension are served, so a listed ``/etc/passwd`` or key file is not.
    """
    path = Path(item.path)
    if infer_kind(path) is None:
        raise ApiError(404, f"item {item.id}: {path.name} is not a media file (by its extension); "
                            "only image, audio, video and IMU .csv files are served")
    if not path.is_file():
        raise ApiError(404, f"item {item.id}: its file {item.path} is gone or is not a regular file")
    suffix = path.suffix.lower()
    media_type = EXTRA_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path, media_type


def _jpeg(image: "object") -> bytes:
    from PIL import Image

    assert isinstance(image, Image.Image)
    image = image.convert("RGB")
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=82)
    return buffer.getvalue()


def _image_thumbnail(path: Path) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(path) as image:  # PIL's decompression-bomb limit applies
        image.draft("RGB", (THUMBNAIL_PX * 2, THUMBNAIL_PX * 2))  # JPEG: decode at a reduced size
        return _jpeg(ImageOps.exif_transpose(image))


def _video_thumbnail(path: Path, at_s: float) -> bytes:
    from PIL import Image

    from ..preprocess.video import decode_frames

    def frame_at(timeline: Any) -> list[int]:  # preprocess.video_timeline.Timeline: the stream's own times
        if timeline.times is not None:
            return [max(bisect.bisect_right(timeline.times, at_s) - 1, 0)]
        return [min(max(int(at_s * timeline.fps), 0), timeline.count - 1)]

    return _jpeg(Image.fromarray(decode_frames(str(path), frame_at)[0]))


class Thumbnails:
    """JPEG thumbnails of image and video items, made once and kept (LRU)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[str, float], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, item: Item) -> bytes:
        if item.kind not in (*IMAGE_KINDS, "video"):
            raise ApiError(404, f"item {item.id}: no thumbnail for {item.kind} items "
                                f"(thumbnails are for {', '.join(IMAGE_KINDS)} and video)")
        path, _ = media_file(item)
        # The middle of a video window shows what matched; a whole video shows its first second.
        at_s = (item.start_s + item.end_s) / 2 if item.start_s is not None and item.end_s is not None else 1.0
        key = (str(path), at_s if item.kind == "video" else 0.0)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            data = _image_thumbnail(path) if item.kind in IMAGE_KINDS else _video_thumbnail(path, at_s)
        except Exception as exc:  # noqa: BLE001 - any decoder failure: the file cannot be shown
            raise ApiError(422, f"item {item.id}: cannot make a thumbnail of {os.path.basename(item.path)}: "
                                f"{type(exc).__name__}: {exc}") from None
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > THUMBNAIL_CACHE:
                self._cache.popitem(last=False)
        return data
