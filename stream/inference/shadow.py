"""The teacher in shadow: runs the teacher on a sampled fraction of the student's windows, off the
serving path, and tracks how often the two agree on the top-1 label (drift of the student on live
video, which no offline evaluation sees).

The student path only ever calls :meth:`ShadowRunner.offer` (through :class:`ShadowedPredictor`,
which wraps the student predictor), and that never blocks: a window is
sampled with probability ``sample_rate``, and goes into a bounded queue, or is counted as dropped
when the queue is full or the service says it has no spare capacity. One worker thread of its
own runs the teacher on what is queued.

Metrics (registered on the injected registry):

* ``soccerkd_shadow_windows_total`` - windows the teacher classified;
* ``soccerkd_shadow_dropped_total{reason}`` - sampled windows not compared: ``queue_full``,
  ``busy`` (no spare capacity), ``error`` (the teacher raised);
* ``soccerkd_shadow_agreement`` - share of the last ``agreement_window`` compared windows where
  student and teacher have the same top-1 label;
* ``soccerkd_shadow_confusion_total{student,teacher}`` - compared windows by both labels.
"""

from __future__ import annotations

import collections
import logging
import queue
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger("soccerkd.shadow")

DROP_REASONS = ("queue_full", "busy", "error")


@dataclass(frozen=True)
class ShadowConfig:
    """``shadow:`` of the stream config. Off while ``checkpoint`` is null."""

    checkpoint: Optional[Path] = None
    sample_rate: float = 0.05
    queue_size: int = 32
    max_batch: int = 8
    agreement_window: int = 500
    device: str = "auto"

    def __post_init__(self) -> None:
        from soccerkd.errors import ConfigError

        if not 0.0 < self.sample_rate <= 1.0:
            raise ConfigError(f"shadow.sample_rate must be in (0, 1], got {self.sample_rate!r}")
        for name in ("queue_size", "max_batch", "agreement_window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"shadow.{name} must be >= 1, got {getattr(self, name)!r}")

    @property
    def enabled(self) -> bool:
        return self.checkpoint is not None


class ShadowMetrics:
    """The shadow metrics on ``registry``; every drop reason exists at 0 from the start."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.windows = Counter("soccerkd_shadow_windows", "Windows the shadow teacher classified", registry=registry)
        self.dropped = Counter("soccerkd_shadow_dropped", "Sampled windows the teacher did not classify, by reason",
                               ["reason"], registry=registry)
        self.agreement = Gauge("soccerkd_shadow_agreement",
                               "Share of recent compared windows where student and teacher top-1 labels agree",
                               registry=registry)
        self.confusion = Counter("soccerkd_shadow_confusion", "Compared windows by student and teacher top-1 label",
                                 ["student", "teacher"], registry=registry)
        for reason in DROP_REASONS:
            self.dropped.labels(reason=reason)


class ShadowRunner:
    """Runs ``teacher`` on sampled windows in its own thread; see the module docstring.

    ``prepare(window)`` runs in :meth:`offer`, on the student's thread and only for a window that
    is queued: it must copy what the teacher needs out of the window (the student frees its frames
    once its own batch is done). Identity by default. ``teacher.predict(prepared)`` then runs on the
    worker thread and returns one probability row per window over ``teacher_classes``. Labels are
    compared by name, so the two class lists may be in a different order but must name the same
    classes.
    """

    def __init__(self, teacher: Any, *, student_classes: Sequence[str], teacher_classes: Sequence[str],
                 metrics: ShadowMetrics, sample_rate: float, queue_size: int = 32, max_batch: int = 8,
                 agreement_window: int = 500, prepare: Callable[[Any], Any] | None = None,
                 spare: Callable[[], bool] = lambda: True, rng: random.Random | None = None) -> None:
        if set(student_classes) != set(teacher_classes):
            raise ValueError(f"student and teacher must name the same classes, got {list(student_classes)!r} "
                             f"and {list(teacher_classes)!r}")
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
        if queue_size < 1 or max_batch < 1 or agreement_window < 1:
            raise ValueError(f"queue_size, max_batch and agreement_window must be >= 1, got "
                             f"{queue_size!r}, {max_batch!r}, {agreement_window!r}")
        self.teacher = teacher
        self.student_classes = tuple(student_classes)
        self.teacher_classes = tuple(teacher_classes)
        self.metrics = metrics
        self.sample_rate = sample_rate
        self.max_batch = max_batch
        self.prepare = prepare or (lambda w: w)
        self.spare = spare
        self._rng = rng or random.Random()
        self._queue: queue.Queue[tuple[Any, str]] = queue.Queue(maxsize=queue_size)
        self._recent: collections.deque[bool] = collections.deque(maxlen=agreement_window)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="shadow-teacher", daemon=True)

    @classmethod
    def from_config(cls, config: ShadowConfig, *, student: Any, registry: CollectorRegistry,
                    spare: Callable[[], bool] = lambda: True) -> "ShadowRunner":
        """The teacher of ``config.checkpoint`` next to ``student`` (a :class:`TorchPredictor`).

        The teacher reads the student's decoded frames (:class:`TorchShadowTeacher`), so both must
        share the clip layout and frame size (:func:`check_same_input`).
        """
        from stream.inference.predictors import TorchPredictor

        if config.checkpoint is None:
            raise ValueError("shadow.checkpoint is not set")
        model = TorchPredictor.from_checkpoint(config.checkpoint, device=config.device)
        check_same_input(student.input_spec, model.input_spec)
        teacher = TorchShadowTeacher(model, student)
        return cls(teacher, student_classes=student.input_spec.class_names, teacher_classes=model.class_names,
                   metrics=ShadowMetrics(registry), sample_rate=config.sample_rate, queue_size=config.queue_size,
                   max_batch=config.max_batch, agreement_window=config.agreement_window,
                   prepare=teacher.prepare, spare=spare)

    # -- student side: never blocks ----------------------------------------------------------
    def offer(self, window: Any, student_probs: Sequence[float]) -> bool:
        """Maybe queue ``window`` (with the student's probabilities) for the teacher; True if queued."""
        if self._rng.random() >= self.sample_rate:
            return False
        if not self.spare():
            self.metrics.dropped.labels(reason="busy").inc()
            return False
        if self._queue.full():  # the worker only ever takes items out, so this cannot become wrong
            self.metrics.dropped.labels(reason="queue_full").inc()
            return False
        label = self.student_classes[_argmax(student_probs)]
        try:
            item = self.prepare(window)
        except Exception as exc:
            log.warning("shadow: preparing a window for the teacher failed: %s", exc)
            self.metrics.dropped.labels(reason="error").inc()
            return False
        self._queue.put_nowait((item, label))
        return True

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "ShadowRunner":
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker after the batch in hand; what is still queued is not compared."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def agreement(self) -> float | None:
        """Rolling top-1 agreement, or None before the first compared window."""
        recent = list(self._recent)
        return sum(recent) / len(recent) if recent else None

    @property
    def compared(self) -> int:
        """Windows in the rolling agreement (at most ``agreement_window``)."""
        return len(self._recent)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far has been compared (for tests and shutdown)."""
        _join_with_timeout(self._queue, timeout)

    # -- worker --------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._compare(batch)
            except Exception as exc:  # the teacher must never take the service down
                log.warning("shadow teacher failed on %d window(s): %s", len(batch), exc)
                self.metrics.dropped.labels(reason="error").inc(len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _compare(self, batch: list[tuple[Any, str]]) -> None:
        probs = self.teacher.predict([item for item, _ in batch])
        for (_, student), row in zip(batch, probs):
            teacher = self.teacher_classes[_argmax(row)]
            self._recent.append(student == teacher)
            self.metrics.confusion.labels(student=student, teacher=teacher).inc()
        self.metrics.windows.inc(len(batch))
        self.metrics.agreement.set(self.agreement or 0.0)


class TorchShadowTeacher:
    """A teacher :class:`~stream.inference.predictors.TorchPredictor` fed from the student's frame store.

    ``prepare`` copies one window's frames out of the student's store (one ``index_select``, on
    the student's thread, so the student may release the slots right after); ``predict`` turns
    the copies into the teacher's normalised input on the teacher's device and runs it.
    """

    def __init__(self, teacher: Any, student: Any) -> None:
        self.teacher = teacher
        self.student = student

    def prepare(self, window: Any) -> Any:
        import torch

        index = torch.tensor([list(window.frames)], dtype=torch.long, device=self.student.store.device)
        return self.student.store.gather(index)          # 1 x T x 3 x H x W uint8, a copy

    def predict(self, clips: Sequence[Any]) -> Any:
        import torch

        t = self.teacher
        x = torch.cat(list(clips)).to(t.device).permute(0, 2, 1, 3, 4).float()   # B x C x T x H x W
        return t.predict_tensor(x.mul_(t._scale).add_(t._shift))


class ShadowedPredictor:
    """The student predictor, unchanged, that offers every window it classified to a shadow runner.

    Wrapping the predictor is the whole hook: the service and pipeline need not know about the
    teacher. ``offer`` never blocks, so the student's batch returns as fast as before.
    """

    def __init__(self, student: Any, shadow: ShadowRunner) -> None:
        self.student = student
        self.shadow = shadow

    def predict(self, windows: Sequence[Any]) -> Any:
        probs = self.student.predict(windows)
        for window, row in zip(windows, probs):
            self.shadow.offer(window, row)
        return probs

    def __getattr__(self, name: str) -> Any:  # input_spec, class_names, preprocess_frame, ...
        return getattr(self.student, name)


def check_same_input(student_spec: Any, teacher_spec: Any) -> None:
    """Raise ConfigError unless the teacher can take the student's preprocessed windows as they are.

    Normalisation may differ (the torch predictor applies its own mean/std inside ``predict``);
    clip layout, resize and crop size may not.
    """
    from soccerkd.errors import ConfigError

    for name in ("clip", "size", "resize"):
        if getattr(student_spec, name) != getattr(teacher_spec, name):
            raise ConfigError(f"the shadow teacher needs {name}={getattr(teacher_spec, name)!r} but the student's "
                              f"windows have {name}={getattr(student_spec, name)!r}; use a teacher with the "
                              f"student's input spec, or give it its own preparer")
    if set(student_spec.class_names) != set(teacher_spec.class_names):
        raise ConfigError(f"student and teacher classes differ: {list(student_spec.class_names)!r} vs "
                          f"{list(teacher_spec.class_names)!r}")


def _argmax(values: Sequence[float]) -> int:
    row = [float(v) for v in values]
    return max(range(len(row)), key=row.__getitem__)


def _join_with_timeout(q: "queue.Queue[Any]", timeout: float) -> None:
    done = threading.Event()
    threading.Thread(target=lambda: (q.join(), done.set()), daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"the shadow queue did not drain within {timeout} s")
