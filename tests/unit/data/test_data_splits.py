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


def test_grouped_split_keeps_each_group_in_one_split(tmp_path):
    from soccerkd.data.splits import make_grouped_split, manifest_sha256, read_groups

    classes = ("dribble", "kick", "run", "walk")
    videos = [(f"{c}/match{m:02d}_{k}.mp4", c) for c in classes for m in range(10) for k in range(3)]
    groups = read_groups(videos, r"/(match\d+)_")
    assert groups["kick/match07_2.mp4"] == "match07" and len(set(groups.values())) == 10
    m = make_grouped_split(videos, classes, groups, seed=3)
    split_of = {p: s for s in ("train", "val", "test") for p, _ in m.entries(s)}
    for g in set(groups.values()):
        assert len({split_of[p] for p, gg in groups.items() if gg == g}) == 1
    sizes = {s: len(m.entries(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 84, "val": 24, "test": 12} or sum(sizes.values()) == 120
    assert min(sizes.values()) > 0
    again = make_grouped_split(list(reversed(videos)), classes, groups, seed=3)
    assert manifest_sha256(again) == manifest_sha256(m)
    assert manifest_sha256(make_grouped_split(videos, classes, groups, seed=4)) != manifest_sha256(m)
    # CSV groups, and errors that name the video
    csv = tmp_path / "groups.csv"
    csv.write_text("path,group\n" + "".join(f"{p},{g}\n" for p, g in groups.items()))
    assert read_groups(videos, str(csv)) == groups
    csv.write_text("path,group\n")
    with pytest.raises(DataError, match="no group"):
        read_groups(videos, str(csv))
    with pytest.raises(DataError, match="does not match video"):
        read_groups(videos, r"season\d+")


def test_data_split_cli_group_by(tmp_path, capsys):
    from soccerkd.data.splits import read_manifest
    from stream.cli import main

    for c in ("dribble", "kick", "run", "walk"):
        (tmp_path / c).mkdir()
        for m in range(6):
            for k in range(2):
                (tmp_path / c / f"m{m}_{k}" ).mkdir()
                (tmp_path / c / f"m{m}_{k}" / "0001.jpg").write_bytes(b"x")
    assert main(["data", "split", str(tmp_path), "--group-by", r"/(m\d+)_"]) == 0
    assert "6 groups, each in one split" in capsys.readouterr().out
    m = read_manifest(tmp_path / "manifest.json")
    assert m.extra["group_by"] == r"/(m\d+)_" and set(m.extra["groups"]) == {f"m{i}" for i in range(6)}


def test_grouped_split_warns_when_a_class_misses_val_or_test(tmp_path, capsys):
    """Issue 25: every 'walk' video comes from one match, so a grouped split puts all of them in one
    split and the others have no walk at all; data split says so."""
    from soccerkd.data.splits import make_grouped_split, missing_classes, read_groups, split_warnings
    from stream.cli import main

    classes = ("dribble", "kick", "run", "walk")
    videos = [(f"{c}/m{m}_{k}.mp4", c) for c in classes[:3] for m in range(6) for k in range(2)]
    videos += [(f"walk/m9_{k}.mp4", "walk") for k in range(4)]
    m = make_grouped_split(videos, classes, read_groups(videos, r"/(m\d+)_"), seed=0, extra={"group_by": "x"})
    missing = missing_classes(m)
    assert sum("walk" in names for names in missing.values()) == 2
    assert all(set(names) == {"walk"} for names in missing.values())
    assert any("no video of class 'walk'" in t and "another --seed" in t for t in split_warnings(m))

    for rel, _ in videos:
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "0001.jpg").write_bytes(b"x")
    assert main(["data", "split", str(tmp_path), "--group-by", r"/(m\d+)_"]) == 0
    err = capsys.readouterr().err
    assert err.count("WARNING split") == 2 and "no video of class 'walk'" in err


def test_training_without_a_manifest_warns_that_the_split_is_ungrouped(tmp_path, capsys):
    from soccerkd.config import load_config
    from soccerkd.train.config import TrainConfig
    from soccerkd.train.data import ensure_manifest

    for c in ("dribble", "kick", "run", "walk"):
        for v in range(3):
            (tmp_path / c / f"v{v}").mkdir(parents=True)
            (tmp_path / c / f"v{v}" / "0001.jpg").write_bytes(b"x")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"kind: train\ndata: {{root: {tmp_path}}}\n")
    path = ensure_manifest(load_config(TrainConfig, cfg, []), ("dribble", "kick", "run", "walk"))
    assert path.is_file()
    err = capsys.readouterr().err
    assert "is an ungrouped split" in err and "--group-by" in err and "no video of class" not in err
    ensure_manifest(load_config(TrainConfig, cfg, []), ("dribble", "kick", "run", "walk"))
    assert capsys.readouterr().err == ""   # an existing manifest is used as it is
