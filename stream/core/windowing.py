"""Pure per-camera sliding windows over frame sequence numbers (no Kafka, no torch).

Rules (integer frame arithmetic; ``n`` = clip frames, ``s`` = frame stride, ``ws`` = window
stride, ``span = (n - 1) * s + 1``):

* Window starts are aligned to absolute sequence numbers: the first window starts at the
  smallest multiple of ``ws`` that is ``>= `` the first sequence number seen (or at the resume
  point given by :meth:`CameraWindows.resume_at`). Window ``w`` needs frames
  ``w, w + s, ..., w + (n - 1) * s`` and ends at ``w + span - 1`` (inclusive).
  Alignment makes windows, and so event ids, identical however consumption restarts.
* Windows are emitted strictly in start order. The *open* window is the oldest not yet emitted.
* **Duplicate** (sequence number already buffered, or already emitted): dropped, counted.
* **Late** (older than the open window's start, including a repeat of a frame whose windows
  are all emitted): dropped, counted. Frames before a resume
  point are *replayed* frames and are ignored without counting as drops.
* **Reordered** (older than the newest seen but not late): accepted, counted.
* **Gap** (a frame jumps past ``newest + 1``): the missing frames are counted; one that arrives
  later after all (reordered) is taken off that count again. A window with
  missing frames waits until a frame at least ``reorder_tolerance`` beyond its end has been
  seen; then, if at most ``max_fill`` frames are missing, each is filled with the nearest
  earlier present frame of the window (or the nearest later one when none is earlier) and the
  window is emitted with ``filled`` set; otherwise it is skipped (counted).
* **Payloads** are opaque (the pipeline stores frame-store slots) and reference-counted through
  two optional callbacks. Every payload handed to :meth:`CameraWindows.add` is either kept in the
  buffer or passed to ``release`` (rejected, or dropped as windows move on). An emitted window
  gets its own reference to each of its frames (``retain``, before the buffer lets go of any);
  the caller releases those when it is done with the window.
* Source fps comes from the first batch of a camera (fps resampling uses
  :meth:`ClipSpec.stride_for`); later changes are ignored.

Worked example, ``n=3, s=2, ws=2`` (span 5; windows [0..4] needs 0,2,4; [2..6] needs 2,4,6 ...),
``reorder_tolerance=1``, ``max_fill=1``::

    add 0,1,2,3,4   -> window 0 (0,2,4)
    add 4           -> duplicate (dropped)
    add 6           -> window 2 (2,4,6)
    add 5           -> reordered, accepted (5 < newest 6)
    add 9           -> gap: 7, 8 missing (2 counted); window 4 needs 4,6,8; 9 >= 8 + 1 so it is
                       finalised with 8 filled by 6 -> window 4 (4,6,6) filled=1
    add 1           -> late (older than open window 6): dropped
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from soccerkd.spec import ClipSpec

from soccerkd.errors import ConfigError

T = TypeVar("T")
_STAT_FOR = {"replayed": "replayed", "duplicate": "duplicates", "late": "late"}


@dataclass(frozen=True)
class ClipWindow(Generic[T]):
    """One window ready for the model: ``frames[i]`` is the payload of sequence ``seqs[i]``."""

    camera_id: str
    start_seq: int
    end_seq: int
    seqs: tuple[int, ...]
    frames: tuple[T, ...]
    capture_ts_ns: tuple[int, ...]
    filled: int = 0

    @property
    def newest_capture_ts_ns(self) -> int:
        return max(self.capture_ts_ns)


@dataclass
class WindowStats:
    """Counters for metrics, per camera; the pipeline sums them."""

    frames_accepted: int = 0
    duplicates: int = 0
    late: int = 0
    replayed: int = 0
    reordered: int = 0
    gap_frames: int = 0
    windows_emitted: int = 0
    windows_filled: int = 0
    windows_skipped: int = 0


@dataclass(frozen=True)
class WindowConfig:
    """Window behaviour; the clip layout itself comes from the model's ``ClipSpec``."""

    window_stride: int = 4
    reorder_tolerance: int = 4
    max_fill: int = 1
    max_gap_s: float = 2.0          # no event spans a capture-time gap longer than this
    idle_timeout_s: float = 30.0    # a camera with no frames for this long is closed and evicted
    max_seq_jump: int = 10_000      # a forward jump in sequence numbers beyond this starts a new epoch
    # A capture-time gap this long starts a new epoch (None: idle_timeout_s / 3). Below
    # idle_timeout_s, so an idle eviction never decides an event id: see docs/delivery.md.
    epoch_gap_s: float | None = None

    def __post_init__(self) -> None:
        if not self.max_gap_s > 0:
            raise ConfigError(f"windows.max_gap_s must be > 0, got {self.max_gap_s!r}")
        if not self.idle_timeout_s > 0:
            raise ConfigError(f"windows.idle_timeout_s must be > 0, got {self.idle_timeout_s!r}")
        if self.epoch_gap_s is not None and not 0 < self.epoch_gap_s <= self.idle_timeout_s:
            raise ConfigError(f"windows.epoch_gap_s must be > 0 and <= windows.idle_timeout_s "
                              f"({self.idle_timeout_s!r}), got {self.epoch_gap_s!r}")
        if self.max_seq_jump < 1:
            raise ConfigError(f"windows.max_seq_jump must be >= 1, got {self.max_seq_jump!r}")
        if self.window_stride < 1:
            raise ConfigError(f"window_stride must be >= 1, got {self.window_stride!r}")
        if self.reorder_tolerance < 0:
            raise ConfigError(f"reorder_tolerance must be >= 0, got {self.reorder_tolerance!r}")
        if self.max_fill < 0:
            raise ConfigError(f"max_fill must be >= 0, got {self.max_fill!r}")

    @property
    def epoch_gap_ns(self) -> int:
        """The capture-time gap (ns) that starts a new stream epoch."""
        gap = self.idle_timeout_s / 3 if self.epoch_gap_s is None else self.epoch_gap_s
        return int(gap * 1e9)


