"""Reading dead letters back and replaying them: ``soccerkd dlq list`` and ``soccerkd dlq replay``.

A dead letter (:mod:`stream.kafka.deadletters`) keeps the rejected record's key and value and its
headers as JSON in ``source_headers``. A replay re-publishes that key, value and those headers,
plus one ``soccerkd_replayed_from: <dlq topic>@<partition>:<offset>`` header, so a record that
goes round again is visible (each trip adds one). A dead letter that cannot be replayed as it
was is skipped with the reason: its value was dropped (too large for the dead-letter topic), its
headers were cut (over 2,000 characters of JSON) or its key may have been cut (4,096 bytes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from stream.errors import StreamError

REPLAY_HEADER = "soccerkd_replayed_from"
MAX_DLQ_KEY = 4096   # DeadLetters cuts longer keys to this length


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic, read back."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str] = field(repr=False)   # the dead letter's own headers (reason, error, ...)
    original_headers: list[tuple[str, bytes | None]] | None = field(repr=False)   # None: unreadable
    problem: str | None = None   # why it cannot be replayed as it was; None: it can

    @property
    def reason(self) -> str:
        return self.headers.get("reason", "?")

    @property
    def error(self) -> str:
        return self.headers.get("error", "")

    @property
    def replays(self) -> int:
        """How many times the original had been replayed before it came back here."""
        return sum(1 for k, _ in self.original_headers or [] if k == REPLAY_HEADER)

    @property
    def null_headers(self) -> int:
        """Original headers with a null value (a replay sends them empty: see :func:`kafka_headers`)."""
        return sum(1 for _, v in self.original_headers or [] if v is None)

    @property
    def where(self) -> str:
        return f"{self.topic}@{self.partition}:{self.offset}"

    @classmethod
    def from_record(cls, rec: Any) -> "DeadLetter":
        """``rec``: a consumer record of the dead-letter topic."""
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in (rec.headers or [])}
        original, problem = _original_headers(headers.get("source_headers"))
        if "value_replaced" in headers:
            problem = f"value not kept: {headers['value_replaced']}"
        elif rec.key is not None and len(rec.key) >= MAX_DLQ_KEY:
            problem = f"key may have been cut to {MAX_DLQ_KEY} bytes"
        elif "reason" not in headers:
            problem = "not a dead letter of this service (no reason header)"
        return cls(topic=rec.topic, partition=rec.partition, offset=rec.offset, key=rec.key, value=rec.value,
                   headers=headers, original_headers=original, problem=problem)

    def replay_headers(self) -> list[tuple[str, bytes | None]]:
        """The original headers (null values as read: None) plus the replay marker."""
        if self.original_headers is None:
            raise StreamError(f"dead letter {self.where} cannot be replayed: {self.problem}")
        return [*self.original_headers, (REPLAY_HEADER, self.where.encode())]


def _original_headers(text: str | None) -> tuple[list[tuple[str, bytes | None]] | None, str | None]:
    if text is None:
        return None, "no source_headers header"
    try:
        pairs = json.loads(text)
        out = [(str(k), None if v is None else str(v).encode("utf-8")) for k, v in pairs]
    except (ValueError, TypeError) as exc:
        return None, f"original headers unreadable (cut at 2,000 characters?): {type(exc).__name__}"
    if out and out[0][0] == "unreadable_headers":
        return None, "the original headers were unreadable when it was dead-lettered"
    return out, None


def read_dead_letters(bootstrap: str, topic: str, *, partitions: Iterable[int] | None = None,
                      from_offset: int | None = None, timeout_s: float = 30.0,
                      security: dict[str, Any] | None = None) -> Iterator[DeadLetter]:
    """Every dead letter of ``topic`` (or of ``partitions``) from the beginning, or from
    ``from_offset`` on, up to the end offsets as they were when reading began (no group, nothing
    committed). Fails when the topic does not exist or the end is not reached in ``timeout_s``."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=16 * 1024 * 1024, **(security or {}))
    try:
        found = consumer.partitions_for_topic(topic)
        if not found:
            raise StreamError(f"dead-letter topic {topic!r} not found on {bootstrap} (--topic)")
        wanted = sorted(found) if partitions is None else sorted(set(partitions))
        missing = [p for p in wanted if p not in found]
        if missing:
            raise StreamError(f"topic {topic!r} has no partition {missing[0]} (it has {sorted(found)})")
        parts = [TopicPartition(topic, p) for p in wanted]
        consumer.assign(parts)
        ends = consumer.end_offsets(parts)
        starts = consumer.beginning_offsets(parts)
        for tp in parts:
            consumer.seek(tp, max(starts[tp], from_offset) if from_offset is not None else starts[tp])
        todo = {tp for tp in parts if consumer.position(tp) < ends[tp]}
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise StreamError(f"reading {topic!r} did not reach its end offsets within {timeout_s:g} s")
            for tp, recs in consumer.poll(timeout_ms=200).items():
                for rec in recs:
                    if rec.offset < ends[tp]:
                        yield DeadLetter.from_record(rec)
                if consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
    finally:
        consumer.close()


def kafka_headers(headers: list[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    """``headers`` as kafka-python's producer takes them. It cannot send a null header value (its
    ``send`` refuses ``None`` and its batch accounting takes ``len`` of every value), so a null
    value goes out empty; :attr:`DeadLetter.null_headers` counts them and the command says so."""
    return [(k, b"" if v is None else v) for k, v in headers]


def replay(producer: Any, letters: Iterable[DeadLetter], to_topic: str, *, flush_timeout_s: float = 30.0,
           on_sent: Callable[[DeadLetter], None] = lambda d: None) -> int:
    """Publish each dead letter's original key, value and headers (plus the replay marker) to
    ``to_topic`` and wait until the broker has taken every one; returns how many."""
    futures = []
    for d in letters:
        futures.append(producer.send(to_topic, key=d.key, value=d.value, headers=kafka_headers(d.replay_headers())))
        on_sent(d)
    producer.flush(timeout=flush_timeout_s)
    for f in futures:
        f.get(timeout=flush_timeout_s)   # a send that failed raises here, naming the broker's error
    return len(futures)
