"""A KD teacher may be given more training videos, never the student's val or test videos."""

import pytest

from soccerkd.data.splits import SplitManifest, heldout_sha256, manifest_sha256, subset_train
from soccerkd.spec import InputSpec
from soccerkd.train.runner import teacher_mismatches


def _manifest(train_per_class=6):
    classes = ("dribble", "kick")
    splits = {"train": tuple((f"{c}/t{i}.mp4", c) for c in classes for i in range(train_per_class)),
              "val": tuple((f"{c}/v{i}.mp4", c) for c in classes for i in range(2)),
              "test": tuple((f"{c}/x{i}.mp4", c) for c in classes for i in range(2))}
    return SplitManifest(class_names=classes, splits=splits)


def test_subset_train_keeps_heldout_and_samples_train_per_class():
    full = _manifest()
    sub = subset_train(full, 2, seed=1)
    assert sub.counts()["train"] == {"dribble": 2, "kick": 2}
    assert set(sub.splits["train"]) <= set(full.splits["train"])
    assert sub.splits["val"] == full.splits["val"] and sub.splits["test"] == full.splits["test"]
    assert heldout_sha256(sub) == heldout_sha256(full) and manifest_sha256(sub) != manifest_sha256(full)
    assert subset_train(full, 2, seed=1) == sub and subset_train(full, 2, seed=2) != sub
    with pytest.raises(Exception, match="per_class"):
        subset_train(full, 0)


def test_teacher_with_more_training_videos_is_admissible_other_heldout_is_not():
    spec = InputSpec()
    full, sub = _manifest(), subset_train(_manifest(), 2)
    other = SplitManifest(class_names=full.class_names,
                          splits={"train": full.splits["train"][1:] + full.splits["val"][:1],
                                  "val": full.splits["val"][1:] + full.splits["train"][:1],
                                  "test": full.splits["test"]})
    args = dict(teacher_heldout=heldout_sha256(full), heldout=heldout_sha256(sub))
    assert teacher_mismatches(spec, spec, manifest_sha256(full), manifest_sha256(sub), **args) == []
    bad = teacher_mismatches(spec, spec, manifest_sha256(other), manifest_sha256(sub),
                             teacher_heldout=heldout_sha256(other), heldout=heldout_sha256(sub))
    assert bad and "split manifest" in bad[0]
    # a teacher checkpoint from before held-out hashes: only the same manifest passes
    assert teacher_mismatches(spec, spec, manifest_sha256(full), manifest_sha256(sub), heldout=heldout_sha256(sub))


def test_best_pt_keeps_the_heldout_hash_a_kd_run_checks():
    """best.pt keeps only inference fields, and the val/test split hash is one of them: a KD run
    checks it when its teacher saw another training split."""
    from soccerkd.train.checkpoint import inference_fields

    kept = inference_fields({"model_state": {}, "heldout_sha256": "ab" * 32, "optimizer_state": {"x": 1}})
    assert kept["heldout_sha256"] == "ab" * 32 and "optimizer_state" not in kept
