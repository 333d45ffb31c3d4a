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


def test_a_good_event_still_reads_and_prints():
    ev = ActionEvent.from_json(json.dumps(GOOD))
    assert ev == ActionEvent(**GOOD) and "kick" in format_row(ev)
