"""``soccerkd topics create|list|describe|delete``, in the style of kafka-topics and kcat."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stream.cli.broker import add_kafka_arguments, kafka_client


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("topics", help="create, list, describe or delete Kafka topics")
    sub = parser.add_subparsers(dest="topics_command", required=True, metavar="ACTION")

    create = sub.add_parser("create", help="create topics (an existing one is left as it is)",
                            description="Create NAME with the frames topic's settings, or with --defaults the "
                                        "frames, events and dead-letter topics named in a stream config.")
    create.add_argument("names", nargs="*", metavar="NAME", help="topic(s) to create")
    create.add_argument("--defaults", action="store_true",
                        help="create the service's topics, named from --config")
    create.add_argument("--config", type=Path, default=None,
                        help="stream config naming the topics for --defaults (default: the built-in names "
                             "frames, events, frames-dlq)")
    create.add_argument("--partitions", type=int, default=4,
                        help="partitions of NAME, or of the frames and events topics with --defaults; one "
                             "camera's frames stay in one partition, so this caps the consumers that share "
                             "the cameras")
    create.add_argument("--max-message-bytes", type=int, default=16 * 1024 * 1024,
                        help="largest message (a frame batch) the frames topic accepts")
    create.add_argument("--retention-ms", type=int, default=60 * 60 * 1000,
                        help="how long the frames topic keeps frames (a replay after a crash needs only the "
                             "last commit interval)")
    create.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="any other topic setting, e.g. --set cleanup.policy=delete; repeatable")
    add_kafka_arguments(create)
    create.set_defaults(handler=_create)

    lst = sub.add_parser("list", help="list topics with partition and message counts")
    lst.add_argument("--all", action="store_true", help="include Kafka's internal topics")
    lst.add_argument("--json", action="store_true", help="print one JSON array instead of a table")
    add_kafka_arguments(lst)
    lst.set_defaults(handler=_list)

    desc = sub.add_parser("describe", help="partitions, end offsets and non-default settings of topics")
    desc.add_argument("names", nargs="+", metavar="NAME")
    desc.add_argument("--json", action="store_true", help="print one JSON array instead of text")
    add_kafka_arguments(desc)
    desc.set_defaults(handler=_describe)

    delete = sub.add_parser("delete", help="delete topics and every message in them")
    delete.add_argument("names", nargs="+", metavar="NAME")
    add_kafka_arguments(delete)
    delete.set_defaults(handler=_delete)


def _settings(items: list[str]) -> dict[str, str]:
    from stream.errors import StreamError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StreamError(f"--set {item!r} must look like KEY=VALUE (a Kafka topic setting)")
        out[key.strip()] = value.strip()
    return out


def _create(args: argparse.Namespace) -> int:
    from stream.kafka import admin as topics
    from stream.errors import StreamError

    config_bootstrap = None
    if args.defaults:
        from soccerkd.config import load_config

        from stream.config import StreamConfig
        from stream.kafka.config import KafkaConfig

        kafka = load_config(StreamConfig, args.config).kafka if args.config else KafkaConfig()
        config_bootstrap = kafka.bootstrap if args.config else None
        specs = topics.default_topics(kafka, frames_partitions=args.partitions, events_partitions=args.partitions,
                                      retention_ms=args.retention_ms)
        specs[0] = topics.TopicSpec(specs[0].name, specs[0].partitions, {
            **topics.frames_topic_config(max_message_bytes=args.max_message_bytes, retention_ms=args.retention_ms),
            **_settings(args.settings)})
        specs += [topics.TopicSpec(n, args.partitions) for n in args.names]
    elif args.names:
        if args.partitions < 1:
            raise StreamError(f"--partitions must be >= 1, got {args.partitions}")
        config = {**topics.frames_topic_config(max_message_bytes=args.max_message_bytes,
                                               retention_ms=args.retention_ms), **_settings(args.settings)}
        specs = [topics.TopicSpec(n, args.partitions, config) for n in args.names]
    else:
        raise StreamError("name the topic(s) to create, or give --defaults for the service's topics")
    kafka, security = kafka_client(args, config_bootstrap)
    for name, outcome in topics.create(kafka.bootstrap, specs, security=security):
        spec = next(s for s in specs if s.name == name)
        print(f"{name}: {outcome}" + (f" ({spec.partitions} partition(s))" if outcome == "created" else ""))
    return 0


def _list(args: argparse.Namespace) -> int:
    from stream.kafka import admin as topics

    kafka, security = kafka_client(args)
    infos = topics.list_topics(kafka.bootstrap, internal=args.all, security=security)
    if args.json:
        print(json.dumps([i.to_json() for i in infos]))
        return 0
    width = max([len(i.name) for i in infos] + [5])
    print(f"{'topic'.ljust(width)}  partitions  messages")
    for info in infos:
        print(f"{info.name.ljust(width)}  {info.partitions:>10}  {info.messages:>8}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from stream.kafka import admin as topics

    kafka, security = kafka_client(args)
    infos = topics.describe(kafka.bootstrap, args.names, security=security)
    if args.json:
        print(json.dumps([i.to_json() for i in infos]))
        return 0
    for info in infos:
        print(f"{info.name}: {info.partitions} partition(s), {info.messages} message(s)")
        for part, end in sorted(info.end_offsets.items()):
            print(f"  partition {part}: end offset {end}")
        for key, value in sorted(info.config.items()):
            print(f"  {key}={value}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from stream.kafka import admin as topics

    kafka, security = kafka_client(args)
    topics.delete(kafka.bootstrap, args.names, security=security)
    for name in args.names:
        print(f"{name}: deleted")
    return 0
