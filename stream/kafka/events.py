"""Reading the action-event topic: ``read_events`` for code, ``tail`` for ``soccerkd events tail``."""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Any, Callable, Iterator, TextIO

from stream.core.wire import ActionEvent

COLUMNS = (("emitted", 12), ("camera", 12), ("label", 10), ("conf", 5), ("frames", 15), ("latency s", 9),
           ("event_id", 12))


def iter_records(bootstrap: str, topic: str, *, from_beginning: bool = True, timeout_s: float | None = None,
                 idle_s: float | None = None, should_stop: Callable[[], bool] = lambda: False,
                 isolation: str = "read_uncommitted", security: dict[str, Any] | None = None,
                 backlog: int = 0, max_poll_records: int = 500) -> Iterator[Any]:
    """Raw records of every partition of ``topic`` (no consumer group, nothing committed).

    Without ``from_beginning`` it starts at the end of each partition, less ``backlog`` records
    (never before the partition's first).

    Stops after ``timeout_s`` in total or ``idle_s`` without a new record (either may be None).
    ``isolation="read_committed"`` hides records of aborted and open transactions (what a reader
    of an ``exactly_once`` service wants).
    """
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    from stream.kafka.connection import partitions_for_topic

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=16 * 1024 * 1024, isolation_level=isolation,
                             max_poll_records=max_poll_records, **(security or {}))
    try:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        parts = None
        while parts is None:
            found = partitions_for_topic(consumer, topic, within_s=30.0)
            if found:
                parts = [TopicPartition(topic, p) for p in sorted(found)]
            elif deadline is not None and time.monotonic() > deadline:
                return
            else:
                time.sleep(0.2)
        consumer.assign(parts)
        (consumer.seek_to_beginning if from_beginning else consumer.seek_to_end)(*parts)
        if backlog > 0 and not from_beginning:
            first, end = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
            for tp in parts:
                consumer.seek(tp, max(first[tp], end[tp] - backlog))
        last = time.monotonic()
        while not should_stop():
            now = time.monotonic()
            if (deadline is not None and now > deadline) or (idle_s is not None and now - last > idle_s):
                return
            batch = consumer.poll(timeout_ms=200)
            for recs in batch.values():
                for rec in recs:
                    last = time.monotonic()
                    yield rec
    finally:
        consumer.close()


def read_events(bootstrap: str, topic: str, *, timeout_s: float = 10.0, idle_s: float | None = 2.0,
                until: Callable[[list[ActionEvent]], bool] | None = None,
                isolation: str = "read_uncommitted", security: dict[str, Any] | None = None) -> list[ActionEvent]:
    """Every event on ``topic`` (from the beginning), until ``until(events)`` holds, the topic is idle
    for ``idle_s`` or ``timeout_s`` passes."""
    events: list[ActionEvent] = []
    for rec in iter_records(bootstrap, topic, timeout_s=timeout_s, idle_s=idle_s, isolation=isolation,
                            should_stop=lambda: until is not None and until(events), security=security):
        events.append(ActionEvent.from_json(rec.value))
        if until is not None and until(events):
            break
    return events


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes, NUL, ...) shown as ``\\xNN``: whatever a
    producer wrote into an event cannot drive the reader's terminal."""
    return str(text).translate(_CONTROL)


def format_row(ev: ActionEvent, now: float | None = None) -> str:
    latency = ev.emitted_at - ev.end_capture_ts_ns / 1e9
    cells = (dt.datetime.fromtimestamp(ev.emitted_at).strftime("%H:%M:%S.%f")[:12], ev.camera_id, ev.label,
             f"{ev.confidence:.2f}", f"{ev.start_seq}-{ev.end_seq}", f"{latency:.2f}", ev.event_id[:12])
    return "  ".join(printable(c)[:w].ljust(w) for c, (_, w) in zip(cells, COLUMNS))


def header() -> str:
    return "  ".join(name.ljust(w) for name, w in COLUMNS)


def tail(bootstrap: str, topic: str, *, from_beginning: bool = False, max_events: int | None = None,
         timeout_s: float | None = None, out: TextIO = sys.stdout, isolation: str = "read_uncommitted",
         as_json: bool = False, security: dict[str, Any] | None = None) -> tuple[int, bool]:
    """Print events as a live table (or NDJSON, one event a line, with ``as_json``) until Ctrl-C,
    ``max_events`` or ``timeout_s``; returns (events shown, whether Ctrl-C stopped it)."""
    import signal
    import threading

    stopped = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C sets a flag the read loop checks, rather than raising inside the Kafka client
        # (where an interrupt can leave its close() waiting)
        previous = signal.signal(signal.SIGINT, lambda *_: stopped.set())
    if not as_json:
        print(header(), file=out, flush=True)
    n, interrupted = 0, False
    try:
        for rec in iter_records(bootstrap, topic, from_beginning=from_beginning, timeout_s=timeout_s,
                                isolation=isolation, security=security,
                                should_stop=lambda: stopped.is_set() or (max_events is not None and n >= max_events)):
            try:
                ev = ActionEvent.from_json(rec.value)
            except (ValueError, TypeError) as exc:
                print(f"(unreadable event at {rec.partition}@{rec.offset}: {printable(exc)})",
                      file=sys.stderr if as_json else out, flush=True)
                continue
            print(ev.to_json().decode() if as_json else format_row(ev), file=out, flush=True)
            n += 1
            if max_events is not None and n >= max_events:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return n, interrupted or stopped.is_set()
