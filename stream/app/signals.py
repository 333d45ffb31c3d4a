"""Stop (and reload) signals before the service can handle them (a light module: ``soccerkd
serve`` imports it first, before the service, torch and the model)."""

from __future__ import annotations

import signal
from typing import Any, Callable


def record_stop_signals() -> list[int]:
    """Record SIGTERM/SIGINT in the returned list instead of dying by them, until the service
    installs its own handlers (:func:`install_stop_handlers`).
    Loading torch and the model takes seconds; an orchestrator that stops an instance in that
    time should see it exit cleanly (code 0), not be killed by the signal (code -15)."""
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):   # SIGHUP would kill it: kept for later
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    return received


def install_stop_handlers(on_stop: Callable[[int], None], *, received: list[int] | None = None,
                          on_reload: Callable[[], None] | None = None) -> None:
    """SIGTERM/SIGINT call ``on_stop(signum)``, SIGHUP ``on_reload()`` (ignored without one).
    ``received``: the signals :func:`record_stop_signals` caught before; the last stop signal calls
    ``on_stop`` at once, and a SIGHUP among them ``on_reload`` (the file may have changed after the
    model was read). SIGUSR1 prints every thread's stack to stderr (``kill -USR1 <pid>``: where a
    stuck instance waits)."""
    import faulthandler

    def handler(signum: int, _frame: Any) -> None:
        on_stop(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    signal.signal(signal.SIGHUP, (lambda _signum, _frame: on_reload()) if on_reload else signal.SIG_IGN)
    received = received or []
    if on_reload and signal.SIGHUP in received:
        on_reload()
    stops = [s for s in received if s != signal.SIGHUP]
    if stops:
        on_stop(stops[-1])
    faulthandler.register(signal.SIGUSR1, all_threads=True)
