"""Hysteresis, minimum and maximum duration of action segments."""

import pytest

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
