import numpy as np
import pytest

from soccerkd.train.metrics import (clip_accuracy, confusion_matrix, precision_recall_f1, softmax, summarize,
                                    video_accuracy, video_predictions)


def test_video_accuracy_uses_mean_softmax_not_majority_vote():
    # Video 0 (label 0): two clips narrowly prefer class 1, one clip is very sure of class 0.
    # Majority vote says 1 (wrong); mean softmax says 0 (right). Video 1 (label 1) is plain.
    probs = np.array([[0.45, 0.55], [0.45, 0.55], [0.99, 0.01], [0.2, 0.8], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 1, 1])
    videos = np.array([7, 7, 7, 3, 3])
    mean, vlabel, rate = video_predictions(probs, labels, videos)
    np.testing.assert_allclose(mean[1], [(0.45 + 0.45 + 0.99) / 3, (0.55 + 0.55 + 0.01) / 3])
    assert vlabel.tolist() == [1, 0]  # sorted by video index: 3, 7
    np.testing.assert_allclose(rate, [1.0, 1 / 3])
    assert video_accuracy(probs, labels, videos) == 1.0
    assert clip_accuracy(probs, labels) == pytest.approx(3 / 5)
    m = summarize(probs, labels, videos, ["x", "y"], frames_per_clip=8)
    assert m["video_acc"] == 1.0 and m["video_acc_upstream"] == 0.5
    assert m["num_frames"] == 40 and m["frame_acc"] is None  # a clip model has no frame accuracy
    assert summarize(probs, labels, videos, ["x", "y"], frames_per_clip=1)["frame_acc"] == pytest.approx(0.6)


def test_precision_recall_f1_by_hand():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    prf = precision_recall_f1(cm)
    np.testing.assert_allclose(prf["precision"], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(prf["recall"], [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(prf["f1"], [0.8, 0.5, 2 / 3])
    assert prf["support"].tolist() == [3, 2, 1]


def test_absent_class_gives_zero_not_nan():
    prf = precision_recall_f1(confusion_matrix([0, 0], [0, 0], 2))
    assert prf["precision"].tolist() == [1.0, 0.0] and prf["f1"].tolist() == [1.0, 0.0]


def test_inconsistent_video_labels_and_bad_labels_are_errors():
    with pytest.raises(ValueError, match="different labels"):
        video_predictions(np.eye(2), [0, 1], [5, 5])
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 0], 2)


def test_softmax_rows_sum_to_one():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    np.testing.assert_allclose(p, [[0.5, 0.5], [0.25, 0.75]])


def test_plot_val_accuracy(tmp_path):
    import json

    from soccerkd.train.plots import plot_val_accuracy

    for name, accs in (("t", [0.3, 0.5]), ("s", [0.25, 0.4])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(
            [{"epoch": i + 1, "val_video_acc": a} for i, a in enumerate(accs)]))
    out = plot_val_accuracy({"teacher": [tmp_path / "t"], "student": [tmp_path / "s"]}, tmp_path / "v.png", chance=0.25)
    assert out.stat().st_size > 1000
