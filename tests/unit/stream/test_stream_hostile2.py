"""Hostile input, round two (issue 22): record shapes and event fields that crashed the dead-letter
path or a reader at 5428071."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from stream.core.ledger import SourceRef
from stream.core.wire import ActionEvent, CorruptFrameError
from stream.kafka.deadletters import DeadLetters, dlq_headers
from stream.kafka.events import format_row

GOOD = dict(event_id="e" * 32, camera_id="cam", label="kick", confidence=0.9, start_seq=0, end_seq=7,
            start_capture_ts_ns=1, end_capture_ts_ns=2, model_name="n", checkpoint_sha256="h", emitted_at=3.0)
REF = SourceRef("frames", 0, 42)


def record(headers, *, value=b"x", key=b"cam", timestamp=1_700_000_000_000):
    return SimpleNamespace(headers=headers, value=value, key=key, timestamp=timestamp)


@pytest.mark.parametrize("headers", [
    [("trace", None)],                            # a null header value (Java clients, librdkafka)
    [("trace", b"\xff\xfe not utf-8")],
    [("ok", b"1"), ("nil", None), ("text", "already str")],
    None,
    "not a list of pairs",
    [("only-a-key",)],
])
def test_a_dead_letter_is_written_for_any_header_shape(headers):
    """At 5428071 a null header value raised AttributeError in dlq_headers, outside any guard: the
    serve loop crashed on the message, and on every replay of it."""
    out = dict(dlq_headers(REF, CorruptFrameError("bad frame"), record=record(headers), group="g"))
    assert out["reason"] == b"corrupt_frame" and out["source_offset"] == b"42"
    original = json.loads(out["source_headers"])
    if headers == [("trace", None)]:
        assert original == [["trace", None]]


def test_the_dead_letter_path_sends_a_record_with_null_headers():
    sent = []
    publisher = SimpleNamespace(send=lambda topic, **kw: sent.append((topic, kw)))
    dl = DeadLetters(publisher, topic="dlq", group="g", max_request_size=1 << 20)
    assert dl.send(record([("a", None)], value=None, timestamp=None), REF, CorruptFrameError("x")) == "corrupt_frame"
    (topic, kw), = sent
    assert topic == "dlq" and kw["value"] is None and kw["key"] == b"cam"


@pytest.mark.parametrize("field, value", [
    ("emitted_at", "soon"), ("emitted_at", 1e300), ("emitted_at", float("nan")), ("confidence", "high"),
    ("confidence", 7.0), ("start_seq", 1.5), ("start_seq", True), ("camera_id", 12), ("label", None),
])
def test_an_event_with_a_wrong_typed_field_is_refused_by_name(field, value):
    """At 5428071 `events tail` died on these well-formed events (TypeError or OverflowError in
    format_row, outside the reader's guard)."""
    bad = json.dumps({**GOOD, field: value})
    with pytest.raises(ValueError, match=field):
        ActionEvent.from_json(bad)


def test_unknown_fields_and_non_objects_are_refused():
    with pytest.raises(ValueError, match="unknown event field"):
        ActionEvent.from_json(json.dumps({**GOOD, "surprise": 1}))
    with pytest.raises(ValueError, match="JSON object"):
        ActionEvent.from_json("[1, 2]")
    # found by benchmarks/fuzz_coverage.py: a missing field raised TypeError from the constructor
    with pytest.raises(ValueError, match="missing: label, confidence"):
        ActionEvent.from_json(json.dumps({k: v for k, v in GOOD.items() if k not in ("label", "confidence")}))


def test_a_good_event_still_reads_and_prints():
    ev = ActionEvent.from_json(json.dumps(GOOD))
    assert ev == ActionEvent(**GOOD) and "kick" in format_row(ev)


# -- limits a message cannot pass -------------------------------------------------------------------
def offer_one(pipe, batch_or_value, offset=0):
    from stream.core.wire import encode_frame_batch

    value = batch_or_value if isinstance(batch_or_value, bytes) else encode_frame_batch(batch_or_value)
    return [r.error for r in pipe.offer_messages([(value, SourceRef("frames", 0, offset))])]


def test_many_tiny_frames_in_one_message_are_refused_before_any_decode():
    """At 5428071 a 2.63 MB message of 4,096 frames of 16x16 was accepted: the frame store grew
    from 256 to 4,352 slots and 1,019 windows queued against max_pending_windows 128."""
    from stream.core.pipeline import Pipeline
    from stream.dev.testing import ScriptedPredictor, envelope, jpeg

    pred = ScriptedPredictor()
    pipe = Pipeline(pred)
    errors = offer_one(pipe, envelope(camera=b"cam-1", width=16, height=16, frames=[jpeg(16, 16)] * 4096))
    assert [e.reason for e in errors] == ["limit_exceeded"] and "max_frames_per_message" in str(errors[0])
    assert pred.preprocessed == 0 and pipe.pending == 0


def test_windows_per_message_are_capped_at_the_window_stride():
    from stream.core.limits import LimitsConfig
    from stream.core.pipeline import Pipeline, PipelineConfig
    from stream.core.windowing import WindowConfig
    from stream.dev.testing import ScriptedPredictor, solid_batch

    cfg = PipelineConfig(window=WindowConfig(window_stride=1), limits=LimitsConfig(max_windows_per_message=16))
    pipe = Pipeline(ScriptedPredictor(), config=cfg)
    errors = offer_one(pipe, solid_batch("a", 0, [(200, 0, 0)] * 17))
    assert [e.reason for e in errors] == ["limit_exceeded"] and "max_windows_per_message" in str(errors[0])
    assert offer_one(pipe, solid_batch("a", 0, [(200, 0, 0)] * 16), offset=1) == []


def test_a_progressive_frame_is_accepted_and_a_scan_bomb_is_not():
    from stream.core.limits import LimitsConfig, parse_message
    from stream.dev.badinput import progressive
    from stream.dev.testing import envelope

    assert parse_message(envelope(frames=[progressive()] * 4), None, LimitsConfig()).frames
    with pytest.raises(CorruptFrameError, match="max_jpeg_scans"):
        parse_message(envelope(frames=[progressive(extra_scans=23)]), None, LimitsConfig())


def test_a_flood_of_camera_ids_is_capped_per_partition():
    """At 5428071 commit_points() took 0.33-0.62 s at 20,000 cameras, once a second and on the
    IO thread at revoke. Camera states are now capped per partition; other partitions go on."""
    from stream.core.limits import LimitsConfig
    from stream.core.pipeline import Pipeline, PipelineConfig
    from stream.core.wire import encode_frame_batch
    from stream.dev.testing import ScriptedPredictor, solid_batch

    pipe = Pipeline(ScriptedPredictor(), config=PipelineConfig(limits=LimitsConfig(max_cameras_per_partition=3)))
    items = [(encode_frame_batch(solid_batch(f"cam-{i}", 0, [(200, 0, 0)] * 4)), SourceRef("frames", 0, i))
             for i in range(5)]
    rejected = pipe.offer_messages(items[:3])
    assert rejected == [] and pipe.cameras.open_cameras(("frames", 0)) == 3
    rejected = pipe.offer_messages(items[3:])
    assert [r.ref.offset for r in rejected] == [3, 4]
    assert all("max_cameras_per_partition" in str(r.error) for r in rejected)
    more = [(encode_frame_batch(solid_batch("cam-0", 4, [(200, 0, 0)] * 4)), SourceRef("frames", 0, 5)),
            (encode_frame_batch(solid_batch("cam-9", 0, [(200, 0, 0)] * 4)), SourceRef("frames", 1, 0))]
    assert pipe.offer_messages(more) == []   # a known camera, and another partition
    pipe.drain()
    pipe.idle_clock = lambda: 1e9   # every camera idle: evicted, the count goes back to 0
    pipe.close_idle()
    assert pipe.cameras.open_cameras(("frames", 0)) == 0
