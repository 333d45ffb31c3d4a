"""Stream epochs: when a camera's frame stream starts again, decided from the frames alone. Pure.

Camera state is kept per (partition, camera, epoch). Every epoch is numbered by the capture time
(ns) of its first frame, the first one too, so an epoch number is never reused: a camera that
was evicted while idle and comes back numbering its frames from 0 again starts an epoch of its
own, and its events get ids of their own. A batch starts a new epoch when

* its fps differs from the epoch's (fps is pinned for the life of an epoch, so window
  positions, and so event ids, depend only on the frames);
* its first sequence number jumps more than ``windows.max_seq_jump`` past the newest, or its
  last one lies more than that behind it (a forged or broken number does not blind the camera:
  the next real batch starts another epoch, even when the forged one claimed a capture time
  far ahead);
* all its frames lie before the open window yet it was captured after the newest frame (an
  ingester restarted at 0: ``--start-seq`` is not needed);
* it was captured ``windows.epoch_gap_s`` or more after the epoch's newest frame (the camera was
  silent). This gap is shorter than ``windows.idle_timeout_s``, so the idle eviction, which
  follows the service's clock, only ever drops a camera whose next batch starts an epoch anyway:
  eviction frees memory and the commit point, and decides no event id.

The old epoch's open segment is closed at its last window once its waiting windows are run,
then its state is dropped. Event ids include the epoch, and events carry it, so repeated
sequence numbers never collide. The epoch is part of the resume metadata, and the rules depend
only on the frames, so a replay finds the same epochs and the same ids. Two messages of one
camera in one poll are decided in order, each after the one before it was added (the pipeline
ends an offer before a message that may start an epoch), so poll boundaries change nothing.
On a replay from a commit whose resume point names epoch E, a batch captured wholly before E
belongs to an epoch that had ended before that commit (its events were published): it is
skipped as a replay, so it cannot open an epoch of its own and renumber what follows.
"""

from __future__ import annotations

from stream.core.wire import FrameBatch

REASONS = ("fps_change", "seq_jump", "restart", "gap")


def epoch_reason(*, fps: float, newest_seq: int | None, newest_ts: int, next_start: int | None,
                 batch: FrameBatch, max_seq_jump: int, gap_ns: int) -> str | None:
    """Why ``batch`` starts a new epoch of the camera whose open epoch has pinned ``fps``, the
    highest sequence number ``newest_seq`` (replayed frames included: None before any frame)
    captured at ``newest_ts``, and the open window at ``next_start`` (one of :data:`REASONS`), or
    None: it continues it."""
    if abs(batch.source_fps - fps) > 1e-9 * fps:
        return "fps_change"
    newest = newest_seq
    if newest is None:
        return None
    if batch.first_seq > newest + max_seq_jump:
        return "seq_jump"
    if (next_start is not None and batch.last_seq < next_start and batch.last_seq <= newest
            and min(batch.capture_ts_ns) > newest_ts):   # back below the newest: not a replay going on to R
        return "restart"
    if batch.last_seq + max_seq_jump < newest:   # far behind, whatever its time: not a late frame
        return "seq_jump"
    if min(batch.capture_ts_ns) - newest_ts >= gap_ns:
        return "gap"
    return None


def first_epoch(batch: FrameBatch) -> int:
    """The number of a camera's first epoch (no resume point says otherwise): the capture time
    of its first frame."""
    return batch.capture_ts_ns[0]


def continues(previous: FrameBatch, batch: FrameBatch, *, gap_ns: int) -> bool:
    """``batch`` carries on right after ``previous`` (the next sequence number, the same fps, no
    capture gap of ``gap_ns``): the one case where no epoch rule can fire between them."""
    return (batch.first_seq == previous.last_seq + 1 and batch.source_fps == previous.source_fps
            and min(batch.capture_ts_ns) - max(previous.capture_ts_ns) < gap_ns)


def next_epoch(current: int, batch: FrameBatch) -> int:
    """The number of the epoch ``batch`` starts: its first capture time, or one more than the
    current epoch's when they are equal (a batch that repeats the start time must not land on
    the open epoch's state). Not ``max(time, current + 1)``: after a forged epoch far in the
    future, the real frames' epoch must keep their real time, or a replay would take every real
    batch for a replay of a finished epoch and skip it."""
    first = batch.capture_ts_ns[0]
    return first if first != current else current + 1
