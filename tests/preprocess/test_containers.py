"""Untrusted media never reaches FFmpeg's network demuxers (SDP/RTP, HLS, concat, ...).

A 100-byte SDP text handed over as a video or an audio file used to make FFmpeg bind
UDP sockets on 0.0.0.0 and wait 10-20 s for RTP packets. Each decode runs in a child
process; the tests check it is refused at once, that no socket file descriptor ever
appears in the child, and (with strace) that no socket is even created.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imagebind_sdk.preprocess import audio, video
from imagebind_sdk.preprocess.containers import AUDIO_FORMATS, VIDEO_FORMATS
from imagebind_sdk.preprocess.sources import InputError

REFUSE_WITHIN_S = 1.0  # FFmpeg waited 10-20 s for RTP packets before the fix


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sdp(media: str) -> bytes:
    """A session description that makes FFmpeg's sdp demuxer listen for RTP on 0.0.0.0."""
    payload = "96\na=rtpmap:96 H264/90000" if media == "video" else "0"
    text = (
        "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=hostile\nc=IN IP4 0.0.0.0\nt=0 0\n"
        f"m={media} {_free_udp_port()} RTP/AVP {payload}\n"
    )
    return text.encode()


HLS = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n"
CONCAT = b"ffconcat version 1.0\nfile 'http://127.0.0.1:9/x.mp4'\n"

# The child decodes the file named by argv[2] as argv[1] and prints the error type.
_CHILD = """
import sys
from imagebind_sdk.preprocess import audio, video
from imagebind_sdk.preprocess.sources import InputError
data = open(sys.argv[2], "rb").read()
try:
    (video if sys.argv[1] == "video" else audio).preprocess(data)
    print("accepted")
except InputError as exc:
    print("InputError", exc)
"""


def _socket_fds(pid: int) -> int:
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return sum(link.startswith("socket:") for link in links)


def _decode_in_child(kind: str, data: bytes, tmp_path: Path, prefix: list[str] | None = None) -> tuple[str, float, int]:
    """Run the decode in a child process: (its output, seconds taken, most socket fds seen open)."""
    path = tmp_path / f"hostile.{kind}"
    path.write_bytes(data)
    command = [*(prefix or []), sys.executable, "-c", _CHILD, kind, str(path)]
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    most = 0
    try:
        while child.poll() is None and time.monotonic() - started < 30:
            most = max(most, _socket_fds(child.pid))
            if most:  # seen: no need to wait for FFmpeg's 10-20 s timeout
                break
            time.sleep(0.002)
    finally:
        if child.poll() is None:
            child.kill()  # our own child, by its pid
        output = child.communicate()[0]
    return output, time.monotonic() - started, most


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc to watch the child's descriptors")
@pytest.mark.parametrize("kind", ["video", "audio"])
def test_sdp_upload_opens_no_socket_and_is_refused_at_once(kind: str, tmp_path: Path) -> None:
    output, seconds, sockets = _decode_in_child(kind, _sdp(kind), tmp_path)
    assert sockets == 0, f"decoding an SDP file as {kind} opened {sockets} socket(s): {output}"
    assert output.startswith("InputError"), output
    # the child's interpreter start and imports take most of it; FFmpeg used to wait 10-20 s
    started = time.monotonic()
    with pytest.raises(InputError, match="accepted container formats"):
        (video if kind == "video" else audio).preprocess(_sdp(kind))
    assert time.monotonic() - started < REFUSE_WITHIN_S


@pytest.mark.parametrize("data", [HLS, CONCAT], ids=["hls", "concat"])
def test_playlists_are_refused(data: bytes) -> None:
    for module in (video, audio):
        started = time.monotonic()
        with pytest.raises(InputError):
            module.preprocess(data)
        assert time.monotonic() - started < REFUSE_WITHIN_S


def test_no_socket_syscall_under_strace(tmp_path: Path) -> None:
    """The strict form: the child makes no socket() call at all (strace follows FFmpeg's threads)."""
    if shutil.which("strace") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("strace is missing on CI (apt-get install strace)")
        pytest.skip("needs strace (apt package: strace)")
    log = tmp_path / "strace.log"
    prefix = ["strace", "-f", "-qq", "-e", "trace=socket,bind,connect", "-o", str(log)]
    for kind in ("video", "audio"):
        output, _, _ = _decode_in_child(kind, _sdp(kind), tmp_path, prefix)
        if "ptrace" in output or "Operation not permitted" in output:
            pytest.skip(f"strace cannot trace here: {output.strip()[:200]}")
        calls = [line for line in log.read_text().splitlines() if "AF_INET" in line or "AF_INET6" in line]
        assert not calls, f"decoding an SDP file as {kind} made socket calls: {calls[:4]}"
        assert "InputError" in output, output


def test_allow_lists_name_no_network_demuxer() -> None:
    network = {"sdp", "rtp", "rtsp", "hls", "dash", "concat", "tee", "udp", "tcp", "http", "image2", "lavfi"}
    assert not network & set(VIDEO_FORMATS + AUDIO_FORMATS)
