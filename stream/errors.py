"""The one exception root of :mod:`stream` and its meaningful subclasses."""

from soccerkd.errors import SoccerKDError


class StreamError(SoccerKDError):
    """Root of every error the service raises on purpose."""


class BrokerError(StreamError):
    """The local Kafka broker cannot be resolved, started, reached or stopped."""
