"""Hysteresis, minimum and maximum duration of action segments, and averaging over windows."""

import pytest
from hypothesis import given, settings, strategies as st

from soccerkd.errors import ConfigError
from stream.core.smoothing import Smoother, SmoothingConfig, WindowRef

NAMES = ("kick", "run", "walk")


def ref(i):
    return WindowRef(start_seq=i * 4, end_seq=i * 4 + 7, start_capture_ts_ns=i, end_capture_ts_ns=i + 7,
                     newest_capture_ts_ns=i + 7)


def run(pk, **cfg):
    s = Smoother(NAMES, SmoothingConfig(**{"on_threshold": 0.6, "off_threshold": 0.4, "min_windows": 2, **cfg}))
    segs = []
    for i, p in enumerate(pk):
        segs += [(x.label, x.first.start_seq, x.last.end_seq, round(x.confidence, 4), x.num_windows)
                 for x in s.push(ref(i), (p, (1 - p) / 2, (1 - p) / 2))]
    return segs, s


def test_docstring_example_hysteresis():
    segs, s = run([0.2, 0.7, 0.5, 0.45, 0.3, 0.9])
    assert segs == [("kick", 4, 19, 0.55, 3)]
    assert s.active and s.resume_start == 20


def test_min_windows_discards_blips():
    segs, s = run([0.9, 0.1, 0.9, 0.1])
    assert segs == [] and not s.active and s.resume_start is None


def test_max_windows_closes_long_segment():
    segs, _ = run([0.9] * 5, max_windows=2)
    assert [x[1:3] for x in segs] == [(0, 11), (8, 19)]


def test_label_switch_after_off_threshold():
    s = Smoother(NAMES, SmoothingConfig(min_windows=1))
    out = []
    for i, p in enumerate([(0.9, 0.05, 0.05), (0.3, 0.65, 0.05), (0.1, 0.8, 0.1), (0.1, 0.1, 0.1)]):
        out += [(x.label, x.num_windows) for x in s.push(ref(i), p)]
    assert out == [("kick", 1), ("run", 2)]


def test_ignored_labels_never_start():
    s = Smoother(NAMES, SmoothingConfig(ignore_labels=("kick",), min_windows=1))
    assert s.push(ref(0), (0.95, 0.03, 0.02)) == [] and not s.active


def test_validation():
    with pytest.raises(ConfigError):
        SmoothingConfig(on_threshold=0.3, off_threshold=0.5)
    with pytest.raises(ConfigError):
        SmoothingConfig(min_windows=3, max_windows=2)
    with pytest.raises(ConfigError, match="average_windows must be >= 1, got 0"):
        SmoothingConfig(average_windows=0)


def test_averaging_bridges_a_one_window_misreading_and_reports_the_centred_span():
    pk = [0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1]
    segs, _ = run(pk)
    assert [x[1:3] for x in segs] == [(0, 11), (12, 27)]   # alone, the blip at w2 splits the kick
    s = Smoother(NAMES, SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, average_windows=3))
    closed_at = {}
    for i, p in enumerate(pk):
        for x in s.push(ref(i), (p, (1 - p) / 2, (1 - p) / 2)):
            closed_at[(x.label, x.first.start_seq, x.last.end_seq, x.num_windows)] = i
    # decided on the means of w0..w2, w1..w3, ...: w0..w4 are kick (>= 0.63), w5's mean 0.37 closes
    # it once w7 has come; reported one window on (w1..w5), the windows those means centre on
    assert closed_at == {("kick", 4, 27, 5): 7}
    assert s.close() == [] and s.resume_start is None


def test_averaging_waits_for_later_windows_and_close_decides_them():
    s = Smoother(NAMES, SmoothingConfig(min_windows=1, average_windows=3))
    assert s.push(ref(0), (0.9, 0.05, 0.05)) == [] and s.push(ref(1), (0.9, 0.05, 0.05)) == []
    assert not s.active and s.resume_start == 0   # nothing decided yet: a replay starts at w0
    (seg,) = s.close()
    assert (seg.label, seg.num_windows, seg.first.start_seq, seg.last.end_seq) == ("kick", 2, 4, 11)


def test_no_mean_reaches_across_a_gap():
    gap = 1_000
    s = Smoother(NAMES, SmoothingConfig(min_windows=1, average_windows=3), max_gap_ns=gap)
    kick, run_ = (0.9, 0.05, 0.05), (0.05, 0.9, 0.05)
    assert s.push(ref(0), kick) == [] and s.push(ref(1), kick) == []
    late = WindowRef(start_seq=8, end_seq=15, start_capture_ts_ns=10 * gap, end_capture_ts_ns=10 * gap + 7,
                     newest_capture_ts_ns=10 * gap + 7)
    (seg,) = s.push(late, run_)   # w0, w1 decided on their own means, the kick closed before the gap
    assert (seg.label, seg.num_windows, seg.last.end_seq) == ("kick", 2, 11)
    assert s.resume_start == 8 and not s.active


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=40),
       st.sampled_from([1, 2, 3, 5]), st.data())
def test_replay_from_resume_start_gives_the_same_segments(windows, average, data):
    """The serve path's property: a smoother rebuilt from the resume point (the windows from
    resume_start on) closes the same segments as the one that ran through; with capture-time
    gaps before some windows (kind 0) and windows that straddle an outage (kind 1) too."""
    probs = [(v / 9, (1 - v / 9) * 0.7, (1 - v / 9) * 0.3) for v, _ in windows]
    gap, refs, t = 1_000, [], 0
    for i, (_, kind) in enumerate(windows):
        t += 10 * gap if kind == 0 else 10
        refs.append(WindowRef(start_seq=i * 4, end_seq=i * 4 + 7, start_capture_ts_ns=t, end_capture_ts_ns=t + 7,
                              newest_capture_ts_ns=t + 7, max_frame_gap_ns=5 * gap if kind == 1 else 1))
    cfg = SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=1, max_windows=6,
                          average_windows=average)
    cut = data.draw(st.integers(0, len(probs) - 1))

    def key(seg):
        return seg.label, seg.first.start_seq, seg.last.end_seq, seg.num_windows, round(seg.confidence, 9)

    through = Smoother(NAMES, cfg, max_gap_ns=gap)
    emitted = []
    for i, p in enumerate(probs):
        emitted.append([key(x) for x in through.push(refs[i], p)])
        if i == cut:
            start = through.resume_start
    tail_through = [k for i, ks in enumerate(emitted) if i > cut for k in ks] + [key(x) for x in through.close()]
    first = cut + 1 if start is None else start // 4
    replayed = Smoother(NAMES, cfg, max_gap_ns=gap)
    out = []
    for i in range(first, len(probs)):
        out += [key(x) for x in replayed.push(refs[i], probs[i])]
    out += [key(x) for x in replayed.close()]
    assert out == tail_through
