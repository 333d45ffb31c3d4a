"""Real live streams from ffmpeg (Debian's ``ffmpeg``; `make tools` installs it): MPEG-TS over
HTTP and over UDP, FLV from ffmpeg's own RTMP server (``-listen 1``), and MPEG-TS over RTSP from
a minimal RTSP server here (:class:`RtspRelay`: ffmpeg has no RTSP server for players), each
interrupted for 3 s. The ingester reconnects (HTTP) or notices the
silence (UDP, where a read only stalls), and the frames after the outage are marked as a new
stream. Under CI a missing ffmpeg fails these tests; elsewhere they skip."""

import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from stream.app.ingest import RECONNECTED, IngestOptions, open_source


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


def feed(output: list[str], seconds: float, *, codec: str = "mpeg2video",
         container: str = "mpegts") -> subprocess.Popen:
    return subprocess.Popen([ffmpeg(), "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                             f"testsrc=size=160x120:rate=25:duration={seconds}", "-c:v", codec, "-q:v", "5",
                             "-f", container, *output], stdin=subprocess.DEVNULL)


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


@pytest.mark.timeout(120)
def test_rtmp_from_ffmpegs_server_reconnects_after_an_outage():
    port = free_port()
    url = f"rtmp://127.0.0.1:{port}/live/cam"
    before, marker, after = read_through_an_outage(url, lambda: feed(["-listen", "1", url], 60, codec="flv1",
                                                                     container="flv"))
    assert marker is RECONNECTED
    assert after[0][2] - before[-1][2] >= 2.5e9 and after[0][3] > 0
    assert before[0][0].shape == (120, 160, 3)


class RtspRelay:
    """A minimal RTSP server (RFC 2326) relaying one MPEG-TS feed, an ffmpeg process writing to its
    stdout, as RTP/MP2T (RFC 2250) interleaved on the RTSP connection (TCP, which OpenCV's FFmpeg
    backend asks for by default; RTP over UDP is refused with 461). A feed that ends is an
    outage: playing clients are cut off and DESCRIBE answers 404 until :meth:`feed` is called
    again."""

    TS_PER_RTP = 7   # 7 x 188 bytes of MPEG-TS per RTP packet, as over UDP

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"rtsp://127.0.0.1:{self._server.getsockname()[1]}/live"
        self._lock = threading.Lock()
        self._players: list[socket.socket] = []
        self._live = False
        self._seq = 0
        self.setups: list[str] = []   # the Transport header of each SETUP
        self.plays = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def feed(self, proc: subprocess.Popen) -> subprocess.Popen:
        """Relay ``proc``'s stdout (MPEG-TS) until it ends."""
        with self._lock:
            self._live = True
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()
        return proc

    def close(self) -> None:
        self._server.close()
        self._drop_players()

    def _drop_players(self) -> None:
        with self._lock:
            players, self._players = self._players, []
        for sock in players:   # shutdown first: a close alone leaves the connection open to its reader thread
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _pump(self, proc: subprocess.Popen) -> None:
        size, buf = 188 * self.TS_PER_RTP, b""
        while chunk := proc.stdout.read1(size):
            buf += chunk
            while len(buf) >= 188:
                n = min(size, len(buf) // 188 * 188)   # whole TS packets only
                payload, buf = buf[:n], buf[n:]
                self._seq = (self._seq + 1) & 0xFFFF
                rtp = struct.pack("!BBHII", 0x80, 33, self._seq, int(time.monotonic() * 90_000) & 0xFFFFFFFF,
                                  0x50CC) + payload
                with self._lock:
                    players = list(self._players)
                for sock in players:
                    try:
                        with self._lock:
                            sock.sendall(b"$\x00" + struct.pack("!H", len(rtp)) + rtp)
                    except OSError:
                        with self._lock:
                            if sock in self._players:
                                self._players.remove(sock)
        with self._lock:   # the feed ended: an outage for every player
            self._live = False
        self._drop_players()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(4096)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method = lines[0].split(" ")[0]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                reply, body = self._answer(method, headers)
                out = f"RTSP/1.0 {reply}\r\nCSeq: {headers.get('cseq', '0')}\r\n"
                with self._lock:
                    sock.sendall((out + body).encode("latin-1"))
                    if method == "PLAY" and reply.startswith("200"):
                        self._players.append(sock)
        except OSError:
            return

    def _answer(self, method: str, headers: dict[str, str]) -> tuple[str, str]:
        if method == "OPTIONS" or method == "GET_PARAMETER":
            return "200 OK", "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n\r\n"
        if method == "DESCRIBE":
            if not self._live:
                return "404 Not Found", "\r\n"
            sdp = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=relay\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                   "m=video 0 RTP/AVP 33\r\na=rtpmap:33 MP2T/90000\r\na=control:track0\r\n")
            return "200 OK", (f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n"
                              f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
        if method == "SETUP":
            self.setups.append(headers.get("transport", ""))
            channels = re.search(r"interleaved=(\d+)-(\d+)", headers.get("transport", ""))
            if channels is None:   # RTP over UDP: not offered
                return "461 Unsupported Transport", "\r\n"
            return "200 OK", (f"Transport: RTP/AVP/TCP;unicast;interleaved={channels[1]}-{channels[2]}\r\n"
                              "Session: 5eed;timeout=60\r\n\r\n")
        if method == "PLAY":
            self.plays += 1
            return "200 OK", "Session: 5eed\r\n\r\n"
        return "200 OK", "\r\n"   # TEARDOWN and the rest


@pytest.mark.timeout(120)
def test_mpegts_over_rtsp_reconnects_after_an_outage():
    relay = RtspRelay()
    try:
        def start_feed() -> subprocess.Popen:
            return relay.feed(subprocess.Popen(
                [ffmpeg(), "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=60",
                 "-c:v", "mpeg2video", "-q:v", "5", "-f", "mpegts", "pipe:1"], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE))

        before, marker, after = read_through_an_outage(relay.url, start_feed)
    finally:
        relay.close()
    assert marker is RECONNECTED
    assert after[0][2] - before[-1][2] >= 2.5e9 and after[0][3] > 0
    assert before[0][0].shape == (120, 160, 3)
    assert relay.plays == 2 and any("TCP" in t for t in relay.setups), relay.setups   # played again after it
