"""The server never lets an upload reach FFmpeg's network demuxers (issue 17, item 1).

An SDP text uploaded as a video or an audio file used to make the server bind UDP sockets
(on 0.0.0.0) and hold a worker for 10-20 s. It is now a 400 naming the item, at once, and
the server process opens no UDP socket meanwhile.
"""

from __future__ import annotations

import base64
import os
import threading
import time

import pytest

from .conftest import free_port

SDP = (
    "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=hostile\nc=IN IP4 0.0.0.0\nt=0 0\n"
    "m={media} {port} RTP/AVP 96\na=rtpmap:96 H264/90000\n"
)


def _udp_sockets(pid: int) -> set[str]:
    """Inodes of the UDP sockets the process holds (its fds that /proc/<pid>/net/udp* lists)."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            held.add(link[8:-1])
    udp = set()
    for table in ("udp", "udp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                udp.update(line.split()[9] for line in list(f)[1:])
        except OSError:
            continue
    return held & udp


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc to watch the server's sockets")
@pytest.mark.parametrize("kind", ["video", "audio"])
def test_sdp_upload_is_refused_without_opening_sockets(server, client, kind):
    body = {kind: [{"b64": base64.b64encode(SDP.format(media=kind, port=free_port()).encode()).decode()}]}
    result: dict = {}

    def post() -> None:
        started = time.monotonic()
        result["response"] = client.post("/v1/embed", json=body)
        result["seconds"] = time.monotonic() - started

    request = threading.Thread(target=post)
    request.start()
    seen: set[str] = set()
    while request.is_alive():
        seen |= _udp_sockets(server.proc.pid)
        time.sleep(0.005)
    request.join()
    assert not seen, f"the server opened UDP sockets for an SDP upload as {kind}"
    response = result["response"]
    assert response.status_code == 400, response.text
    assert f"{kind}[0]" in response.json()["error"] and "accepted container formats" in response.json()["error"]
    assert result["seconds"] < 3.0  # FFmpeg used to wait 10-20 s for RTP packets
