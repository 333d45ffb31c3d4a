"""``soccerkd dlq list|replay``: look at the dead-letter topic and send chosen dead letters back."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stream.cli.broker import add_kafka_arguments, kafka_client

REPLAY_HELP = """\
Re-publish chosen dead letters to the frames topic exactly as they first arrived: the original
key, value and headers, plus one header
'soccerkd_replayed_from: <dlq topic>@<partition>:<offset>', so a record that is dead-lettered
and replayed again shows every trip. Use it after fixing what rejected them, e.g. a deploy that
did not read a newer envelope version yet (reason unsupported_version); any reason can be
replayed.

Which dead letters: all of the topic's (from the beginning, up to its end when the command
starts), narrowed by --partition, --from-offset, --offset and --reason. Try --dry-run first:
it prints what would be sent and sends nothing.

Skipped, and said so: a dead letter whose value was not kept (too large for the dead-letter
topic: header value_replaced), whose original headers were cut (over 2,000 characters of JSON)
or whose key may have been cut (4,096 bytes); none of them can be sent as it was. Two header
changes are said per record, not refused: a null header value goes out empty (the Kafka client
cannot send null header values), and a value that was not UTF-8 comes back as its UTF-8
reading (the dead letter keeps headers as text).

The serving service treats replayed frames like any others: frames of a camera older than what
it has already seen from that camera are dropped as late or duplicate (soccerkd_dropped_frames_total).
"""


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="stream config naming the topics and the bootstrap (default: the built-in names "
                             "frames and frames-dlq)")
    parser.add_argument("--topic", default=None, help="dead-letter topic (default: the config's kafka.dlq_topic)")
    parser.add_argument("--partition", type=int, action="append", default=None, metavar="N",
                        help="only this partition of the dead-letter topic; repeatable (default: every one)")
    parser.add_argument("--from-offset", type=int, default=None, metavar="N",
                        help="start at this offset in each partition read (default: the oldest kept)")
    parser.add_argument("--offset", action="append", default=[], metavar="[PARTITION:]OFFSET",
                        help="only the dead letter at this offset (of any partition read, or of PARTITION); "
                             "repeatable")
    parser.add_argument("--reason", action="append", default=[], metavar="REASON",
                        help="only dead letters filed under this reason (e.g. unsupported_version, size_mismatch; "
                             "`soccerkd dlq list` shows them); repeatable")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to read the topic up to its end")
    add_kafka_arguments(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dlq", help="list dead letters, or replay them to the frames topic",
                                   description="The dead-letter topic holds the frames messages the service "
                                               "rejected, with why in their headers. `list` shows them; `replay` "
                                               "sends chosen ones back to the frames topic as they first came.")
    sub = parser.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    lst = sub.add_parser("list", help="a table of dead letters: partition, offset, reason, camera key, error",
                         description="One line per dead letter: partition, offset, reason, camera key, times "
                                     "replayed before, whether `replay` can send it as it was, and the error.")
    _add_selection(lst)
    lst.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    lst.set_defaults(handler=_list)

    from stream.cli import RawDescriptionDefaultsHelpFormatter

    rep = sub.add_parser("replay", help="re-publish chosen dead letters, original key, value and headers, "
                                        "to the frames topic", description=REPLAY_HELP,
                         formatter_class=RawDescriptionDefaultsHelpFormatter)
    _add_selection(rep)
    rep.add_argument("--to", default=None, metavar="TOPIC",
                     help="topic to publish to (default: the config's kafka.frames_topic)")
    rep.add_argument("--dry-run", action="store_true", help="print what would be replayed; send nothing")
    rep.set_defaults(handler=_replay)


def _offsets(items: list[str]) -> set[tuple[int | None, int]]:
    from stream.errors import StreamError

    out: set[tuple[int | None, int]] = set()
    for item in items:
        part, sep, off = item.rpartition(":")
        try:
            out.add((int(part) if sep else None, int(off)))
        except ValueError:
            raise StreamError(f"--offset {item!r} must be OFFSET or PARTITION:OFFSET (integers)") from None
    return out


def _chosen(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """(kafka config, the dead letters the selection flags choose)."""
    from soccerkd.config import load_config

    from stream.config import StreamConfig
    from stream.kafka.config import KafkaConfig
    from stream.kafka.dlq import read_dead_letters

    named = load_config(StreamConfig, args.config).kafka if args.config else KafkaConfig()
    kafka, security = kafka_client(args, named.bootstrap if args.config else None,
                                   frames_topic=named.frames_topic, dlq_topic=named.dlq_topic)
    offsets, reasons = _offsets(args.offset), set(args.reason)
    chosen = []
    for d in read_dead_letters(kafka.bootstrap, args.topic or kafka.dlq_topic, partitions=args.partition,
                               from_offset=args.from_offset, timeout_s=args.timeout, security=security):
        if reasons and d.reason not in reasons:
            continue
        if offsets and (d.partition, d.offset) not in offsets and (None, d.offset) not in offsets:
            continue
        chosen.append(d)
    return kafka, chosen


def _line(d: Any, to: str, dry_run: bool) -> str:
    note = f"  ({d.null_headers} null header value(s) sent empty)" if d.null_headers else ""
    return f"replay  {d.where}  {d.reason}  key {_key(d)} -> {to}{note}" + ("  (dry run)" if dry_run else "")


def _key(d: Any, width: int = 24) -> str:
    from stream.kafka.events import printable

    return "(null)" if d.key is None else printable(d.key.decode("utf-8", "replace"))[:width]


def _list(args: argparse.Namespace) -> int:
    from stream.kafka.events import printable

    _, letters = _chosen(args)
    if args.json:
        for d in letters:
            print(json.dumps({"partition": d.partition, "offset": d.offset, "reason": d.reason,
                              "key": None if d.key is None else d.key.decode("utf-8", "replace"),
                              "replays": d.replays, "replayable": d.problem is None, "problem": d.problem,
                              "error": d.error, "dlq_time": d.headers.get("dlq_time")}))
        return 0
    print(f"{'partition':>9}  {'offset':>8}  {'reason':<20}  {'camera key':<24}  {'replays':>7}  "
          f"{'replayable':<10}  error")
    for d in letters:
        print(f"{d.partition:>9}  {d.offset:>8}  {printable(d.reason)[:20]:<20}  {_key(d):<24}  {d.replays:>7}  "
              f"{'yes' if d.problem is None else 'no':<10}  {printable(d.problem or d.error)[:100]}")
    print(f"{len(letters)} dead letter(s)")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from collections import Counter

    from stream.kafka.connection import make_producer
    from stream.kafka.dlq import replay

    kafka, letters = _chosen(args)
    to = args.to or kafka.frames_topic
    sendable = [d for d in letters if d.problem is None]
    for d in letters:
        if d.problem is not None:
            print(f"skip    {d.where}  {d.reason}  key {_key(d)}: {d.problem}")
    verb = "would replay" if args.dry_run else "replayed"
    if sendable and not args.dry_run:
        producer = make_producer(kafka, client_id="soccerkd-dlq-replay")
        try:
            replay(producer, sendable, to, on_sent=lambda d: print(_line(d, to, False)))
        finally:
            producer.close()
    else:
        for d in sendable:
            print(_line(d, to, args.dry_run))
    by_reason = Counter(d.reason for d in sendable)
    detail = ", ".join(f"{r}: {n}" for r, n in sorted(by_reason.items()))
    print(f"{verb} {len(sendable)} of {len(letters)} chosen dead letter(s) to {to}" + (f" ({detail})" if detail else "")
          + (f"; skipped {len(letters) - len(sendable)} that cannot be sent as they were" if len(sendable) < len(letters)
             else ""))
    return 0
