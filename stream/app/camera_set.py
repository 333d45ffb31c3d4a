"""The cameras of one ``soccerkd ingest --sources`` process, changed while it runs.

A reload (SIGHUP, see :func:`stream.app.ingest.ingest_many`) reads the cameras file again and
compares each camera's options (every field of :class:`~stream.app.ingest.IngestOptions`, the
command line's defaults included) with the running ones:

- a new ``camera_id`` starts;
- a ``camera_id`` no longer in the file stops reading, sends the frames it holds (a short last
  batch) and ends;
- a ``camera_id`` whose options changed does both, so only it restarts (its numbering starts
  again at ``start_seq``: the service starts a new stream epoch, as after a reconnect);
- every other camera is not touched: same thread, same numbering, no frame lost.

A file that does not load (bad YAML, an unknown option, a bad value, a ``camera_id`` twice, a
topic that does not exist) changes nothing: one log line names the problem.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from soccerkd.errors import SoccerKDError

from stream.app.ingest import CameraResult, IngestOptions, run_camera
from stream.errors import redact_url

log = logging.getLogger("soccerkd.ingest")
STOP_TIMEOUT_S = 30.0   # longest wait for a stopped camera to send what it holds


@dataclass
class _Running:
    options: IngestOptions
    result: CameraResult
    stop: threading.Event
    thread: threading.Thread


@dataclass(frozen=True)
class ReloadOutcome:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    unchanged: int = 0
    refused: str | None = None   # why the file was refused (nothing changed then)


class CameraSet:
    """A capture-encode-send thread per camera over one shared (thread-safe) producer; cameras
    start, stop and restart one by one. ``results`` keeps every run, in start order (a restarted
    camera has two)."""

    def __init__(self, producer: Any, *, metrics: Any = None, progress: bool = False) -> None:
        self.producer = producer
        self.metrics = metrics
        self.progress = progress
        self.results: list[CameraResult] = []
        self._running: dict[str, _Running] = {}

    @property
    def camera_ids(self) -> list[str]:
        return list(self._running)

    def start(self, options: IngestOptions) -> None:
        stop = threading.Event()
        result = CameraResult(options.camera_id)
        thread = threading.Thread(target=self._run, args=(options, result, stop), daemon=True,
                                  name=f"camera-{options.camera_id}")
        self._running[options.camera_id] = _Running(options, result, stop, thread)
        self.results.append(result)
        self._set_running()
        thread.start()

    def _run(self, options: IngestOptions, result: CameraResult, stop: threading.Event) -> None:
        try:
            run_camera(options, self.producer, result.stats, stop=stop, metrics=self.metrics, progress=self.progress)
        except Exception as exc:   # one bad source never stops the others
            result.error = redact_url(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
            log.error("camera %s stopped: %s", options.camera_id, result.error)
            if self.metrics is not None:
                self.metrics.errors.labels(camera=options.camera_id).inc()

    def stop(self, camera_ids: list[str], *, state: str) -> None:
        """Stop these cameras (all at once), wait until each has sent what it holds, forget them;
        ``state`` (``removed`` or ``restarted``) is what their result says."""
        gone = [(run, run.thread.is_alive()) for run in (self._running.pop(cam) for cam in camera_ids)]
        for run, _ in gone:
            run.stop.set()
        for run, was_running in gone:
            run.thread.join(STOP_TIMEOUT_S)
            if was_running:   # one that had ended keeps its own state (done, failed)
                run.result.state = state
            s = run.result.stats
            if run.thread.is_alive():
                log.error("camera %s: still sending after %.0f s; left behind", run.options.camera_id, STOP_TIMEOUT_S)
            else:
                log.info("camera %s %s: %d frames sent in %d batches, the last ones included", run.options.camera_id,
                         state, s.frames, s.batches)
            if self.metrics is not None and state == "removed":
                self.metrics.forget_camera(run.options.camera_id)
        self._set_running()

    def stop_all(self) -> None:
        for run in self._running.values():
            run.stop.set()

    def alive(self) -> bool:
        return any(run.thread.is_alive() for run in self._running.values())

    def join(self, timeout_s: float) -> None:
        for run in list(self._running.values()):
            run.thread.join(timeout_s)

    def reload(self, load: Callable[[], list[IngestOptions]]) -> ReloadOutcome:
        """Bring the running cameras to what ``load()`` returns (see the module docstring); a
        load that raises changes nothing."""
        try:
            wanted = {c.camera_id: c for c in load()}
        except Exception as exc:   # whatever the file or the broker check raised: the running set stays
            text = " ".join(str(exc).split())
            why = redact_url(text if isinstance(exc, SoccerKDError) else f"{type(exc).__name__}: {text}")
            log.error("cameras reload refused, the %d running camera(s) are kept: %s", len(self._running), why)
            self._count_reload("refused")
            return ReloadOutcome(refused=why)
        removed = [cam for cam in self._running if cam not in wanted]
        restarted = [cam for cam, c in wanted.items() if cam in self._running and self._running[cam].options != c]
        added = [cam for cam in wanted if cam not in self._running]
        self.stop(removed, state="removed")
        self.stop(restarted, state="restarted")
        for cam in restarted + added:
            self.start(wanted[cam])
        outcome = ReloadOutcome(tuple(added), tuple(removed), tuple(restarted),
                                len(wanted) - len(added) - len(restarted))
        log.info("cameras reloaded: added %s, removed %s, restarted %s, %d unchanged", list(added) or "none",
                 list(removed) or "none", list(restarted) or "none", outcome.unchanged)
        self._count_reload("applied")
        if self.metrics is not None:
            for change, cams in (("added", added), ("removed", removed), ("restarted", restarted)):
                self.metrics.camera_changes.labels(change=change).inc(len(cams))
        return outcome

    def _count_reload(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.reloads.labels(outcome=outcome).inc()

    def _set_running(self) -> None:
        if self.metrics is not None:
            self.metrics.cameras.set(len(self._running))
