"""Pure per-camera event smoothing: window probabilities -> action segments (no I/O).

Rules, applied to each camera's windows in start order:

* **Idle.** A segment starts at a window whose top label (ignoring ``ignore_labels``) has
  probability ``>= on_threshold``.
* **Active** with label L. The segment extends while ``p[L] >= off_threshold`` (hysteresis:
  ``off <= on``, so a label does not flicker around one threshold). At the first window with
  ``p[L] < off_threshold`` it closes *before* that window, and that window is then checked for
  a new start as if idle.
* A closed segment becomes an event only if it spans ``>= min_windows`` windows. A segment that
  reaches ``max_windows`` windows is closed and emitted at once (so a long action never holds
  the commit point forever); the next window may start a new one.
* Confidence is the mean ``p[L]`` over the segment's windows.
* **Gaps.** A segment never spans a gap in capture time longer than ``max_gap_ns`` (the
  windows config's ``max_gap_s``): a window whose own frames have such a gap between two of
  them closes the active segment and starts none; a window that starts more than that after the
  active segment's last window ends closes the segment first, then is checked as if idle.
* :meth:`Smoother.close` ends the active segment at its last window (used when a camera goes
  idle); the segment is the same whatever the wall clock, so the event id is too.

Because the state after any window depends only on the windows since the active segment's
first window, replaying from :attr:`Smoother.resume_start` reproduces the same segments, and so
the same event ids; the service commits offsets no later than that point.

Example (on 0.6, off 0.4, min 2; no other label ever reaches 0.6): ``p[kick]`` = 0.2, 0.7, 0.5,
0.45, 0.3, 0.9 over windows w0..w5 gives one segment kick w1..w3 (mean 0.55) closed at w4; w5 starts a new segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from soccerkd.errors import ConfigError


@dataclass(frozen=True)
class SmoothingConfig:
    on_threshold: float = 0.6
    off_threshold: float = 0.4
    min_windows: int = 2
    max_windows: int = 64
    ignore_labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.off_threshold <= self.on_threshold <= 1.0:
            raise ConfigError(f"need 0 <= off_threshold <= on_threshold <= 1, got off={self.off_threshold!r}, "
                              f"on={self.on_threshold!r}")
        if self.min_windows < 1:
            raise ConfigError(f"min_windows must be >= 1, got {self.min_windows!r}")
        if self.max_windows < self.min_windows:
            raise ConfigError(f"max_windows must be >= min_windows ({self.min_windows}), got {self.max_windows!r}")


@dataclass(frozen=True)
class WindowRef:
    """What the smoother needs to know about a window besides its probabilities."""

    start_seq: int
    end_seq: int
    start_capture_ts_ns: int
    end_capture_ts_ns: int
    newest_capture_ts_ns: int
    max_frame_gap_ns: int = 0   # the longest capture-time step between two of its frames


@dataclass(frozen=True)
class Segment:
    label: str
    confidence: float
    first: WindowRef
    last: WindowRef
    num_windows: int
    newest_capture_ts_ns: int


@dataclass
class Smoother:
    """Segmenting state of one camera."""

    class_names: Sequence[str]
    config: SmoothingConfig = field(default_factory=SmoothingConfig)
    max_gap_ns: int | None = None

    def __post_init__(self) -> None:
        self._label: int | None = None
        self._first: WindowRef | None = None
        self._last: WindowRef | None = None
        self._sum = 0.0
        self._count = 0
        self._newest = 0
        self._ignore = {i for i, name in enumerate(self.class_names) if name in self.config.ignore_labels}

    @property
    def active(self) -> bool:
        return self._label is not None

    @property
    def resume_start(self) -> int | None:
        """Start seq of the active segment's first window (replay must begin there), or None."""
        return self._first.start_seq if self._first is not None else None

    def push(self, window: WindowRef, probs: Sequence[float]) -> list[Segment]:
        """Feed one window's class probabilities; returns the segments it closes."""
        if len(probs) != len(self.class_names):
            raise ConfigError(f"{len(probs)} probabilities for {len(self.class_names)} classes")
        out: list[Segment] = []
        if self.max_gap_ns is not None:
            if window.max_frame_gap_ns > self.max_gap_ns:   # the window straddles an outage
                return self.close()
            if self._last is not None and window.start_capture_ts_ns - self._last.end_capture_ts_ns > self.max_gap_ns:
                out.extend(self.close())
        if self._label is not None:
            if probs[self._label] >= self.config.off_threshold:
                self._extend(window, probs[self._label])
                if self._count >= self.config.max_windows:
                    out.extend(self._close())
                return out
            out.extend(self._close())
        top = max((i for i in range(len(probs)) if i not in self._ignore), key=lambda i: probs[i], default=None)
        if top is not None and probs[top] >= self.config.on_threshold:
            self._label, self._first, self._sum, self._count, self._newest = top, window, 0.0, 0, 0
            self._extend(window, probs[top])
            if self._count >= self.config.max_windows:
                out.extend(self._close())
        return out

    def close(self) -> list[Segment]:
        """End the active segment, if any, at its last window; returns it if long enough."""
        return self._close() if self._label is not None else []

    def _extend(self, window: WindowRef, p: float) -> None:
        self._last = window
        self._sum += float(p)
        self._count += 1
        self._newest = max(self._newest, window.newest_capture_ts_ns)

    def _close(self) -> list[Segment]:
        assert self._label is not None and self._first is not None and self._last is not None
        seg = Segment(label=self.class_names[self._label], confidence=self._sum / self._count, first=self._first,
                      last=self._last, num_windows=self._count, newest_capture_ts_ns=self._newest)
        self._label = self._first = self._last = None
        return [seg] if seg.num_windows >= self.config.min_windows else []
