"""Reading a dead letter back for ``soccerkd dlq replay`` (no broker: the records are built by the
real ``dlq_headers``; the round trip through Kafka is tests/integration/test_dlq_replay.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from stream.core.ledger import SourceRef
from stream.core.wire import UnsupportedVersionError
from stream.kafka.deadletters import dlq_headers
from stream.kafka.dlq import REPLAY_HEADER, DeadLetter, kafka_headers


def dead_letter(*, key=b"cam1", value=b"v", original=(("trace", b"t1"), ("nul", None)), replaced=None,
                headers=None, offset=5) -> DeadLetter:
    rec = SimpleNamespace(key=key, value=value, headers=original if isinstance(original, int) else list(original),
                          timestamp=123)
    hs = headers if headers is not None else dlq_headers(SourceRef("frames", 2, 40), UnsupportedVersionError("v2"),
                                                         record=rec, group="g", replaced=replaced)
    return DeadLetter.from_record(SimpleNamespace(topic="frames-dlq", partition=0, offset=offset, key=key, value=value,
                                                  headers=hs))


def test_the_original_headers_come_back_with_the_replay_marker():
    d = dead_letter()
    assert (d.reason, d.problem, d.where, d.replays, d.null_headers) == ("unsupported_version", None, "frames-dlq@0:5", 0, 1)
    assert d.replay_headers() == [("trace", b"t1"), ("nul", None), (REPLAY_HEADER, b"frames-dlq@0:5")]
    assert kafka_headers(d.replay_headers()) == [("trace", b"t1"), ("nul", b""), (REPLAY_HEADER, b"frames-dlq@0:5")]


def test_a_second_trip_is_counted():
    again = dead_letter(original=(("trace", b"t1"), (REPLAY_HEADER, b"frames-dlq@0:5")), offset=9)
    assert again.replays == 1
    assert [k for k, _ in again.replay_headers()].count(REPLAY_HEADER) == 2


@pytest.mark.parametrize("kwargs, problem", [
    (dict(replaced=9_000_000, value=b""), "value not kept"),
    (dict(key=b"k" * 4096), "key may have been cut"),
    (dict(original=[("h", "x" * 3000)]), "original headers unreadable"),
    (dict(headers=[("source_headers", b"[]")]), "not a dead letter of this service"),
])
def test_what_cannot_be_sent_as_it_was_is_named(kwargs, problem):
    d = dead_letter(**kwargs)
    assert d.problem is not None and problem in d.problem
    if d.original_headers is None:
        with pytest.raises(Exception, match="cannot be replayed"):
            d.replay_headers()


def test_unreadable_original_headers_are_not_replayed():
    d = dead_letter(original=7)   # not a header list: dlq_headers wrote "unreadable_headers"
    assert d.original_headers is None and "unreadable" in d.problem


def test_help_and_offsets():
    from stream.cli import build_parser
    from stream.cli.dlq import _offsets
    from stream.errors import StreamError

    text = build_parser().parse_args(["dlq", "replay", "--offset", "3"])
    assert text.offset == ["3"] and text.dry_run is False
    assert _offsets(["3", "1:7"]) == {(None, 3), (1, 7)}
    with pytest.raises(StreamError, match="PARTITION:OFFSET"):
        _offsets(["a:b"])
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["dlq"]
    replay = next(a for a in sub._actions if a.dest == "dlq_command").choices["replay"]
    help_text = replay.format_help()
    assert "soccerkd_replayed_from" in help_text and "--dry-run" in help_text and "value_replaced" in help_text
    assert json.dumps(help_text)   # plain text
