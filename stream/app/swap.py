"""Model hot-swap: ``soccerkd serve`` loads a new checkpoint on SIGHUP and swaps it in between two
batches, with no restart and no frame lost.

Why SIGHUP, not a watched path or a control topic: the operator says when the new file is
complete (a watcher can fire on a half-copied checkpoint), it needs no extra topic or ACL, it is
how daemons are told to reload (``kill -HUP``, ``docker kill -s HUP``, ``kubectl exec … kill -HUP 1``),
and ``soccerkd ingest --sources`` reloads its cameras the same way. ``serve --workers N`` passes
it to every worker.

The flow, decided on the serve loop's thread (:meth:`ModelSwapper.poll`, once a turn):

1. :meth:`~ModelSwapper.request` (the signal handler) only sets a flag. The next turn starts
   loading ``model.checkpoint`` on a thread of its own: read it, check it (the same classes in
   the same order, an input spec whose clip, size and resize the windows already have), and run
   one warm-up batch. The serve loop goes on with the old model meanwhile.
2. A checkpoint that fails any of that is refused: one log line saying why, a count by reason,
   and the old model keeps serving.
3. With ``model.canary_windows`` N > 0 the candidate first runs in shadow on live windows, as
   the teacher shadow does (:class:`~stream.inference.shadow.ShadowRunner`). It is promoted once
   it has been compared on N windows with top-1 agreement of at least ``model.canary_agreement``,
   and refused if lower, or if N windows do not come within ``model.canary_timeout_s``.
4. The swap runs between two batches (:meth:`stream.core.pipeline.Pipeline.swap_model`): open
   segments end as the old model's events, the predictor adopts the new model, and the windows
   still waiting are run by the new one. Each event is one model's, and its id names that model.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from stream.core.pipeline import Outputs, Pipeline

log = logging.getLogger("soccerkd.swap")
REFUSALS = ("load_error", "incompatible", "unchanged", "canary_disagrees", "canary_timeout")


class SwapMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.info = Gauge("soccerkd_model_info", "1 for the model serving now, by name and checkpoint sha256",
                          ["model_name", "checkpoint_sha256"], registry=r)
        self.swaps = Counter("soccerkd_model_swaps", "Models swapped in without a restart", registry=r)
        self.refusals = Counter("soccerkd_model_swap_refusals", "Reload requests refused, the old model kept "
                                "serving, by reason", ["reason"], registry=r)
        self.seconds = Gauge("soccerkd_model_swap_seconds", "The last swap's time by phase: load (read, check and "
                             "warm up, off the serve loop), canary, switch (the serve loop's pause); 0 before the "
                             "first", ["phase"], registry=r)
        for reason in REFUSALS:
            self.refusals.labels(reason=reason)
        for phase in ("load", "canary", "switch"):   # 0 until the first swap
            self.seconds.labels(phase=phase)

    def serving(self, model_name: str, checkpoint_sha256: str) -> None:
        self.info.clear()
        self.info.labels(model_name=model_name, checkpoint_sha256=checkpoint_sha256).set(1)


class Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Candidate:
    predictor: Any   # a TorchPredictor on the live one's device
    requested_at: float
    load_s: float
    canary: Any = None   # its ShadowRunner while it runs in shadow
    canary_since: float = 0.0


class ModelSwapper:
    """Loads, checks, optionally canaries and swaps in a new model; see the module docstring.

    ``live``: the serving :class:`~stream.inference.predictors.TorchPredictor`. ``load()``: the
    candidate, read from the configured checkpoint on the live predictor's device. ``spare()``:
    whether the service has capacity for the canary now. The live predictor must be wrapped so
    that every window it classifies reaches :meth:`offer` (``ShadowedPredictor(live, swapper)``).
    """

    def __init__(self, live: Any, *, load: Callable[[], Any], registry: CollectorRegistry, canary_windows: int = 0,
                 canary_agreement: float = 0.9, canary_timeout_s: float = 600.0,
                 spare: Callable[[], bool] = lambda: True, clock: Callable[[], float] = time.monotonic) -> None:
        self.live = live
        self.load = load
        self.metrics = SwapMetrics(registry)
        self.canary_windows = canary_windows
        self.canary_agreement = canary_agreement
        self.canary_timeout_s = canary_timeout_s
        self.spare = spare
        self.clock = clock
        self.swaps = 0
        self.refusals: list[str] = []   # reasons, in order (tests and the log line read them)
        self._requested = threading.Event()
        self._loading: Optional[threading.Thread] = None
        self._loaded: list[Any] = []   # the loading thread's result: a _Candidate or a Refused
        self._candidate: Optional[_Candidate] = None
        self.metrics.serving(live.model_name, live.checkpoint_sha256)

    def request(self) -> None:
        """Ask for a reload of the checkpoint (safe in a signal handler: sets a flag)."""
        self._requested.set()

    @property
    def busy(self) -> bool:
        return self._loading is not None or self._candidate is not None

    def offer(self, window: Any, probs: Sequence[float]) -> bool:
        """Every window the live model classified (through ``ShadowedPredictor``): to the canary, if one runs."""
        c = self._candidate
        return c is not None and c.canary is not None and c.canary.offer(window, probs)

    def poll(self, pipeline: Pipeline) -> Outputs:
        """Once a serve-loop turn: start a requested load, take a finished one, judge the canary, or
        swap. Returns the events the swap ended (to publish), else nothing."""
        if self._requested.is_set() and not self.busy:
            self._requested.clear()
            self._loading = threading.Thread(target=self._load, args=(self.clock(),), name="model-load", daemon=True)
            self._loading.start()
        if self._loading is not None and not self._loading.is_alive():
            self._loading = None
            result = self._loaded.pop()
            if isinstance(result, Refused):
                self._refuse(result.reason, str(result))
                return Outputs()
            self._candidate = result
            if self.canary_windows > 0:
                self._start_canary(result)
        c = self._candidate
        if c is None:
            return Outputs()
        if c.canary is not None:
            if c.canary.compared < self.canary_windows:
                if self.clock() - c.canary_since > self.canary_timeout_s:
                    self._refuse("canary_timeout", f"the canary saw {c.canary.compared} of {self.canary_windows} "
                                 f"windows in model.canary_timeout_s ({self.canary_timeout_s:g} s)")
                return Outputs()
            agreement = c.canary.agreement or 0.0
            if agreement < self.canary_agreement:
                self._refuse("canary_disagrees", f"the canary agreed with the live model on {agreement:.3f} of "
                             f"{c.canary.compared} windows, below model.canary_agreement ({self.canary_agreement:g})")
                return Outputs()
            log.info("canary agreed on %.3f of %d windows: promoting it", agreement, c.canary.compared)
            self.metrics.seconds.labels(phase="canary").set(self.clock() - c.canary_since)
            self._stop_canary(c)
        return self._swap(pipeline, c)

    def close(self) -> None:
        if self._candidate is not None:
            self._drop(self._candidate)

    # -- steps ----------------------------------------------------------------------------------
    def _load(self, requested_at: float) -> None:
        """On the loading thread: the candidate, checked and warmed up, or the Refused that says why."""
        from stream.inference.shadow import check_same_input

        t0 = self.clock()
        try:
            candidate = self.load()
        except Exception as exc:
            self._loaded.append(Refused("load_error", f"the checkpoint does not load: {type(exc).__name__}: {exc}"))
            return
        live = self.live
        try:
            if candidate.checkpoint_sha256 == live.checkpoint_sha256:
                raise Refused("unchanged", f"the checkpoint is the one serving (sha256 {live.checkpoint_sha256[:12]})")
            if tuple(candidate.class_names) != tuple(live.class_names):
                raise Refused("incompatible", f"its classes {list(candidate.class_names)} are not the serving model's "
                                              f"{list(live.class_names)}, in that order")
            try:
                check_same_input(live.input_spec, candidate.input_spec)
            except Exception as exc:
                raise Refused("incompatible", str(exc)) from None
            spec = candidate.input_spec
            shape = (1, 3, spec.clip.num_frames, spec.size, spec.size)
            try:   # one batch through it, off the serve loop: a model that cannot run is refused here
                import torch

                candidate.predict_tensor(torch.zeros(shape, device=candidate.device))
            except Exception as exc:
                raise Refused("load_error", f"a warm-up batch failed: {type(exc).__name__}: {exc}") from None
        except Refused as refused:
            candidate.close()
            self._loaded.append(refused)
            return
        self._loaded.append(_Candidate(candidate, requested_at, self.clock() - t0))

    def _start_canary(self, c: _Candidate) -> None:
        from stream.inference.shadow import ShadowMetrics, ShadowRunner, TorchShadowTeacher

        teacher = TorchShadowTeacher(c.predictor, self.live)
        c.canary = ShadowRunner(teacher, student_classes=self.live.class_names, teacher_classes=c.predictor.class_names,
                                metrics=ShadowMetrics(CollectorRegistry()), sample_rate=1.0,
                                queue_size=max(32, self.canary_windows), agreement_window=self.canary_windows,
                                prepare=teacher.prepare, spare=self.spare).start()
        c.canary_since = self.clock()
        log.info("model %s (sha256 %s) loaded in %.2f s; running it as a canary on %d live windows",
                 c.predictor.model_name, c.predictor.checkpoint_sha256[:12], c.load_s, self.canary_windows)

    def _swap(self, pipeline: Pipeline, c: _Candidate) -> Outputs:
        t0 = self.clock()
        old = f"{self.live.model_name} (sha256 {self.live.checkpoint_sha256[:12]})"
        out = pipeline.swap_model(lambda: self.live.adopt_model(c.predictor))
        switch_s = self.clock() - t0
        c.predictor.close()   # its decoder; the model itself now serves in the live predictor
        self._candidate = None
        self.swaps += 1
        m = self.metrics
        m.swaps.inc()
        m.serving(self.live.model_name, self.live.checkpoint_sha256)
        m.seconds.labels(phase="load").set(c.load_s)
        m.seconds.labels(phase="switch").set(switch_s)
        log.info("model swapped: %s -> %s (sha256 %s); load %.2f s, switch %.1f ms, %d open segment(s) ended, "
                 "%.2f s since the request", old, self.live.model_name, self.live.checkpoint_sha256[:12], c.load_s,
                 switch_s * 1000, len(out.events), self.clock() - c.requested_at)
        return out

    def _refuse(self, reason: str, message: str) -> None:
        if self._candidate is not None:
            self._drop(self._candidate)
        self.refusals.append(reason)
        self.metrics.refusals.labels(reason=reason).inc()
        log.warning("model reload refused (%s), %s keeps serving: %s", reason, self.live.model_name, message)

    def _stop_canary(self, c: _Candidate) -> None:
        if c.canary is not None:
            c.canary.close()
            c.canary = None

    def _drop(self, c: _Candidate) -> None:
        self._stop_canary(c)
        c.predictor.close()
        self._candidate = None
