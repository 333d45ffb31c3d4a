"""``soccerkd view`` without Kafka: the figures of the live board (fake clock), the renderer's
rate limit, the page's routes on the real HTTP endpoint, and the page's files (nothing from
elsewhere). The page in a real browser against a real pipeline: tests/integration/test_view_page.py."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from stream.app.http import MetricsServer
from stream.app.metrics import Metrics
from stream.app.view import ASSET_DIR, ASSETS, FrameRenderer, ViewMetrics, annotate, windows_total
from stream.cli import main
from stream.core.live import CounterRate, LiveBoard, nearest_rank
from stream.core.wire import ActionEvent

pytestmark = pytest.mark.timeout(60)
T0 = 1_800_000_000.0


def jpeg(value: int, w: int = 64, h: int = 48) -> bytes:
    return cv2.imencode(".jpg", np.full((h, w, 3), value, np.uint8))[1].tobytes()


def event(camera: str, *, emitted_at: float, latency_s: float, label: str = "kick", sha: str = "a" * 64) -> ActionEvent:
    return ActionEvent(event_id=f"{camera}-{emitted_at}", camera_id=camera, label=label, confidence=0.9, start_seq=0,
                       end_seq=7, start_capture_ts_ns=0, end_capture_ts_ns=int((emitted_at - latency_s) * 1e9),
                       model_name="tsm_resnet18", checkpoint_sha256=sha, emitted_at=emitted_at)


def test_board_figures_cover_the_last_minute_only():
    now = [T0]
    board = LiveBoard(last_events=2, clock=lambda: now[0])
    board.add_event(event("cam-1", emitted_at=T0 - 120, latency_s=9.0, sha="0" * 64))   # before the minute
    for i in range(30):   # 30 s of two cameras at 25 frames/s in batches of 5
        now[0] = T0 + i
        for cam in ("cam-1", "cam-2"):
            for b in range(5):
                board.add_frames(cam, count=5, jpeg=jpeg(i), seq=25 * i + 5 * b + 4, capture_ts_ns=int(now[0] * 1e9),
                                 width=64, height=48)
        board.add_event(event("cam-1", emitted_at=now[0], latency_s=0.1 + i / 100))
    snap = board.snapshot()
    assert snap["frames_per_s"] == pytest.approx(2 * 25 * 30 / 29)   # viewer up for 29 s: over that, not 60
    now[0] = T0 + 100   # 71 s after the last frame: nothing left in the minute
    late = board.snapshot()
    assert late["frames_per_s"] == 0 and late["latency_p50_s"] is None and late["models"] == []
    assert snap["latency_p50_s"] == pytest.approx(0.1 + 14 / 100) and snap["latency_p99_s"] == pytest.approx(0.39)
    assert [m["checkpoint_sha256"] for m in snap["models"]] == ["a" * 64] and snap["models"][0]["events"] == 30
    cam1 = snap["cameras"][0]
    assert cam1["camera_id"] == "cam-1" and len(cam1["events"]) == 2 and cam1["events"][0]["emitted_at"] == T0 + 29
    assert snap["windows_per_s"] is None and "--metrics-url" in snap["windows_source"]


def test_board_keeps_the_newest_frame_and_creates_no_camera_for_a_lookup():
    board = LiveBoard(clock=lambda: T0)
    board.add_frames("cam-1", count=5, jpeg=b"new", seq=9, capture_ts_ns=2, width=8, height=8)
    board.add_frames("cam-1", count=5, jpeg=b"old", seq=4, capture_ts_ns=1, width=8, height=8)   # a replay
    frame = board.frame("cam-1")
    assert frame is not None and (frame.jpeg, frame.seq, frame.version) == (b"new", 9, 1)
    assert board.frame("nobody") is None and [c["camera_id"] for c in board.snapshot()["cameras"]] == ["cam-1"]
    assert board.label("cam-1") == ("no event yet", 0.0)


def test_counter_rate_adds_endpoints_and_survives_a_restart():
    rate = CounterRate(window_s=60)
    rate.add(0.0, {"a": 100.0, "b": 10.0})
    assert rate.rate() is None   # one scrape is no rate
    rate.add(10.0, {"a": 150.0, "b": 30.0})
    rate.add(15.0, {})           # every endpoint failed: no sample
    rate.add(20.0, {"a": 20.0, "b": 50.0})   # a restarted: its counter counts from 0 again
    assert rate.rate() == pytest.approx((50 + 20 + 20 + 20) / 20)
    rate.add(90.0, {"a": 20.0, "b": 50.0})   # the earlier samples fall out of the minute
    assert rate.rate() is None
    rate.add(100.0, {"a": 20.0, "b": 50.0})
    assert rate.rate() == 0.0


def test_nearest_rank():
    assert nearest_rank([], 0.5) is None
    assert nearest_rank([3.0, 1.0, 2.0], 0.5) == 2.0 and nearest_rank(list(map(float, range(1, 101))), 0.99) == 99.0
    with pytest.raises(ValueError, match="1.5"):
        nearest_rank([1.0], 1.5)


def test_windows_total_reads_serve_exposition():
    metrics = Metrics()
    metrics.add_windows(7)
    assert windows_total(metrics.exposition().decode()) == 7.0
    with pytest.raises(ValueError, match="soccerkd_windows_total"):
        windows_total("# HELP other x\n# TYPE other counter\nother_total 3\n")


def test_annotate_draws_on_a_readable_copy_and_refuses_garbage():
    out = annotate(jpeg(90), camera_id="cam-1", label="kick", confidence=0.87, seq=12, captured_at=T0)
    img = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[1] == 480 and img.shape[0] == 360   # scaled up for the text
    assert img[:20].max() > 200 and abs(int(img[180, 240].mean()) - 90) < 10   # text in the bar, picture kept
    assert annotate(b"\xff\xd8not a jpeg", camera_id="c", label="x", confidence=0.0, seq=0, captured_at=0) is None


def test_renderer_decodes_at_most_max_fps_per_camera():
    now = [0.0]
    board, metrics = LiveBoard(clock=lambda: T0), ViewMetrics()
    renderer = FrameRenderer(board, metrics, max_fps=2.0, clock=lambda: now[0])
    assert renderer.jpeg("cam-1") is None
    for i in range(20):   # 20 new frames and 20 requests within 0.4 s: one decode
        board.add_frames("cam-1", count=1, jpeg=jpeg(i * 10), seq=i, capture_ts_ns=i + 1, width=64, height=48)
        first = renderer.jpeg("cam-1")
        now[0] += 0.02
    assert metrics.renders._value.get() == 1
    now[0] = 0.6
    second = renderer.jpeg("cam-1")
    assert second != first and metrics.renders._value.get() == 2
    now[0] = 5.0
    assert renderer.jpeg("cam-1") == second and metrics.renders._value.get() == 2   # nothing new: cached
    with pytest.raises(ValueError, match="max_fps"):
        FrameRenderer(board, metrics, max_fps=0)


def get(port: int, path: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_routes_exact_and_below_a_prefix_with_page_headers():
    routes = {"/": lambda t: (200, b"page", "text/html"), "/frame/*": lambda t: (200, t.encode(), "text/plain")}
    server = MetricsServer(Metrics(), port=0, host="127.0.0.1", routes=routes).start()
    try:
        code, headers, body = get(server.port, "/")
        assert (code, body) == (200, b"page") and headers["Cache-Control"] == "no-store"
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert get(server.port, "/frame/cam-1.jpg?v=3")[2] == b"/frame/cam-1.jpg?v=3"
        assert get(server.port, "/frame/")[0] == 404 and get(server.port, "/favicon.ico")[0] == 404
        code, headers, body = get(server.port, "/metrics")
        assert code == 200 and b"soccerkd_windows_total" in body and "Cache-Control" not in headers
        assert get(server.port, "/healthz")[0] == 200
    finally:
        server.stop()


def test_the_page_is_whole_and_loads_nothing_from_elsewhere():
    text = {name: (ASSET_DIR / name).read_text() for name, _ in ASSETS.values()}
    for name, body in text.items():
        assert not re.search(r"(https?:)?//[a-z0-9]", re.sub(r"(?m)^\s*//.*$", "", body), re.I), name
    for ref in re.findall(r'(?:src|href)="([^"]+)"', text["index.html"]):
        assert ref in ASSETS, ref
    assert "innerHTML" not in text["view.js"]   # topic data goes in as text only


@pytest.mark.parametrize("args, message", [
    (["--max-fps", "0"], "--max-fps must be > 0, got 0.0"),
    (["--metrics-url", "localhost:9108"], "--metrics-url must be an http(s):// URL"),
    (["--port", "70000"], "--port must be 0..65535, got 70000"),
])
def test_view_refuses_bad_options_before_reaching_kafka(args, message, capsys, monkeypatch):
    monkeypatch.setattr("stream.app.logs.configure", lambda *a: None)   # leave pytest's log handlers in place
    assert main(["view", "--bootstrap", "127.0.0.1:1", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_busy_port_names_the_view_options():
    import socket

    from stream.app.view import LiveView
    from stream.errors import StreamError

    holder = socket.create_server(("127.0.0.1", 0))
    try:
        port = holder.getsockname()[1]
        with pytest.raises(StreamError, match=rf"cannot serve the live page on 127.0.0.1:{port} \(--port / --bind\)"):
            LiveView(bootstrap="127.0.0.1:1", port=port, host="127.0.0.1")
    finally:
        holder.close()


def test_the_viewer_checks_a_batch_as_serve_does_before_decoding_its_newest_frame():
    from stream.app.view import checked_batch
    from stream.core.wire import (FrameBatch, FrameSizeMismatchError, KeyMismatchError, LimitExceededError,
                                  encode_frame_batch)

    def record(frames, w=64, h=48):
        return encode_frame_batch(FrameBatch("cam-1", 0, tuple(range(1, len(frames) + 1)), w, h, 25.0, tuple(frames)))

    good = record([jpeg(10), jpeg(20)])
    assert checked_batch(good, b"cam-1").frames[-1] == jpeg(20)
    with pytest.raises(KeyMismatchError):
        checked_batch(good, b"cam-2")
    with pytest.raises(FrameSizeMismatchError):   # the newest frame's header says 640x480, the envelope 64x48
        checked_batch(record([jpeg(10), jpeg(20, 640, 480)]), b"cam-1")
    with pytest.raises(LimitExceededError, match="max_pixels"):   # a 65000x65000 claim is refused unread
        checked_batch(record([jpeg(10)], 65000, 65000), b"cam-1")
