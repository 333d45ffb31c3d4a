"""Ingester core without Kafka: batching, source-clock timestamps, pacing, downscaling, sources."""

import numpy as np
import pytest

from soccerkd.errors import DataError
from stream.app.ingest import IngestOptions, OpenedSource, frame_batches, is_live, open_source
from stream.errors import StreamError
from stream.inference.images import decode_image


def fake_source(n, w=64, h=48, fps=25.0, live=False):
    frames = ((np.full((h, w, 3), i, np.uint8), None if live else int(i * 1e9 / fps)) for i in range(n))
    return OpenedSource(frames, fps, live)


def test_batches_sequence_numbers_and_source_clock():
    sleeps = []
    opts = IngestOptions(source="x", camera_id="cam", frames_per_batch=4, pacing="fast", start_seq=100, max_side=32)
    out = list(frame_batches(fake_source(10), opts, anchor_ns=1_000, sleep=sleeps.append, now_ns=lambda: 0))
    assert [(b.first_seq, len(b.frames)) for b in out] == [(100, 4), (104, 4), (108, 2)]
    assert out[0].capture_ts_ns == (1_000, 1_000 + 40_000_000, 1_000 + 80_000_000, 1_000 + 120_000_000)
    assert (out[0].width, out[0].height, out[0].source_fps) == (32, 24, 25.0) and not sleeps
    assert decode_image(out[0].frames[0], width=32, height=24).shape == (24, 32, 3)


def test_realtime_pacing_sleeps_until_media_time():
    clock = [0]
    sleeps = []

    def sleep(s):
        sleeps.append(round(s, 3))
        clock[0] += int(s * 1e9)

    opts = IngestOptions(source="x", camera_id="cam", frames_per_batch=2, pacing="realtime")
    list(frame_batches(fake_source(3), opts, anchor_ns=0, sleep=sleep, now_ns=lambda: clock[0]))
    assert sleeps == [0.04, 0.04]


def test_live_sources_use_wall_clock_and_max_frames():
    t = iter(range(10, 100))
    opts = IngestOptions(source="0", camera_id="cam", frames_per_batch=8, max_frames=3)
    (b,) = list(frame_batches(fake_source(10, live=True), opts, anchor_ns=0, now_ns=lambda: next(t)))
    assert b.capture_ts_ns == (10, 11, 12)


def test_options_and_sources_are_validated(tmp_path):
    with pytest.raises(StreamError, match="jpeg_quality"):
        IngestOptions(source="x", camera_id="c", jpeg_quality=0)
    with pytest.raises(DataError, match="nope"):
        open_source(str(tmp_path / "nope.mp4"))
    assert is_live("rtsp://cam/1") and is_live("2") and not is_live("clip.mp4")


def test_frame_folder_source_loops(tmp_path):
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i * 50, np.uint8))
    src = open_source(str(tmp_path), folder_fps=10.0, loop=True)
    got = [next(src.frames) for _ in range(5)]
    assert [int(f[0, 0, 0]) for f, _ in got] == [0, 50, 100, 0, 50] and got[4][1] == 400_000_000
