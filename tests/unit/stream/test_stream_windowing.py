"""Worked examples of the window rules: gaps, duplicates, reordering, fps resampling, resume."""

import pytest

from soccerkd.errors import ConfigError
from soccerkd.spec import ClipSpec
from stream.core.windowing import CameraWindows, WindowConfig


def cam(n=3, s=2, ws=2, tol=1, fill=1, fps=None, target=None):
    w = CameraWindows("c", ClipSpec(num_frames=n, frame_stride=s, target_fps=target),
                      WindowConfig(window_stride=ws, reorder_tolerance=tol, max_fill=fill))
    w.set_source_fps(fps)
    return w


def feed(w, seqs):
    out = []
    for q in seqs:
        out += [(x.start_seq, x.seqs, x.frames, x.filled) for x in w.add(q, q * 10, f"f{q}")]
    return out


def test_docstring_worked_example():
    w = cam()
    assert feed(w, [0, 1, 2, 3, 4]) == [(0, (0, 2, 4), ("f0", "f2", "f4"), 0)]
    assert feed(w, [4]) == [] and w.stats.duplicates == 1
    assert feed(w, [6]) == [(2, (2, 4, 6), ("f2", "f4", "f6"), 0)]
    assert feed(w, [5]) == [] and w.stats.reordered == 1
    assert feed(w, [9]) == [(4, (4, 6, 8), ("f4", "f6", "f6"), 1)]
    assert w.stats.gap_frames == 2 and w.stats.windows_filled == 1
    assert feed(w, [1]) == [] and w.stats.late == 1
    assert w.next_start == 6


def test_contiguous_stream_every_window_once_in_order():
    w = cam(n=4, s=1, ws=2, tol=0)
    starts = [x[0] for x in feed(w, range(20))]
    assert starts == list(range(0, 17, 2))


def test_reordered_frame_within_tolerance_completes_window():
    w = cam(n=3, s=1, ws=3, tol=2, fill=0)
    assert feed(w, [0, 2, 3]) == []          # 1 missing, wait (3 < end 2 + tol 2)
    assert feed(w, [1]) == [(0, (0, 1, 2), ("f0", "f1", "f2"), 0)]
    assert w.stats.reordered == 1 and w.stats.gap_frames == 0


def test_big_gap_skips_windows_and_jumps_ahead():
    w = cam(n=2, s=1, ws=1, tol=0, fill=0)
    feed(w, [0, 1])
    out = feed(w, [1000, 1001])
    assert out == [(1000, (1000, 1001), ("f1000", "f1001"), 0)]
    assert w.stats.windows_skipped == 1000 - 1 and w.stats.gap_frames == 998


def test_too_many_missing_frames_skip_the_window():
    w = cam(n=3, s=1, ws=3, tol=0, fill=1)
    assert feed(w, [0, 3, 4, 5]) == [(3, (3, 4, 5), ("f3", "f4", "f5"), 0)]
    assert w.stats.windows_skipped == 1


def test_first_window_aligned_to_window_stride():
    w = cam(n=2, s=1, ws=4, tol=0)
    assert [x[0] for x in feed(w, range(5, 14))] == [8, 12]


def test_fps_resampling_sets_stride():
    w = cam(n=3, s=1, ws=4, tol=0, fps=50.0, target=12.5)
    assert w.stride() == 4 and w.span() == 9
    assert [x[1] for x in feed(w, range(0, 13))] == [(0, 4, 8), (4, 8, 12)]
    assert not w.needed(13) and w.needed(16)


def test_resume_point_skips_replayed_frames():
    w = cam(n=2, s=1, ws=2, tol=0)
    w.resume_at(6)
    assert [x[0] for x in feed(w, range(4, 10))] == [6, 8]
    assert w.stats.replayed == 2 and w.stats.late == 0


def test_config_validation_names_value():
    with pytest.raises(ConfigError, match="-1"):
        WindowConfig(window_stride=-1)
