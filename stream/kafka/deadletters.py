"""Dead letters: a rejected frames message goes to the dead-letter topic with Kafka Connect's
error context in its headers (why, where from, who rejected it when)."""

from __future__ import annotations

from typing import Any

from stream.core.ledger import SourceRef

# The headers of every dead letter, in order (see dlq_headers), plus "value_replaced" when the
# value was too large for the dead-letter topic and was dropped.
DLQ_HEADERS = ("source_topic", "source_partition", "source_offset", "reason", "error", "error_class", "error_stack",
               "source_timestamp_ms", "source_headers", "consumer_group", "service_version", "dlq_time")


def dlq_headers(ref: SourceRef, error: BaseException, *, record: Any = None, group: str = "",
                replaced: int | None = None) -> list[tuple[str, bytes]]:
    """Headers of a dead-lettered message, as Kafka Connect's error context: why it was rejected
    (reason, exception class, message, a truncated stack), where it came from (topic, partition,
    offset, timestamp and its own headers), and who rejected it when (group, service version,
    time). ``replaced``: the value was too large for the dead-letter topic and was dropped."""
    import json
    import time
    import traceback

    from stream import __version__

    reason = str(getattr(error, "reason", "processing_error"))
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))[-2000:]
    headers = [("source_topic", ref.topic), ("source_partition", str(ref.partition)),
               ("source_offset", str(ref.offset)), ("reason", reason), ("error", _text(error)[:1000]),
               ("error_class", type(error).__name__), ("error_stack", stack),
               ("source_timestamp_ms", _text(getattr(record, "timestamp", "") or "")),
               ("source_headers", json.dumps(_original_headers(record))[:2000]), ("consumer_group", group),
               ("service_version", __version__),
               ("dlq_time", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))]
    if replaced is not None:
        headers.append(("value_replaced", f"the {replaced}-byte value was over the dead-letter topic's limit"))
    return [(k, v.encode("utf-8", "replace")) for k, v in headers]


def _text(value: Any) -> str:
    """``value`` as text, whatever it is: bytes are decoded (bad UTF-8 replaced), None is empty."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:   # a __str__ that raises must not stop the dead letter
        return f"<{type(value).__name__}>"


def _original_headers(record: Any) -> list[tuple[str, str | None]]:
    """The rejected record's own headers, for any shape Kafka clients produce: a null value (Java,
    librdkafka) stays null; a header list that is not one is reported as such."""
    try:
        return [(_text(k), None if v is None else _text(v)) for k, v in (getattr(record, "headers", None) or [])]
    except (TypeError, ValueError):
        return [("unreadable_headers", _text(getattr(record, "headers", None))[:200])]


class DeadLetters:
    """Sends rejected frames messages to the dead-letter topic through the service's publisher
    (so a failed dead letter stops commits like a failed event). A value too large for that topic
    is replaced by an empty one and a header says so, so this path cannot fail on size."""

    HEADROOM = 64 * 1024   # bytes kept for a dead letter's headers and record overhead

    def __init__(self, publisher: Any, *, topic: str, group: str, max_request_size: int) -> None:
        self.publisher = publisher
        self.topic = topic
        self.group = group
        self.max_value_bytes = max_request_size - self.HEADROOM

    def send(self, record: Any, ref: SourceRef, error: BaseException) -> str:
        """Dead-letter ``record`` (a consumer record: key, value, headers, timestamp) rejected for
        ``error``; returns the reason it was filed under."""
        value, replaced = record.value, None
        if value is not None and len(value) > self.max_value_bytes:
            value, replaced = b"", len(value)
        key = record.key if record.key is None or len(record.key) <= 4096 else record.key[:4096]
        self.publisher.send(self.topic, key=key, value=value,
                            headers=dlq_headers(ref, error, record=record, group=self.group, replaced=replaced))
        return getattr(error, "reason", "processing_error")
