"""Stop signals before the service can handle them (a light module: ``soccerkd serve`` imports it
first, before the service, torch and the model)."""

from __future__ import annotations

import signal


def record_stop_signals() -> list[int]:
    """Record SIGTERM/SIGINT in the returned list instead of dying by them, until the service
    installs its own handlers (:meth:`stream.app.service.StreamService.install_signal_handlers`).
    Loading torch and the model takes seconds; an orchestrator that stops an instance in that
    time should see it exit cleanly (code 0), not be killed by the signal (code -15)."""
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    return received
