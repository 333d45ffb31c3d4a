"""Real live streams from ffmpeg (Debian's ``ffmpeg``; `make tools` installs it): MPEG-TS over
HTTP and over UDP, each interrupted for 3 s. The ingester reconnects (HTTP) or notices the
silence (UDP, where a read only stalls), and the frames after the outage are marked as a new
stream. Under CI a missing ffmpeg fails these tests; elsewhere they skip."""

import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from stream.ingest import RECONNECTED, IngestOptions, open_source


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ffmpeg is missing under CI (make tools installs Debian's ffmpeg)", pytrace=False)
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    return found


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def feed(output: list[str], seconds: float) -> subprocess.Popen:
    return subprocess.Popen([ffmpeg(), "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                             f"testsrc=size=160x120:rate=25:duration={seconds}", "-c:v", "mpeg2video", "-q:v", "5",
                             "-f", "mpegts", *output], stdin=subprocess.DEVNULL)


def read_through_an_outage(url: str, start_feed, *, frames_before=40, frames_after=40):
    opts = IngestOptions(source=url, camera_id="ff", reconnect_backoff_s=0.2, reconnect_backoff_max_s=0.5,
                         read_timeout_s=2.0, outage_gap_s=1.5)
    stop = threading.Event()
    feeds = [start_feed()]
    try:
        src = open_source(url, options=opts, stop=stop)
        before = [next(src.frames) for _ in range(frames_before)]
        feeds[0].kill()
        feeds[0].wait()
        time.sleep(3)
        feeds.append(start_feed())
        marker = next(item for item in src.frames if item is RECONNECTED)
        after = [next(src.frames) for _ in range(frames_after)]
    finally:
        stop.set()
        for f in feeds:
            f.kill()
            f.wait()
    return before, marker, after


@pytest.mark.timeout(120)
def test_mpegts_over_http_from_ffmpeg_reconnects_after_an_outage():
    port = free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    before, marker, after = read_through_an_outage(url, lambda: feed(["-listen", "1", url], 60))
    assert marker is RECONNECTED
    assert after[0][2] - before[-1][2] >= 2.5e9 and after[0][3] > 0   # wall-clock capture times across 3 s


@pytest.mark.timeout(120)
def test_mpegts_over_udp_from_ffmpeg_marks_the_silence_as_an_outage():
    port = free_port(socket.SOCK_DGRAM)
    before, marker, after = read_through_an_outage(f"udp://127.0.0.1:{port}",
                                                   lambda: feed([f"udp://127.0.0.1:{port}?pkt_size=1316"], 60))
    assert marker is RECONNECTED
    assert after[0][2] - before[-1][2] >= 1.5e9
