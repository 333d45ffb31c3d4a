"""Pure per-camera event smoothing: window probabilities -> action segments (no I/O).

Rules, applied to each camera's windows in start order:

* **Averaging.** Each window is *decided* on the mean class probabilities of itself and the next
  ``average_windows - 1`` windows (1 = its own), so a decision waits for that many later windows.
  One window's misreading then no longer starts or ends a segment. Such a mean describes the
  window ``h = (average_windows - 1) // 2`` places later best, so a segment is *reported* as
  running from h windows after its first decided window to h windows after its last one (never
  past the newest window received).
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
  windows config's ``max_gap_s``), and no mean reaches across one: a window whose own frames
  have such a gap between two of them, or that starts more than that after the previous window
  ends, first has the waiting windows decided on what came before the gap and the active
  segment closed; the first kind is then dropped, the second starts afresh.
* :meth:`Smoother.close` decides the waiting windows the same way and ends the active segment at
  its last window (used when a camera goes idle); the segment is the same whatever the wall
  clock, so the event id is too.

Because a decision depends only on the window decided, the windows after it that its mean takes,
and the state since the active segment's first decided window, replaying from
:attr:`Smoother.resume_start` (that first window, else the oldest undecided one) reproduces the
same segments, and so the same event ids; the service commits offsets no later than that point.

Example (on 0.6, off 0.4, min 2, average 1; no other label ever reaches 0.6): ``p[kick]`` = 0.2,
0.7, 0.5, 0.45, 0.3, 0.9 over windows w0..w5 gives one segment kick w1..w3 (mean 0.55) closed at
w4; w5 starts a new segment.
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
    average_windows: int = 1   # decide each window on the mean of it and the next average_windows - 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.off_threshold <= self.on_threshold <= 1.0:
            raise ConfigError(f"need 0 <= off_threshold <= on_threshold <= 1, got off={self.off_threshold!r}, "
                              f"on={self.on_threshold!r}")
        if self.min_windows < 1:
            raise ConfigError(f"min_windows must be >= 1, got {self.min_windows!r}")
        if self.max_windows < self.min_windows:
            raise ConfigError(f"max_windows must be >= min_windows ({self.min_windows}), got {self.max_windows!r}")
        if self.average_windows < 1:
            raise ConfigError(f"average_windows must be >= 1, got {self.average_windows!r}")


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
        self._waiting: list[tuple[WindowRef, Sequence[float]]] = []   # received, not yet decided
        self._received: WindowRef | None = None   # the newest window received
        self._shift = (self.config.average_windows - 1) // 2
        self._label: int | None = None
        self._first: WindowRef | None = None      # the active segment's first decided window
        self._shown_first: WindowRef | None = None   # ... and the windows it is reported by
        self._shown_last: WindowRef | None = None
        self._sum = 0.0
        self._count = 0
        self._newest = 0
        self._ignore = {i for i, name in enumerate(self.class_names) if name in self.config.ignore_labels}

    @property
    def active(self) -> bool:
        return self._label is not None

    @property
    def resume_start(self) -> int | None:
        """Start seq of the active segment's first decided window, else of the oldest undecided
        one (replay must begin there), or None."""
        if self._first is not None:
            return self._first.start_seq
        return self._waiting[0][0].start_seq if self._waiting else None

    def push(self, window: WindowRef, probs: Sequence[float]) -> list[Segment]:
        """Feed one window's class probabilities; returns the segments it closes."""
        if len(probs) != len(self.class_names):
            raise ConfigError(f"{len(probs)} probabilities for {len(self.class_names)} classes")
        out: list[Segment] = []
        if self.max_gap_ns is not None:
            if window.max_frame_gap_ns > self.max_gap_ns:   # the window straddles an outage
                return self.close()
            prev = self._received
            if prev is not None and window.start_capture_ts_ns - prev.end_capture_ts_ns > self.max_gap_ns:
                out.extend(self.close())
        self._received = window
        self._waiting.append((window, probs))
        if len(self._waiting) == self.config.average_windows:
            out.extend(self._decide_oldest())
        return out

    def close(self) -> list[Segment]:
        """Decide the waiting windows on what has come, then end the active segment, if any, at
        its last window; returns the segments closed that are long enough."""
        out: list[Segment] = []
        while self._waiting:
            out.extend(self._decide_oldest())
        if self._label is not None:
            out.extend(self._close())
        self._received = None
        return out

    def _decide_oldest(self) -> list[Segment]:
        window = self._waiting[0][0]
        shown = self._waiting[min(self._shift, len(self._waiting) - 1)][0]
        newest = max(w.newest_capture_ts_ns for w, _ in self._waiting)   # every window the mean took
        probs = [sum(p[c] for _, p in self._waiting) / len(self._waiting) for c in range(len(self.class_names))]
        del self._waiting[0]
        out: list[Segment] = []
        if self._label is not None:
            if probs[self._label] >= self.config.off_threshold:
                self._extend(shown, probs[self._label], newest)
                if self._count >= self.config.max_windows:
                    out.extend(self._close())
                return out
            out.extend(self._close())
        top = max((i for i in range(len(probs)) if i not in self._ignore), key=lambda i: probs[i], default=None)
        if top is not None and probs[top] >= self.config.on_threshold:
            self._label, self._first, self._shown_first, self._sum, self._count, self._newest = \
                top, window, shown, 0.0, 0, 0
            self._extend(shown, probs[top], newest)
            if self._count >= self.config.max_windows:
                out.extend(self._close())
        return out

    def _extend(self, shown: WindowRef, p: float, newest: int) -> None:
        self._shown_last = shown
        self._sum += float(p)
        self._count += 1
        self._newest = max(self._newest, newest)

    def _close(self) -> list[Segment]:
        assert self._label is not None and self._shown_first is not None and self._shown_last is not None
        seg = Segment(label=self.class_names[self._label], confidence=self._sum / self._count,
                      first=self._shown_first, last=self._shown_last, num_windows=self._count,
                      newest_capture_ts_ns=self._newest)
        self._label = self._first = self._shown_first = self._shown_last = None
        return [seg] if seg.num_windows >= self.config.min_windows else []
