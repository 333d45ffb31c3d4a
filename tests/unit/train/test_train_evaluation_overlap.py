"""``check_training_overlap``: what evaluate says about a split against the checkpoint's training videos."""

import pytest

from soccerkd.errors import DataError
from soccerkd.train.evaluation import check_training_overlap


def _ckpt(root, **extra):
    return {"config": {"data": {"root": str(root)}}, "manifest_sha256": "a" * 64, **extra}


def test_overlap_refuses_and_allow_warns(tmp_path):
    ckpt = _ckpt(tmp_path, train_videos=["kick/1.mp4", "run/2.mp4"])
    kw = dict(data=tmp_path, split="test", eval_videos=["kick/1.mp4", "walk/3.mp4"], manifest_sha="b" * 64)
    with pytest.raises(DataError, match=r"1 of the 2 videos of split 'test'.*\['kick/1.mp4'\].*aaaaaaaaaaaa.*"
                                        r"bbbbbbbbbbbb"):
        check_training_overlap(ckpt, **kw)
    assert "1 of the 2 videos" in check_training_overlap(ckpt, allow=True, **kw)[0]
    assert check_training_overlap(ckpt, **{**kw, "eval_videos": ["walk/3.mp4"]}) == []


def test_other_dataset_is_not_compared_and_old_checkpoints_warn(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    ckpt = _ckpt(tmp_path, train_videos=["kick/1.mp4"])
    # same relative path on another dataset root with another manifest: no claim either way
    assert check_training_overlap(ckpt, data=other, split="test", eval_videos=["kick/1.mp4"], manifest_sha=None) == []
    old = _ckpt(tmp_path)   # written before train_videos was recorded
    [text] = check_training_overlap(old, data=tmp_path, split="test", eval_videos=["kick/1.mp4"],
                                    manifest_sha="b" * 64)
    assert "trained with split manifest aaaaaaaaaaaa" in text and "cannot be checked" in text
    assert check_training_overlap(old, data=tmp_path, split="test", eval_videos=["x"], manifest_sha="a" * 64) == []
    [text] = check_training_overlap({"config": {"data": {"root": str(tmp_path)}}}, data=tmp_path, split="val",
                                    eval_videos=["x"], manifest_sha="a" * 64)
    assert "records no split manifest" in text
    [text] = check_training_overlap(ckpt, data=tmp_path, split="train", eval_videos=["kick/1.mp4"], manifest_sha=None)
    assert "fit, not generalisation" in text
