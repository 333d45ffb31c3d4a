"""The composition root of ``soccerkd serve``: the predictor (and the teacher in shadow, and the
model swapper) from the config, and the function that makes the Kafka clients, handed to :class:`StreamService`."""

from __future__ import annotations

import time
from typing import Callable

from stream.app.metrics import Metrics
from stream.app.service import StreamService
from stream.app.swap import ModelSwapper
from stream.config import StreamConfig
from stream.core.ports import Predictor


def build_service(config: StreamConfig, *, predictor: Predictor | None = None, metrics: Metrics | None = None,
                  clock: Callable[[], float] = time.time) -> StreamService:
    """Load the model named by ``config.model`` (unless a ``predictor`` is given: its owner closes
    it) and build the service around it; nothing talks to Kafka until :meth:`StreamService.run`."""
    from stream.inference.predictors import TorchPredictor
    from stream.inference.shadow import ShadowedPredictor, ShadowRunner
    from stream.kafka.clients import connect

    metrics = metrics or Metrics()
    owns_predictor = predictor is None
    if predictor is None:
        m = config.model
        predictor = TorchPredictor.from_checkpoint(m.checkpoint, device=m.device, amp=m.amp,
                                                   cpu_threads=m.cpu_threads, decode=m.decode,
                                                   decode_threads=config.decode_threads, jpeg_draft=m.jpeg_draft,
                                                   frame_store_mb=m.frame_store_mb)
    service: StreamService | None = None
    shadow = swapper = None

    def spare() -> bool:   # a shadow model (teacher, canary) runs on spare capacity only
        return service is not None and service.pipeline.pending < config.batching.max_batch

    if owns_predictor:   # a model from the config can be reloaded from it (SIGHUP, stream.app.swap)
        swapper = _swapper(config, predictor, metrics, spare=spare)
        predictor = ShadowedPredictor(predictor, swapper)
    if config.shadow.enabled:   # the teacher on a sample of windows
        shadow = ShadowRunner.from_config(config.shadow, student=predictor, registry=metrics.registry,
                                          spare=spare).start()
        predictor = ShadowedPredictor(predictor, shadow)
    service = StreamService(config, predictor=predictor, connect=lambda: connect(config.kafka), metrics=metrics,
                            clock=clock, shadow=shadow, owns_predictor=owns_predictor, swapper=swapper)
    return service


def _swapper(config: StreamConfig, live: Predictor, metrics: Metrics, *, spare: Callable[[], bool]) -> ModelSwapper:
    """The hot swap of ``live`` (a TorchPredictor): SIGHUP reloads ``model.checkpoint`` onto its device."""
    from stream.inference.predictors import TorchPredictor

    m = config.model

    def load() -> TorchPredictor:   # the candidate needs no decode threads nor frame store of its own
        return TorchPredictor.from_checkpoint(m.checkpoint, device=str(live.device), amp=m.amp, decode=live.decode,
                                              frame_store_mb=1)

    return ModelSwapper(live, load=load, registry=metrics.registry, canary_windows=m.canary_windows,
                        canary_agreement=m.canary_agreement, canary_timeout_s=m.canary_timeout_s, spare=spare)
