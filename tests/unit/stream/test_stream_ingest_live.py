"""Live sources stay attached (without Kafka): an HTTP MJPEG camera that drops out and comes
back is reconnected, the outage is marked and numbering restarts at 0; a slow consumer makes
the bounded buffer drop the oldest frames, counted; a cameras file is validated."""

import threading
import time

import pytest

from soccerkd.errors import ConfigError
from stream.app.ingest import RECONNECTED, IngestOptions, LiveBuffer, frame_batches, load_cameras, open_source
from stream.dev.cameras import MjpegServer
from stream.errors import StreamError


def test_an_http_camera_outage_is_reconnected_and_marked():
    cam = MjpegServer(fps=50).start()
    stop = threading.Event()
    reconnects = []
    try:
        opts = IngestOptions(source=cam.url, camera_id="cam", reconnect_backoff_s=0.2, reconnect_backoff_max_s=0.5)
        src = open_source(cam.url, options=opts, stop=stop, on_reconnect=lambda: reconnects.append(time.time()))
        assert src.live
        items = [next(src.frames) for _ in range(10)]
        threading.Thread(target=cam.outage, args=(1.5,), daemon=True).start()
        while (item := next(src.frames)) is not RECONNECTED:   # frames until the outage, then the marker
            items.append(item)
        after = [next(src.frames) for _ in range(10)]
    finally:
        stop.set()
        cam.stop()
    assert reconnects, "the outage should have been noticed"
    rgb, media_ns, captured_ns, fps = after[0]
    assert media_ns is None and captured_ns > items[-1][2] + 1e9   # wall clock: after the 1.5 s outage
    assert fps > 0 and cam.connections >= 2


def test_numbering_restarts_at_zero_after_a_reconnect():
    import numpy as np

    from stream.app.ingest import OpenedSource

    def frames():
        for i in range(6):
            if i == 3:
                yield RECONNECTED
            yield np.full((16, 16, 3), i, np.uint8), None, 1_000 + i, 25.0

    opts = IngestOptions(source="0", camera_id="cam", frames_per_batch=2, start_seq=100, max_side=16)
    out = list(frame_batches(OpenedSource(frames(), 0.0, True), opts))
    assert [(b.first_seq, len(b.frames)) for b in out] == [(100, 2), (102, 1), (0, 2), (2, 1)]
    assert out[2].capture_ts_ns == (1_003, 1_004) and out[0].source_fps == 25.0


def test_a_slow_consumer_drops_the_oldest_live_frames_never_the_outage_marker():
    drops = []
    items = iter(list(range(5)) + [RECONNECTED] + list(range(5, 10)))
    buf = LiveBuffer(items, size=3, on_drop=drops.append)
    it = buf.frames()
    time.sleep(0.5)   # the capture thread runs ahead of a consumer that reads nothing
    got = list(it)
    assert got[-3:] == [7, 8, 9] and RECONNECTED in got and buf.dropped == sum(drops) == 11 - len(got)


def test_a_source_that_never_comes_back_gives_up_after_max_reconnects():
    opts = IngestOptions(source="http://127.0.0.1:1/x", camera_id="cam", max_reconnects=2, reconnect_backoff_s=0.05,
                         reconnect_backoff_max_s=0.1)
    src = open_source(opts.source, options=opts)
    with pytest.raises(StreamError, match=r"2 reconnect\(s\) did not bring it back"):
        list(src.frames)


def test_a_cameras_file_is_checked(tmp_path):
    good = tmp_path / "cameras.yaml"
    good.write_text("cameras:\n  - {camera_id: a, source: a.mp4}\n"
                    "  - {camera_id: b, source: 'rtsp://x/1', options: {max_side: 320, pacing: fast}}\n")
    a, b = load_cameras(good, {"frames_per_batch": 4, "max_side": 640})
    assert (a.max_side, b.max_side, b.pacing, b.frames_per_batch) == (640, 320, "fast", 4)
    for text, fragment in [("cameras: []", "non-empty list"),
                           ("cameras:\n  - {camera_id: a}", "needs camera_id and source"),
                           ("cameras:\n  - {camera_id: a, source: x, options: {fps: 3}}", "unknown key(s) ['fps']"),
                           ("cameras:\n  - {camera_id: a, source: x}\n  - {camera_id: a, source: y}", "appears twice"),
                           ("cameras:\n  - {camera_id: a, source: x, options: {jpeg_quality: 0}}", "jpeg_quality"),
                           ("cameras: [", "not valid YAML")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=None) as info:
            load_cameras(bad, {})
        assert fragment in str(info.value), (text, str(info.value))
