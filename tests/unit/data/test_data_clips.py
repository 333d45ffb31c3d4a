import random

import pytest

from soccerkd.data.clips import clip_indices, max_start, random_clip_start, uniform_clip_starts, uniform_clips
from soccerkd.errors import ConfigError, DataError
from soccerkd.spec import ClipSpec


def test_video_shorter_than_clip_clamps_to_last_frame():
    spec = ClipSpec(num_frames=8)
    assert max_start(5, spec) == 0
    assert clip_indices(0, 5, spec) == (0, 1, 2, 3, 4, 4, 4, 4)
    assert uniform_clip_starts(5, spec, 3) == (0, 0, 0)
    assert clip_indices(0, 1, spec) == (0,) * 8


def test_stride_greater_than_one():
    spec = ClipSpec(num_frames=4, frame_stride=2)
    assert spec.span() == 7
    assert max_start(10, spec) == 3
    assert clip_indices(3, 10, spec) == (3, 5, 7, 9)
    assert clip_indices(0, 5, spec) == (0, 2, 4, 4)
    assert uniform_clip_starts(10, spec, 2) == (0, 3)


def test_target_fps_sets_stride_from_source_fps():
    spec = ClipSpec(num_frames=3, target_fps=12.5)
    assert clip_indices(0, 100, spec, fps=25.0) == (0, 2, 4)
    assert clip_indices(0, 100, spec, fps=None) == (0, 1, 2)


def test_exactly_divisible_length_tiles_the_video():
    spec = ClipSpec(num_frames=8)
    clips = uniform_clips(32, spec, 4)
    assert [c[0] for c in clips] == [0, 8, 16, 24]
    assert [i for c in clips for i in c] == list(range(32))


def test_uniform_single_clip_is_centred_and_last_clip_reaches_the_end():
    spec = ClipSpec(num_frames=8, frame_stride=2)
    assert uniform_clip_starts(25, spec, 1) == (5,)
    assert uniform_clips(25, spec, 3)[-1][-1] == 24


def test_single_frame_clips():
    spec = ClipSpec(num_frames=1)
    assert uniform_clip_starts(25, spec, 5) == (0, 6, 12, 18, 24)
    assert clip_indices(7, 25, spec) == (7,)


def test_random_start_stays_in_range_and_covers_it():
    spec = ClipSpec(num_frames=8, frame_stride=2)
    rng = random.Random(0)
    starts = {random_clip_start(20, spec, rng) for _ in range(500)}
    assert starts == set(range(0, 6))


def test_bad_inputs_name_the_value():
    with pytest.raises(DataError, match="num_video_frames=0"):
        clip_indices(0, 0, ClipSpec())
    with pytest.raises(DataError, match="start 10"):
        clip_indices(10, 10, ClipSpec())
    with pytest.raises(ConfigError, match="num_clips"):
        uniform_clip_starts(10, ClipSpec(), 0)


def test_segment_layout_spans_the_whole_video_and_eval_clips_differ():
    from soccerkd.data.clips import eval_segment_offsets, segment_indices

    clips = [segment_indices(25, 8, o) for o in eval_segment_offsets(4)]
    assert all(c[0] <= 3 and c[-1] >= 21 for c in clips)       # each spans the 25 frames
    assert len(set(clips)) == 4                                 # and the 4 eval clips differ
    assert segment_indices(100, 4, [0.0, 0.5, 0.99, 0.25]) == (0, 37, 74, 81)
    with pytest.raises(ConfigError, match="offsets"):
        segment_indices(10, 2, 1.0)
