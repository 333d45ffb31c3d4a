"""The one exception root of :mod:`stream`, its meaningful subclasses, and what a message may
show of a secret (nothing: URLs lose their credentials, a misplaced password is not echoed)."""

import re

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


# Credentials never reach a message: ``scheme://user:password@host`` becomes ``scheme://***@host``
# wherever it appears (a log line, an error, a repr). The authority ends at the first "/", "?",
# "#", quote or white space, so the greedy match takes a password that holds "@" too.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s'\"<>]*@")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def redact_url(text: str) -> str:
    """``text`` with the user name and password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text)


def is_env_name(value: object) -> bool:
    """Whether ``value`` looks like an environment variable's name (letters, digits, ``_``)."""
    return isinstance(value, str) and _ENV_NAME.fullmatch(value) is not None


def not_env_name(key: str, value: object) -> str:
    """The error text for a ``*_env`` setting that holds no variable name; the value itself is
    never echoed (it is often the password typed in the wrong place)."""
    size = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
    return (f"{key} must name an environment variable (letters, digits and _, not starting with a digit); "
            f"got a value ({size}, not shown) that does not: put the secret in that variable and its name here")
