"""Kafka adapters: one connection config, the frames consumer, the publisher, dead letters, topic
administration and the events reader. Nothing here reads the service config."""
