"""The one exception root of :mod:`stream` and its meaningful subclasses."""

from soccerkd.errors import SoccerKDError


class StreamError(SoccerKDError):
    """Root of every error the service raises on purpose."""


class BrokerError(StreamError):
    """The local Kafka broker cannot be resolved, started, reached or stopped."""


class FailStop(Exception):
    """The service stops on purpose after a fault it cannot repair in place (a producer call
    wedged past ``kafka.commit_timeout_s``, a fetch that stays stalled after a reset, a failed
    ``--workers`` worker). Nothing the user gave is wrong, so this is not a :class:`StreamError`
    (exit code 2): the command says "failing stop" after the reason and exits 1, and the restart
    a supervisor makes replays from the last commit. The message is the reason only."""
