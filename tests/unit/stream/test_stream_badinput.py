"""The bad-input corpus (marker ``badinput``): each kind of hostile or broken frames message,
offered to the real pipeline with the real CPU decoder, has its documented outcome: a
dead-letter reason, or a counted drop. After every bad message a good one still makes windows:
nothing stops the loop. See the README's "Hostile input" section for the rules."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from stream.app.metrics import Metrics
from stream.core.ledger import SourceRef
from stream.core.pipeline import Pipeline, PipelineConfig
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.core.wire import encode_frame_batch
from stream.dev.badinput import bad_input_corpus
from stream.dev.testing import BAD_INPUT_T0 as T0
from stream.dev.testing import envelope, jpeg, solid_batch

pytestmark = pytest.mark.badinput


GOOD = envelope()
CASES = bad_input_corpus()


def pipeline():
    from stream.inference.predictors import TorchPredictor

    metrics = Metrics(CollectorRegistry())
    cfg = PipelineConfig(window=WindowConfig(window_stride=4, reorder_tolerance=0, max_fill=0),
                         smoothing=SmoothingConfig(min_windows=1), max_batch=4)
    return Pipeline(TorchPredictor.from_checkpoint("demo", device="cpu", amp="none"), config=cfg, metrics=metrics), metrics


@pytest.fixture(scope="module")
def shared():
    return pipeline()


def offer(pipe, value, key, offset):
    offer = pipe.begin_offer([(value, SourceRef("frames", 0, offset, key=key))])
    return pipe.finish_offer(offer)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_bad_message_is_dead_lettered_with_its_reason_and_the_next_good_one_is_used(kind, shared):
    pipe, metrics = shared
    value, key, reason = CASES[kind]
    offset = sorted(CASES).index(kind) * 2
    (rejected,) = offer(pipe, value, key, offset)
    assert rejected.error.reason == reason, (kind, rejected.error)
    assert metrics.registry.get_sample_value("soccerkd_dlq_total", {"reason": reason}) is not None
    good = encode_frame_batch(solid_batch(f"good-{offset}", 0, [(200, 20, 20)] * 24, width=64, height=48))
    assert offer(pipe, good, f"good-{offset}".encode(), offset + 1) == []
    assert pipe.pending > 0 or pipe.drain().windows > 0   # the good message made windows


def test_the_corpus_has_at_least_40_kinds():
    assert len(CASES) + len(DROPS) + len(ACCEPTED) >= 40


def test_a_decoder_crash_on_one_message_is_a_processing_error(monkeypatch):
    import cv2

    pipe, _ = pipeline()
    real = cv2.imdecode

    def imdecode(buf, flags):
        if len(buf) == len(CRASH):
            raise cv2.error("simulated libjpeg failure")
        return real(buf, flags)

    CRASH = jpeg(value=77)
    monkeypatch.setattr(cv2, "imdecode", imdecode)
    (rejected,) = offer(pipe, envelope(frames=[CRASH]), b"cam-1", 0)
    assert rejected.error.reason == "processing_error" and "simulated libjpeg failure" in str(rejected.error)


def test_process_failures_are_not_dead_lettered(monkeypatch):
    """Out of memory is the process's fault, not the message's: it propagates (fail-stop)."""
    import cv2

    pipe, _ = pipeline()

    def imdecode(buf, flags):
        raise MemoryError("simulated")

    monkeypatch.setattr(cv2, "imdecode", imdecode)
    with pytest.raises(MemoryError):
        offer(pipe, envelope(frames=[jpeg(value=78)]), b"cam-1", 0)


# Accepted messages whose frames the windowing rules drop, counted by reason.
DROPS = {"duplicate": 2, "late": 1}


def test_duplicate_and_late_frames_are_counted_drops():
    pipe, metrics = pipeline()
    batch = lambda first: encode_frame_batch(solid_batch("cam-d", first, [(200, 20, 20)] * 4, width=64, height=48))
    assert offer(pipe, batch(0), b"cam-d", 0) == []
    assert offer(pipe, batch(0), b"cam-d", 1) == []            # the same frames again
    for first in range(4, 40, 4):
        assert offer(pipe, batch(first), b"cam-d", 2 + first) == []
    pipe.drain()
    assert offer(pipe, batch(8), b"cam-d", 100) == []          # long after its windows were emitted
    dropped = {r: metrics.registry.get_sample_value("soccerkd_dropped_frames_total", {"reason": r})
               for r in ("duplicate", "late", "replayed")}
    assert dropped["duplicate"] + dropped["replayed"] >= 4 and dropped["late"] + dropped["replayed"] >= 4, dropped


# Odd but valid input, accepted as documented.
ACCEPTED = {"grayscale_jpeg": "converted to RGB"}


def test_a_grayscale_jpeg_is_converted():
    pipe, _ = pipeline()
    frames = [jpeg(gray=True, value=v) for v in (40, 80, 120, 160)] * 6
    assert offer(pipe, envelope(camera=b"cam-g", frames=frames, stamps=[T0 + i * 40_000_000 for i in range(24)]),
                 b"cam-g", 0) == []
    assert pipe.drain().windows > 0


def test_capture_times_that_go_back_are_clamped_and_skewed_clocks_counted():
    """The time rules (README, Hostile input): along the sequence a capture time never goes
    back (a later frame stamped earlier gets its predecessor's time, counted as backwards), and
    frames stamped over limits.max_clock_skew_s from the wall clock are counted, kept, and get
    no latency."""
    import time

    pipe, metrics = pipeline()
    now_ns = time.time_ns()
    stamps = [now_ns + i * 40_000_000 for i in range(24)]
    stamps[10] = stamps[3]                     # a clock step back in the middle
    assert offer(pipe, envelope(camera=b"cam-t", frames=[jpeg()] * 24, stamps=stamps), b"cam-t", 0) == []
    while pipe.pending:
        pipe.step(force=True)
    cam = next(c for c in pipe.cameras if c.key[1] == "cam-t")
    assert cam.newest_seq_ts == stamps[-1]
    sample = metrics.registry.get_sample_value
    assert sample("soccerkd_timestamp_anomalies_total", {"kind": "backwards"}) == 1
    assert sample("soccerkd_timestamp_anomalies_total", {"kind": "clock_skew"}) == 0
    future = [now_ns + 10 * 3600 * 10**9 + i * 40_000_000 for i in range(4)]   # ten hours ahead
    assert offer(pipe, envelope(camera=b"cam-f", stamps=future), b"cam-f", 1) == []
    assert sample("soccerkd_timestamp_anomalies_total", {"kind": "clock_skew"}) == 4