@dataclass
class _Frame(Generic[T]):
    payload: T
    ts: int


@dataclass
class CameraWindows(Generic[T]):
    """Sliding-window state of one camera. Feed frames with :meth:`add`; it returns new windows."""

    camera_id: str
    clip: ClipSpec
    config: WindowConfig = field(default_factory=WindowConfig)
    stats: WindowStats = field(default_factory=WindowStats)
    retain: Callable[[tuple[Any, ...]], None] | None = None   # an emitted window's frames
    release: Callable[[list[Any]], None] | None = None        # payloads the buffer lets go of

    def __post_init__(self) -> None:
        self._frames: dict[int, _Frame[T]] = {}
        self._stride: int | None = None
        self._next_start: int | None = None
        self._newest: int | None = None
        self._resume: int | None = None

    # -- queries -------------------------------------------------------------------------------
    @property
    def next_start(self) -> int | None:
        """Start of the open window (the oldest not yet emitted), or None before any frame."""
        return self._next_start

    @property
    def newest(self) -> int | None:
        """The highest sequence number accepted, or None before any frame."""
        return self._newest

    @property
    def buffered(self) -> int:
        return len(self._frames)

    def stride(self) -> int:
        return self._stride if self._stride is not None else self.clip.frame_stride

    def span(self) -> int:
        return (self.clip.num_frames - 1) * self.stride() + 1

    def needed(self, seq: int) -> bool:
        """Whether ``seq`` would be used by the open window or a later one (so worth preprocessing)."""
        if self._next_start is None:
            return True
        d = seq - self._next_start
        if d < 0:
            return False
        s, ws, n = self.stride(), self.config.window_stride, self.clip.num_frames
        if s == 1 and n >= ws:
            return True   # the usual layout: windows overlap, every frame is used
        return any(d - k * s >= 0 and (d - k * s) % ws == 0 for k in range(n))

    def classify(self, seq: int) -> str | None:
        """Why ``seq`` would be rejected (``duplicate``/``late``/``replayed``), or None if accepted."""
        if self._resume is not None and seq < self._resume:
            return "replayed"
        if seq in self._frames:
            return "duplicate"
        if self._next_start is not None and seq < self._next_start:
            return "late"
        return None

    # -- updates -------------------------------------------------------------------------------
    def resume_at(self, start_seq: int) -> None:
        """Start windows exactly at ``start_seq`` (a committed resume point); earlier frames are replays."""
        self._resume = start_seq
        self._next_start = start_seq

    def set_source_fps(self, fps: float | None) -> None:
        if self._stride is None:
            self._stride = self.clip.stride_for(fps)

    def add(self, seq: int, ts_ns: int, payload: T) -> list[ClipWindow[T]]:
        """Add one frame; returns the windows it completes (possibly none), in start order."""
        why = self.classify(seq)
        if why is not None:
            name = _STAT_FOR[why]
            setattr(self.stats, name, getattr(self.stats, name) + 1)
            self._let_go([payload])
            return []
        if self._stride is None:
            self._stride = self.clip.frame_stride
        if self._next_start is None:
            ws = self.config.window_stride
            self._next_start = -(-seq // ws) * ws
        if self._newest is not None:
            if seq < self._newest:
                self.stats.reordered += 1
                self.stats.gap_frames -= 1  # it was counted missing when the stream jumped past it
            elif seq > self._newest + 1:
                self.stats.gap_frames += seq - self._newest - 1
        self._newest = seq if self._newest is None else max(self._newest, seq)
        self.stats.frames_accepted += 1
        if seq >= self._next_start:
            self._frames[seq] = _Frame(payload, ts_ns)
        else:
            self._let_go([payload])   # before the first aligned window start
        return self._emit()

    def _emit(self) -> list[ClipWindow[T]]:
        out: list[ClipWindow[T]] = []
        s, n, ws = self.stride(), self.clip.num_frames, self.config.window_stride
        span = (n - 1) * s + 1
        while self._next_start is not None and self._newest is not None:
            w = self._next_start
            end = w + span - 1
            if self._newest < end:
                break   # the window's last frame has not arrived: nothing to decide yet
            seqs = [w + k * s for k in range(n)]
            present = [q for q in seqs if q in self._frames]
            if len(present) < n:
                if self._newest < end + self.config.reorder_tolerance:
                    break
                missing = n - len(present)
                if not present or missing > self.config.max_fill:
                    self.stats.windows_skipped += 1
                    self._advance(w + ws)
                    if not present:
                        self._jump()
                    continue
            use = [q if q in self._frames else self._nearest(q, present) for q in seqs]
            filled = sum(1 for q in seqs if q not in self._frames)
            window = ClipWindow(camera_id=self.camera_id, start_seq=w, end_seq=end, seqs=tuple(seqs),
                                frames=tuple(self._frames[q].payload for q in use),
                                capture_ts_ns=tuple(self._frames[q].ts for q in use), filled=filled)
            if self.retain is not None:
                self.retain(window.frames)
            out.append(window)
            self.stats.windows_emitted += 1
            self.stats.windows_filled += 1 if filled else 0
            self._advance(w + ws)
        return out

    def _jump(self) -> None:
        """After an empty skipped window, jump straight to the first window that can hold a frame."""
        assert self._next_start is not None
        ahead = [q for q in self._frames if q >= self._next_start]
        if not ahead:
            return
        ws, span = self.config.window_stride, self.span()
        target = max(self._next_start, -(-(min(ahead) - span + 1) // ws) * ws)
        skipped = (target - self._next_start) // ws
        self.stats.windows_skipped += skipped
        self._advance(target)

    def clear(self) -> None:
        """Let go of every buffered frame (the camera's state is being dropped)."""
        self._let_go([f.payload for f in self._frames.values()])
        self._frames.clear()

    def _advance(self, new_start: int) -> None:
        self._next_start = new_start
        gone = [q for q in self._frames if q < new_start]
        self._let_go([self._frames.pop(q).payload for q in gone])

    def _let_go(self, payloads: list[Any]) -> None:
        if self.release is not None:
            kept = [p for p in payloads if p is not None]
            if kept:
                self.release(kept)

    @staticmethod
    def _nearest(q: int, present: list[int]) -> int:
        earlier = [p for p in present if p < q]
        return max(earlier) if earlier else min(p for p in present if p > q)
