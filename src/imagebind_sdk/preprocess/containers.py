"""Opening media containers with FFmpeg (PyAV) safely: file formats only, never the network.

FFmpeg guesses a container's format from its first bytes, and some of its "formats"
are network clients: a 100-byte SDP text makes the ``sdp`` demuxer bind UDP sockets
(on 0.0.0.0) and wait 10-20 s for RTP packets; ``hls``, ``dash``, ``rtsp``, ``concat``
and ``tee`` open further URLs or files named inside the input. Untrusted bytes must
never pick such a demuxer, so every container is opened here, with:

* ``format_whitelist``: FFmpeg refuses, before the demuxer reads its header, any
  format not in :data:`VIDEO_FORMATS` / :data:`AUDIO_FORMATS` (plain file formats);
* ``protocol_whitelist``: nested opens of any protocol are refused (our input is
  always an in-memory or Python file object, which needs no protocol at all);
* a check of ``container.format.name`` after opening, in case an FFmpeg build
  ignores an option.

soundfile (libsndfile) and PIL read only the bytes they are handed; they need no such guard.
"""

from __future__ import annotations

import logging
from typing import Any, BinaryIO

from .sources import InputError

logger = logging.getLogger(__name__)

# FFmpeg demuxer names allowed for videos (matched against any of a demuxer's names,
# e.g. "mov,mp4,m4a,3gp,3g2,mj2" matches "mov"): containers of recorded files only.
VIDEO_FORMATS = (
    "mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "asf", "ogg",
    "gif", "ivf", "h264", "hevc", "m4v", "mjpeg", "yuv4mpegpipe", "nut",
)
# FFmpeg demuxer names allowed for audio that soundfile cannot read (m4a, aac, opus in webm, ...).
AUDIO_FORMATS = (
    "mov", "mp4", "m4a", "matroska", "webm", "ogg", "mp3", "aac", "wav", "w64", "flac",
    "asf", "ac3", "eac3", "amr", "aiff", "caf", "au", "avi", "mpegts", "flv", "nut",
)
# No nested protocol may be opened: "none" names no FFmpeg protocol, so the list allows nothing.
PROTOCOL_WHITELIST = "none"


class UnreadableContainer(InputError):
    """FFmpeg could not open the input as one of the allowed container formats."""


def open_container(stream: BinaryIO, formats: tuple[str, ...], what: str, max_pixels: int | None = None) -> Any:
    """``av.open`` over a binary stream, restricted to the demuxers ``formats``.

    InputError (naming the format when FFmpeg found one) for anything else, corrupt
    data included. ``what`` names the media in messages ("video", "audio").
    ``max_pixels`` keeps FFmpeg's probing from decoding larger frames (an 8192²
    frame cost 140 MB before its size could be read and refused).
    """
    import av  # lazily: audio that soundfile reads never needs FFmpeg

    allowed = ",".join(formats)
    options = {"format_whitelist": allowed, "protocol_whitelist": PROTOCOL_WHITELIST}
    if max_pixels is not None:
        options["max_pixels"] = str(max_pixels)
    try:
        container = av.open(stream, mode="r", options=options)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UnreadableContainer(
            f"could not open {what}: corrupt, or not one of the accepted container formats "
            f"({', '.join(formats)}) ({exc})"
        ) from exc
    names = set(container.format.name.split(","))
    if not names & set(formats):
        container.close()
        raise UnreadableContainer(f"expected a {what} file in one of the formats {', '.join(formats)}, found {container.format.name!r}")
    return container
