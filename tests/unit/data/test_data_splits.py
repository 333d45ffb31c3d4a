import json

import pytest

from soccerkd.data.splits import SPLITS, make_split, read_manifest, write_manifest
from soccerkd.errors import ConfigError, DataError

CLASSES = ("dribble", "kick", "run", "walk")


def _videos(counts=(20, 13, 31, 7)):
    return [(f"{c}/{c}_{i:03d}.mp4", c) for c, n in zip(CLASSES, counts) for i in range(n)]


def test_split_is_stratified_with_default_fractions():
    m = make_split(_videos(), CLASSES, seed=3)
    counts = m.counts()
    assert counts["train"]["dribble"] == 14 and counts["val"]["dribble"] == 3 and counts["test"]["dribble"] == 3
    for c, n in zip(CLASSES, (20, 13, 31, 7)):
        per = [counts[s].get(c, 0) for s in SPLITS]
        assert sum(per) == n and min(per) >= 1
        assert abs(per[0] / n - 0.7) < 0.15


def test_no_video_in_two_splits_and_all_used():
    m = make_split(_videos(), CLASSES, seed=0)
    paths = [p for s in SPLITS for p, _ in m.entries(s)]
    assert len(paths) == len(set(paths)) == len(_videos())
    assert len(m.entries("all")) == len(paths)


def test_deterministic_and_seed_dependent():
    a = make_split(_videos(), CLASSES, seed=1)
    b = make_split(list(reversed(_videos())), CLASSES, seed=1)
    c = make_split(_videos(), CLASSES, seed=2)
    assert a.to_dict() == b.to_dict()
    assert a.entries("test") != c.entries("test")


def test_manifest_round_trip(tmp_path):
    m = make_split(_videos(), CLASSES, seed=5, fractions=(0.6, 0.2, 0.2), extra={"synth": {"seed": 5}})
    path = write_manifest(m, tmp_path / "manifest.json")
    back = read_manifest(path)
    assert back.to_dict() == m.to_dict()
    assert back.extra["synth"]["seed"] == 5


def test_bad_manifest_and_fractions(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_manifest(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match="not a split manifest"):
        read_manifest(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="fractions"):
        make_split(_videos(), CLASSES, fractions=(0.5, 0.2, 0.2))
    d = make_split(_videos(), CLASSES).to_dict()
    d["splits"]["val"].append(d["splits"]["train"][0])
    (tmp_path / "dup.json").write_text(json.dumps(d))
    with pytest.raises(DataError, match="both"):
        read_manifest(tmp_path / "dup.json")
