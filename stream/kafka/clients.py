"""The service's Kafka clients as one bundle, built from a :class:`KafkaConfig`: the frames
consumer, the publisher (over a producer, transactional for exactly-once) and the dead letters."""

from __future__ import annotations

from dataclasses import dataclass

from stream.kafka.config import KafkaConfig
from stream.kafka.consumer import FramesConsumer
from stream.kafka.deadletters import DeadLetters
from stream.kafka.publisher import Publisher


@dataclass
class KafkaClients:
    consumer: FramesConsumer
    publisher: Publisher
    dead_letters: DeadLetters


def connect(config: KafkaConfig) -> KafkaClients:
    """Producer first (an exactly-once one fences its predecessor), then the consumer. Raises
    one line naming the address when no broker answers within ``connect_timeout_s``."""
    from stream.kafka.connection import make_producer

    exactly_once = config.delivery == "exactly_once"
    remake = (lambda: make_producer(config, transactional=True)) if exactly_once else None
    publisher = Publisher(make_producer(config, transactional=exactly_once), transactional=exactly_once,
                          timeout_s=config.commit_timeout_s, remake=remake)
    try:
        consumer = FramesConsumer(config)
    except BaseException:
        publisher.close()
        raise
    return KafkaClients(consumer, publisher, DeadLetters(publisher, topic=config.dlq_topic, group=config.group_id,
                                                         max_request_size=config.max_request_size))
