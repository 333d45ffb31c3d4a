"""For development and tests: a local Kafka broker, the end-to-end demo, fakes of the ports, the
bad-input corpus and test cameras."""
