"""Timeline agreement and histogram quantiles, on worked examples."""

from __future__ import annotations

import math

import pytest

from stream.core.evaluation import Segment, frame_accuracy, histogram_quantile, match_segments, temporal_iou


def test_iou_and_matching_worked_example():
    truth = [Segment("run", 0, 100), Segment("kick", 100, 130), Segment("walk", 130, 230)]
    predicted = [Segment("run", 10, 100), Segment("kick", 118, 140), Segment("walk", 140, 230),
                 Segment("dribble", 230, 240)]
    assert temporal_iou(predicted[0], truth[0]) == pytest.approx(0.9)
    score = match_segments(predicted, truth, iou=0.5)
    # run matches (0.9), kick does not (12/40 = 0.3), walk matches (0.9), dribble is a false positive
    assert [(i, j) for i, j, _ in score.matches] == [(0, 0), (2, 2)]
    assert score.precision == pytest.approx(2 / 4) and score.recall == pytest.approx(2 / 3)
    assert score.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_each_true_segment_matches_once_and_labels_must_agree():
    truth = [Segment("run", 0, 10)]
    score = match_segments([Segment("run", 0, 10), Segment("run", 1, 10), Segment("walk", 0, 10)], truth)
    assert score.true_positives == 1 and score.precision == pytest.approx(1 / 3)
    assert match_segments([], truth).recall == 0.0 and match_segments([], []).precision == 0.0


def test_frame_accuracy_counts_only_frames_with_truth():
    truth = [Segment("run", 0, 4), Segment("walk", 6, 10)]
    predicted = [Segment("run", 0, 2), Segment("walk", 2, 10)]
    assert frame_accuracy(predicted, truth, 12) == pytest.approx(6 / 8)


def test_bad_segments_and_thresholds_are_named():
    with pytest.raises(ValueError, match=r"\[5, 5\)"):
        Segment("run", 5, 5)
    with pytest.raises(ValueError, match="1.5"):
        match_segments([], [], iou=1.5)


def test_histogram_quantile_interpolates_like_promql():
    buckets = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (math.inf, 40.0)]
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * (20 - 10) / 20)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.5 + 0.5 * (39.6 - 30) / 10)
    assert math.isnan(histogram_quantile(0.5, [(math.inf, 0.0)]))
    assert histogram_quantile(1.0, [(0.1, 0.0), (math.inf, 5.0)]) == pytest.approx(0.1)
