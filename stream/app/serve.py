"""``soccerkd serve``: one service in this process, or ``--workers N`` processes sharing a host
(and its GPU) in one consumer group."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from typing import Any, Callable

from stream.app.compose import build_service
from stream.app.signals import record_stop_signals
from stream.config import StreamConfig
from stream.errors import FailStop, StreamError

log = logging.getLogger("soccerkd.serve")


@dataclass
class ServeOutcome:
    counts: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False   # stopped by SIGINT (Ctrl-C): the command exits 130


def serve(config: StreamConfig, *, max_seconds: float | None = None, workers: int = 1,
          received: list[int] | None = None) -> ServeOutcome:
    """Run the service until SIGTERM/SIGINT (or ``max_seconds``): in this process, or in
    ``workers`` processes (see :func:`serve_workers`). Returns the summed counters.
    ``received``: from a :func:`~stream.app.signals.record_stop_signals` the caller installed earlier."""
    if workers > 1:
        return serve_workers(config, workers, max_seconds=max_seconds, received=received)
    if received is None:
        received = record_stop_signals()
    service = build_service(config)
    service.install_signal_handlers(received=received)
    counts = service.run(max_seconds=max_seconds)
    return ServeOutcome(counts, interrupted=service.stopped_by == signal.SIGINT)


def worker_configs(config: StreamConfig, workers: int) -> list[StreamConfig]:
    """The config of each of ``workers`` processes on one host.

    Every worker joins the same consumer group with its own static member id
    ``<base>-w<i>``, the base being ``kafka.group_instance_id`` or ``<hostname>-serve``, so a
    restarted worker takes its partitions back without a rebalance. Metrics: worker ``i``
    serves ``metrics_port + i`` (one scrape target per worker; the deploy files list them).
    """
    import dataclasses
    import socket

    if workers < 1:
        raise StreamError(f"--workers must be >= 1, got {workers!r}")
    base = config.kafka.group_instance_id or f"{socket.gethostname()}-serve"
    return [dataclasses.replace(
        config, kafka=dataclasses.replace(config.kafka, group_instance_id=f"{base}-w{i}"),
        metrics_port=None if config.metrics_port is None else config.metrics_port + i) for i in range(workers)]


def _worker_main(config: StreamConfig, max_seconds: float | None, results: Any, log_setup: tuple[str, str]) -> None:
    from stream.app import logs

    received = record_stop_signals()   # the parent forwards a SIGTERM to a worker still loading
    logs.configure(*log_setup)
    service = build_service(config)
    service.install_signal_handlers(received=received)
    results.put(service.run(max_seconds=max_seconds))


def serve_workers(config: StreamConfig, workers: int, *, max_seconds: float | None = None,
                  received: list[int] | None = None, target: Callable[..., None] = _worker_main) -> ServeOutcome:
    """``workers`` service processes sharing this host (and its GPU), one consumer group.

    A SIGHUP to this process is passed to every worker (each reloads its model). A SIGTERM or
    SIGINT to this process is passed to every worker, and each one runs its
    waiting windows, publishes and commits before it exits. A worker that fails makes the others
    stop the same way, and this function raise (:class:`FailStop`, exit 1) once they have: the
    process a supervisor watches goes down with it, and the restart replays the failed worker's
    partitions. ``received``: stop signals that came before (see :func:`serve`); after one, no
    further worker is started. ``target``: the worker's function (tests replace it).
    """
    import multiprocessing as mp

    from stream.app import logs

    ctx = mp.get_context("spawn")   # CUDA cannot be forked; spawn also gives each a clean torch
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(cfg, max_seconds, results, logs.current()), name=f"serve-w{i}")
             for i, cfg in enumerate(worker_configs(config, workers))]

    # a SIGHUP before the workers start needs nothing: they read the checkpoint afterwards
    stopped_by: list[int] = [s for s in received or () if s != signal.SIGHUP]
    stopping: list[str] = []   # why the workers are being stopped: a signal, or a failed worker

    def stop_all(why: str) -> None:
        stopping.append(why)
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    def forward(signum: int, _frame: Any) -> None:
        stopped_by.append(signum)
        stop_all(signal.Signals(signum).name)

    def reload(_signum: int, _frame: Any) -> None:   # every worker reloads its model (stream.app.swap)
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGHUP)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, reload)
    try:
        for p in procs:
            if stopped_by:   # a worker started after the signal would never be told to stop
                break
            p.start()
        started = [p for p in procs if p.pid is not None]
        log.info("started %d workers: %s", len(started), ", ".join(f"{p.name} (pid {p.pid})" for p in started))
        while any(p.is_alive() for p in started):
            for p in started:
                p.join(0.2)
                if p.exitcode not in (None, 0) and not stopping:
                    log.error("worker %s exited with code %s; stopping the others", p.name, p.exitcode)
                    stop_all(f"{p.name} failed")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    totals: dict[str, int] = {}
    for _ in [p for p in started if p.exitcode == 0]:   # each worker that ran to the end put its counts
        for key, value in results.get(timeout=10).items():
            totals[key] = totals.get(key, 0) + value
    # a worker still starting when the SIGTERM was forwarded dies by it before it has consumed
    # anything: stopped as asked (a running worker handles the signal and exits 0)
    failed = [f"{p.name} exit {p.exitcode}" for p in started
              if p.exitcode != 0 and not (stopping and p.exitcode == -signal.SIGTERM)]
    if failed:   # the others published and committed; the restart replays the failed ones' partitions
        raise FailStop(f"worker(s) failed: {', '.join(failed)}")
    return ServeOutcome(totals, interrupted=signal.SIGINT in stopped_by)
