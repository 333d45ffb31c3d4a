"""Stop signals before the service can handle them (a light module: ``soccerkd serve`` imports it
first, before the service, torch and the model)."""

from __future__ import annotations

import signal
from typing import Any, Callable


def record_stop_signals() -> list[int]:
    """Record SIGTERM/SIGINT in the returned list instead of dying by them, until the service
    installs its own handlers (:func:`install_stop_handlers`).
    Loading torch and the model takes seconds; an orchestrator that stops an instance in that
    time should see it exit cleanly (code 0), not be killed by the signal (code -15)."""
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    return received


def install_stop_handlers(on_stop: Callable[[int], None], *, received: list[int] | None = None) -> None:
    """SIGTERM/SIGINT call ``on_stop(signum)``. ``received``: the signals
    :func:`record_stop_signals` caught before; the last one calls it at once. SIGUSR1 prints
    every thread's stack to stderr (``kill -USR1 <pid>``: where a stuck instance waits)."""
    import faulthandler

    def handler(signum: int, _frame: Any) -> None:
        on_stop(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    if received:
        on_stop(received[-1])
    faulthandler.register(signal.SIGUSR1, all_threads=True)
