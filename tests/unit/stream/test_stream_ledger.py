"""The offset ledger and the epoch rules on their own (stream.core.ledger, stream.core.epochs):
pure functions and small classes, without a pipeline or a predictor."""

from __future__ import annotations

from collections import deque

from soccerkd.spec import ClipSpec

from stream.core import resume
from stream.core.epochs import continues, epoch_reason, first_epoch, next_epoch
from stream.core.ledger import OffsetLedger, OpenCamera, SourceRef
from stream.core.windowing import CameraWindows, WindowConfig
from stream.dev.testing import solid_batch

TP = ("frames", 0)
RED = (230, 20, 20)


def test_the_worked_example_of_the_module_docstring():
    """Camera "a" sent offsets 10 (frames 0..15) and 11 (16..31); its oldest unfinished window
    starts at 20: the point is offset 11 with a=20; once R passes 31 it stays 11, the camera's
    newest message, which a replay needs to know where the epoch stands."""
    ledger = OffsetLedger()
    for offset in (10, 11):
        ledger.consumed(SourceRef(*TP, offset))
    messages = deque([(10, 15), (11, 31)])
    (point,) = ledger.commit_points([OpenCamera((TP, "a", 7), 20, messages)]).values()
    assert point[0] == 11 and resume.decode(point[1]) == {"a": (20, 7)}
    assert list(messages) == [(11, 31)]   # message 10 is no longer needed
    (point,) = ledger.commit_points([OpenCamera((TP, "a", 7), 32, messages)]).values()
    assert point[0] == 11 and list(messages) == [(11, 31)]
    ledger.consumed(SourceRef(*TP, 12))
    messages.append((12, 47))
    (point,) = ledger.commit_points([OpenCamera((TP, "a", 7), 48, messages)]).values()
    assert point[0] == 12 and list(messages) == [(12, 47)]


def test_a_commit_point_never_moves_back_and_a_dropped_partition_is_forgotten():
    ledger = OffsetLedger()
    ledger.consumed(SourceRef(*TP, 40))
    assert ledger.commit_points([])[TP][0] == 41
    # a camera that shows up holding an older message cannot pull the point back
    assert ledger.commit_points([OpenCamera((TP, "b", 1), 0, deque([(5, 3)]))])[TP][0] == 41
    ledger.drop(TP)
    assert ledger.commit_points([]) == {} and ledger.partitions() == []


def test_restored_hints_are_kept_until_forgotten():
    ledger = OffsetLedger()
    ledger.restore(TP, resume.encode([resume.ResumeEntry("a", 16, 99)])[0])
    assert ledger.hint(TP, "a") == (16, 99) and ledger.hint(TP, "b") is None
    ledger.consumed(SourceRef(*TP, 0))
    assert resume.decode(ledger.commit_points([])[TP][1]) == {"a": (16, 99)}   # carried to the next commit
    ledger.forget_hint(TP, "a")
    assert ledger.hint(TP, "a") is None


def windows_after(frames: int) -> CameraWindows:
    w = CameraWindows("a", ClipSpec(num_frames=4, frame_stride=1), WindowConfig(window_stride=1, reorder_tolerance=0,
                                                                             max_fill=0))
    w.set_source_fps(25.0)
    for seq in range(frames):
        w.add(seq, 1_700_000_000_000_000_000 + seq * 40_000_000, None)
    return w


GAP = WindowConfig().epoch_gap_ns   # 10 s: a third of idle_timeout_s


def test_epoch_rules_read_only_the_frames():
    w = windows_after(40)
    newest_ts = 1_700_000_000_000_000_000 + 39 * 40_000_000
    rule = lambda batch: epoch_reason(fps=25.0, newest_seq=w.newest, newest_ts=newest_ts, next_start=w.next_start,
                                      batch=batch, max_seq_jump=1000, gap_ns=GAP)
    assert rule(solid_batch("a", 40, [RED] * 4)) is None                                   # goes on
    assert rule(solid_batch("a", 40, [RED] * 4, fps=50.0)) == "fps_change"
    assert rule(solid_batch("a", 5000, [RED] * 4)) == "seq_jump"                           # far ahead
    assert rule(solid_batch("a", 0, [RED] * 4, t0_ns=newest_ts + 10**9)) == "restart"      # at 0, later
    assert rule(solid_batch("a", 0, [RED] * 4)) is None                                    # at 0, earlier: late
    silent = newest_ts - 40 * 40_000_000   # t0 (of seq 0) that puts seq 40 at newest_ts + the gap
    assert rule(solid_batch("a", 40, [RED] * 4, t0_ns=silent + GAP - 1)) is None           # silent, < the gap
    assert rule(solid_batch("a", 40, [RED] * 4, t0_ns=silent + GAP)) == "gap"               # silent for the gap
    later = windows_after(5000)
    assert epoch_reason(fps=25.0, newest_seq=later.newest, newest_ts=newest_ts, next_start=later.next_start,
                        batch=solid_batch("a", 8, [RED] * 4), max_seq_jump=1000, gap_ns=GAP) == "seq_jump"                       # far behind


def test_epoch_numbers_are_capture_times_and_never_repeat_the_open_one():
    batch = solid_batch("a", 0, [RED] * 4)
    assert first_epoch(batch) == batch.capture_ts_ns[0]
    assert next_epoch(7, batch) == batch.capture_ts_ns[0]
    assert next_epoch(batch.capture_ts_ns[0], batch) == batch.capture_ts_ns[0] + 1
    assert continues(batch, solid_batch("a", 4, [RED] * 4), gap_ns=GAP)
    assert not continues(batch, solid_batch("a", 8, [RED] * 4), gap_ns=GAP)
    assert not continues(batch, solid_batch("a", 4, [RED] * 4, fps=50.0), gap_ns=GAP)
    assert not continues(batch, solid_batch("a", 4, [RED] * 4, t0_ns=batch.capture_ts_ns[0] + GAP), gap_ns=GAP)


def test_a_full_metadata_is_logged_once_per_change_not_every_commit(caplog):
    """A flood of camera ids (issue 22) filled a partition's commit metadata and the warning was
    written at every commit, once a second per partition."""
    ledger = OffsetLedger()
    ledger.consumed(SourceRef(*TP, 0))
    cams = [OpenCamera((TP, f"camera-{i:05d}", 1), 0, deque([(0, 3)])) for i in range(400)]
    with caplog.at_level("WARNING", logger="soccerkd.pipeline"):
        for _ in range(5):
            (point,) = ledger.commit_points(cams).values()
        assert len(caplog.records) == 1 and "left out" in caplog.records[0].getMessage()
        ledger.commit_points(cams[:10])   # fits again
        ledger.commit_points(cams)        # full again: a change, logged
    assert len(caplog.records) == 2
    assert len(point[1].encode()) <= resume.MAX_METADATA_BYTES
