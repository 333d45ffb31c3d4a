"""The ports the core needs, defined here and implemented outside it: a :class:`Predictor`
(:mod:`stream.inference` implements it with torch; :mod:`stream.dev.testing` with a script),
the :class:`FrameJob` it prepares, and the :class:`PipelineMetrics` the core reports to
(:mod:`stream.app.metrics` implements it with Prometheus).

A :class:`Predictor` owns the frames the windows point at:

* ``prepare(jobs)`` decodes and preprocesses a batch of encoded frames (every frame of one
  ``poll``) and returns one payload per frame, or the :class:`EnvelopeError` that rejects it;
* ``retain``/``release`` count the references windows hold to payloads, so a frame shared by
  overlapping windows is kept once and freed when the last one is done with it;
* ``predict(windows)`` turns a batch of windows, from any cameras, into class probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from soccerkd.spec import InputSpec

if TYPE_CHECKING:
    import numpy as np

    from stream.core.windowing import ClipWindow


@dataclass(frozen=True)
class FrameJob:
    """One encoded frame to prepare, with the size its envelope declares."""

    data: bytes
    width: int
    height: int


class Predictor(Protocol):
    """What the pipeline needs from a model."""

    model_name: str
    checkpoint_sha256: str
    input_spec: InputSpec

    def prepare(self, jobs: Sequence[FrameJob]) -> list[Any]:
        """Encoded frames -> one payload (held once) or :class:`EnvelopeError` per frame."""

    def start_prepare(self, jobs: Sequence[FrameJob]) -> Callable[[], list[Any]]:
        """The same, begun now and finished by calling the returned function (the caller may run
        :meth:`predict` in between, but no other ``prepare``)."""

    def retain(self, payloads: Sequence[Any]) -> None:
        """One more reference to each payload (a window holds it)."""

    def release(self, payloads: Sequence[Any]) -> None:
        """Drop one reference to each payload; unreferenced payloads are freed."""

    def predict(self, windows: Sequence["ClipWindow[Any]"]) -> "np.ndarray":
        """``B`` windows -> ``B×num_classes`` float probabilities (rows sum to 1)."""


class PipelineMetrics(Protocol):
    """The few observations the core reports (``stream.app.metrics.Metrics`` implements them)."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...
    def add_frames(self, n: int) -> None: ...
    def add_windows(self, n: int) -> None: ...
    def add_dropped(self, reason: str, n: int) -> None: ...
    def observe_batch(self, n: int) -> None: ...
    def set_inflight(self, n: int) -> None: ...
    def add_idle_evictions(self, n: int) -> None: ...
    def add_epoch(self, reason: str) -> None: ...
    def add_timestamp_anomaly(self, kind: str, n: int) -> None: ...


class NullMetrics:
    def observe_stage(self, stage: str, seconds: float) -> None: pass
    def add_frames(self, n: int) -> None: pass
    def add_windows(self, n: int) -> None: pass
    def add_dropped(self, reason: str, n: int) -> None: pass
    def observe_batch(self, n: int) -> None: pass
    def set_inflight(self, n: int) -> None: pass
    def add_idle_evictions(self, n: int) -> None: pass
    def add_epoch(self, reason: str) -> None: pass
    def add_timestamp_anomaly(self, kind: str, n: int) -> None: pass
