import json

import numpy as np
import pytest

from soccerkd.data.decode import probe, read_frames
from soccerkd.data.splits import read_manifest
from soccerkd.data.synth import SynthConfig, generate_dataset, parse_size, render_match
from soccerkd.errors import ConfigError

CFG = SynthConfig(width=96, height=72, num_frames=12, fps=25.0)


def test_same_seed_gives_identical_decoded_frames(tmp_path):
    a = generate_dataset(tmp_path / "a", clips_per_class=2, seed=7, cfg=CFG, progress=False)
    b = generate_dataset(tmp_path / "b", clips_per_class=2, seed=7, cfg=CFG, progress=False)
    assert a["clips"] == b["clips"] == 8
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.mp4"))
    assert len(files) == 8
    for rel in files:
        np.testing.assert_array_equal(read_frames(tmp_path / "a" / rel), read_frames(tmp_path / "b" / rel))
    assert (tmp_path / "a/manifest.json").read_text() == (tmp_path / "b/manifest.json").read_text()
    other = generate_dataset(tmp_path / "c", clips_per_class=1, seed=8, cfg=CFG, progress=False)
    assert other["clips"] == 4
    assert not np.array_equal(read_frames(tmp_path / "a/kick/kick_0000.mp4"),
                              read_frames(tmp_path / "c/kick/kick_0000.mp4"))


def test_layout_manifest_and_video_properties(tmp_path):
    generate_dataset(tmp_path, clips_per_class=3, seed=1, cfg=CFG, progress=False)
    for c in ("dribble", "kick", "run", "walk"):
        assert sorted(p.name for p in (tmp_path / c).iterdir()) == [f"{c}_{i:04d}.mp4" for i in range(3)]
    info = probe(tmp_path / "run/run_0001.mp4")
    assert (info.num_frames, info.width, info.height, info.fps) == (12, 96, 72, 25.0)
    m = read_manifest(tmp_path / "manifest.json")
    assert m.extra["synth"]["seed"] == 1
    assert sum(sum(v.values()) for v in m.counts().values()) == 12
    frames = read_frames(tmp_path / "walk/walk_0000.mp4")
    green = frames[..., 1].astype(int) - frames[..., 0]
    assert (green > 20).mean() > 0.3  # mostly pitch


def test_render_match_writes_video_and_ground_truth(tmp_path):
    truth = render_match(tmp_path / "m.mp4", [("walk", 10), ("dribble", 12), ("kick", 14)], size=(96, 72), seed=2)
    assert truth["segments"] == [{"label": "walk", "start_frame": 0, "end_frame": 10},
                                 {"label": "dribble", "start_frame": 10, "end_frame": 22},
                                 {"label": "kick", "start_frame": 22, "end_frame": 36}]
    assert json.loads((tmp_path / "m.json").read_text()) == truth
    assert probe(tmp_path / "m.mp4").num_frames == 36
    with pytest.raises(ConfigError, match="swim"):
        render_match(tmp_path / "x.mp4", [("swim", 10)])


def test_parse_size():
    assert parse_size("160x120") == (160, 120)
    assert parse_size("128") == (128, 128)
    with pytest.raises(ConfigError, match="'abc'"):
        parse_size("abc")


def test_v3_seed_mixes_size_and_length_v2_does_not():
    from soccerkd.data.synth import clip_rng

    a, b = SynthConfig(160, 120, 32), SynthConfig(128, 96, 32)
    assert clip_rng(1, 0, 5, a).random() != clip_rng(1, 0, 5, b).random()
    assert clip_rng(1, 0, 5, a).random() != clip_rng(1, 0, 5, SynthConfig(160, 120, 24)).random()
    v2a, v2b = SynthConfig(160, 120, 32, version=2), SynthConfig(128, 96, 32, version=2)
    assert clip_rng(1, 0, 5, v2a).random() == clip_rng(1, 0, 5, v2b).random() == clip_rng(1, 0, 5).random()
    with pytest.raises(ConfigError, match="version"):
        SynthConfig(version=5)


def test_v3_single_frames_give_little_away_clips_do():
    """Issue 12: on v3 a single-frame probe stays near chance; the same-budget clip model does not.

    Both are the same MLP on what the generator simulated (soccerkd.data.probe); ~10 s on one core.
    Measured here (128x96, 24 frames, seed 0): frame probe 33.8% video (29.1% per frame), clip model
    90.8%; ``soccerkd data probe --seed 0/1/2`` in docs/results.md. v2, for contrast: 96.7% video
    accuracy from single frames (seed 1).
    """
    import torch

    from soccerkd.data.probe import run_probe

    torch.set_num_threads(1)
    res = run_probe(SynthConfig(128, 96, 24), seed=0)
    assert res.frame_acc <= 0.35, res
    assert res.frame_video_acc <= 0.40, res
    assert res.clip_video_acc >= res.frame_video_acc + 0.15, res


@pytest.mark.slow
def test_v3_single_frames_at_the_stronger_probe_budget():
    """Issue 25: with 10x the training clips (1500 per class), 4x the width (256) and 4x the steps
    (6000), the single-frame probe on v3 gets well above chance per video, mostly from kicks.
    Measured (``soccerkd data probe --train-per-class 1500 --hidden 256 --steps 6000``, seeds 0/1/2):
    44.6 / 47.5 / 42.5% video (34.4 / 33.7 / 31.8% per frame), clip model 99.2 / 99.2 / 97.1%.
    So v3 does NOT meet "single frame <= 40% per video" at this budget (docs/results.md says so);
    this pins the measured leak (seed 0) so that it cannot grow unnoticed. ~60 s on one core."""
    import torch

    from soccerkd.data.probe import run_probe

    torch.set_num_threads(1)
    res = run_probe(SynthConfig(128, 96, 24), seed=0, train_per_class=1500, hidden=256, steps=6000)
    assert res.train_videos == 6000
    assert res.frame_acc <= 0.37, res
    assert 0.40 < res.frame_video_acc <= 0.47, res   # above the 40% target: the known v3 leak
    assert res.clip_video_acc >= 0.95, res


def test_render_match_scene_stays_on_v2():
    """A v2 match scene never moves (render_match's default, and the matches of students trained on
    v2 clips): changes to later versions must not touch it. Golden hash of the simulated match
    scene (ball, zoom, target track and legs) that render_match draws for seed 3, as of v3's
    single-frame fixes."""
    import hashlib

    import numpy as np

    from soccerkd.data.synth import Segment, _scene

    segs = [Segment("walk", 20, 0.55), Segment("dribble", 20, 0.55), Segment("kick", 24, 0.55), Segment("run", 20, 0.55)]
    cam, players, ball, _ = _scene(segs, SynthConfig(96, 72, 84, version=2), np.random.default_rng([3, 9999]),
                                   clip_mode=False)
    h = hashlib.sha256()
    for a in (ball, cam.focal, players[0].pos, players[0].angles["hip"], players[0].angles["knee"]):
        h.update(np.round(a, 6).tobytes())
    assert h.hexdigest() == "e4502ea2ebfe0b63d84db436b12e790a9267ae6f741e7cc5e77090989223af57"


def _match_scene_hash(version: int) -> str:
    import hashlib

    from soccerkd.data.synth import Segment, _scene

    segs = [Segment("walk", 20, 0.55), Segment("dribble", 20, 0.55), Segment("kick", 24, 0.55), Segment("run", 20, 0.55)]
    cam, players, ball, _ = _scene(segs, SynthConfig(96, 72, 84, version=version), np.random.default_rng([3, 9999]),
                                   clip_mode=False)
    h = hashlib.sha256()
    for a in (ball, cam.focal, players[0].pos, players[0].angles["hip"], players[0].angles["knee"]):
        h.update(np.round(a, 6).tobytes())
    return h.hexdigest()


def test_render_match_scene_v3_is_pinned():
    """render_match(version=3), the demo's match for a student trained on v3 clips: the same golden
    check as v2's, so a change to v3 that moves the demo's match is seen (and the student retrained)."""
    assert _match_scene_hash(3) == "3c664658e7ff377ea000b2e730c611dec24cbcac7274c5baaa829d17c5871352"
    assert _match_scene_hash(3) != _match_scene_hash(2)


def test_render_match_version_default_is_v2_bytes(tmp_path):
    """Without ``version`` render_match renders exactly the v2 video it always did; version=3 gives
    another scene, the same for the same seed, and the ground truth names the version."""
    timeline = [("walk", 10), ("kick", 14), ("run", 8)]
    default = render_match(tmp_path / "d.mp4", timeline, size=(96, 72), seed=4)
    v2 = render_match(tmp_path / "v2.mp4", timeline, size=(96, 72), seed=4, version=2)
    v3a = render_match(tmp_path / "v3a.mp4", timeline, size=(96, 72), seed=4, version=3)
    v3b = render_match(tmp_path / "v3b.mp4", timeline, size=(96, 72), seed=4, version=3)
    assert (default["version"], v2["version"], v3a["version"]) == (2, 2, 3)
    assert (tmp_path / "d.mp4").read_bytes() == (tmp_path / "v2.mp4").read_bytes()
    np.testing.assert_array_equal(read_frames(tmp_path / "v3a.mp4"), read_frames(tmp_path / "v3b.mp4"))
    assert not np.array_equal(read_frames(tmp_path / "v2.mp4"), read_frames(tmp_path / "v3a.mp4"))
    with pytest.raises(ConfigError, match="version"):
        render_match(tmp_path / "x.mp4", timeline, size=(96, 72), version=9)


def test_match_clips_lie_inside_one_segment_and_split_by_match(tmp_path):
    from soccerkd.data.synth import generate_match_clips

    cfg = SynthConfig(width=64, height=48, num_frames=12, fps=25.0, version=3)
    r = generate_match_clips(tmp_path, matches=3, seed=5, cfg=cfg, num_segments=3, progress=False)
    m = read_manifest(tmp_path / "manifest.json")
    assert m.extra["synth"]["source"] == "match" and m.extra["synth"]["version"] == 3
    assert m.extra["synth"]["matches_per_split"] == {"train": 1, "val": 1, "test": 1}
    by_split = {s: {p.split("/")[1].split("_")[0] for p, _ in m.entries(s)} for s in ("train", "val", "test")}
    assert by_split == {"train": {"m0000"}, "val": {"m0001"}, "test": {"m0002"}}   # no match in two splits
    assert r["clips"] == sum(len(m.entries(s)) for s in ("train", "val", "test")) > 0
    for path, label in m.entries("all"):
        assert path.startswith(f"{label}/")
    path = m.entries("all")[0][0]
    assert probe(tmp_path / path).num_frames == 12
    again = generate_match_clips(tmp_path / "again", matches=3, seed=5, cfg=cfg, num_segments=3, progress=False)
    assert again["counts"] == r["counts"]
    np.testing.assert_array_equal(read_frames(tmp_path / path), read_frames(tmp_path / "again" / path))


# --------------------------------------------------------------------------- generator v4 (issue 25)

def _frames_hash(frames) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in frames:
        h.update(f.tobytes())
    return h.hexdigest()


def _clip_frames_hash(version: int) -> str:
    from soccerkd.data.synth import clip_rng, render_clip

    cfg = SynthConfig(64, 48, 10, version=version)
    return _frames_hash(f for ci, label in enumerate(("dribble", "kick", "run", "walk"))
                        for f in render_clip(label, cfg, clip_rng(5, ci, 1, cfg)))


def _match_frames_hash(version: int) -> str:
    from soccerkd.data.synth import Segment, _render_frames, _scene

    cfg = SynthConfig(64, 48, 20, version=version)
    rng = np.random.default_rng([3, 9999])
    cam, players, ball, look = _scene([Segment("walk", 8, 0.55), Segment("kick", 12, 0.55)], cfg, rng, clip_mode=False)
    return _frames_hash(_render_frames(cfg, cam, players, ball, look, rng))


def test_v2_v3_rendered_frames_are_pinned():
    """Adding v4 (and moving the player/ball drawing into a function) changed no v2/v3 pixel: golden
    hashes of raw rendered frames (clips and a match), taken on main before v4 existed."""
    assert _clip_frames_hash(2) == "30817a8c79dfdf221d9d4a3573ae297037fd12fab7653c9706d1f5bd3d02452c"
    assert _match_frames_hash(2) == "e563e765a7b686b55e74ecb0ff80e2511cc1090fb4d98355b7cb07dfaef44811"
    assert _clip_frames_hash(3) == "14627a6b95f5b008982fe8e3c8305d19ba4b1b15c003f3128aaca2bb1dfdfe5d"
    assert _match_frames_hash(3) == "e860830dc7d1c56c3a69c3ff7cae897d3cc40df3ae8da821840f3be02e6dea62"


def test_v4_same_seed_same_bytes_and_render_match(tmp_path):
    from soccerkd.data.synth import clip_rng, render_clip

    assert _clip_frames_hash(4) == _clip_frames_hash(4) != _clip_frames_hash(3)
    cfg = SynthConfig(64, 48, 6, version=4)
    a = render_clip("kick", cfg, clip_rng(1, 1, 0, cfg))
    b = render_clip("kick", cfg, clip_rng(2, 1, 0, cfg))
    assert not np.array_equal(np.stack(a), np.stack(b))
    timeline = [("walk", 8), ("kick", 12)]
    t1 = render_match(tmp_path / "a.mp4", timeline, size=(64, 48), seed=4, version=4)
    render_match(tmp_path / "b.mp4", timeline, size=(64, 48), seed=4, version=4)
    assert t1["version"] == 4 and t1["num_frames"] == 20
    np.testing.assert_array_equal(read_frames(tmp_path / "a.mp4"), read_frames(tmp_path / "b.mp4"))


def test_v4_randomisations_are_present_and_vary():
    """Each of v4's randomisations shows up and differs between clips (12 scenes, no rendering but one
    clip): grass stripes and texture, crowd, lettered boards, scale from wide to close, zoom drift,
    pan wobble, motion blur, kits, lighting, shadows, graphics and JPEG quality."""
    import cv2

    from soccerkd.data import broadcast as B
    from soccerkd.data.synth import clip_rng, simulate_clip

    cfg = SynthConfig(128, 96, 24, version=4)
    scenes = [simulate_clip("run", cfg, clip_rng(0, 2, k, cfg)) for k in range(12)]
    looks = [s[3] for s in scenes]
    assert all(isinstance(look, B.BroadcastLook) for look in looks)
    # grass: mowing stripes (two shades alternating on the pitch) plus texture; differs per clip
    tex = [look.textures() for look in looks]
    for ground, _, _ in tex[:3]:
        assert cv2.cvtColor(ground, cv2.COLOR_BGR2GRAY).astype(float).std() > 3
    assert len({ground.tobytes() for ground, _, _ in tex}) == 12
    assert looks[0].textures()[0] is tex[0][0]   # built once
    # crowd: many colours; boards: lettering (more than the panel colours)
    assert all(len(np.unique(crowd.reshape(-1, 3), axis=0)) > 50 for _, crowd, _ in tex)
    assert all(len(np.unique(boards.reshape(-1, 3), axis=0)) > 10 for _, _, boards in tex)
    # camera: the target's height as a fraction of the frame, wide to close, and a zoom that drifts
    fracs = []
    for cam, players, _, _ in scenes:
        d = np.linalg.norm(np.r_[players[0].pos[0], 0.9] - cam.centre)
        fracs.append(cam.focal[0] * 1.8 / d / cfg.height)
    assert min(fracs) < 0.25 and max(fracs) > 0.45, fracs
    drift = [abs(cam.focal[-1] / cam.focal[0] - 1) for cam, *_ in scenes]
    assert max(drift) > 0.1
    # motion blur on in some clips, off in others; lighting, shadows, graphics vary
    assert {look.motion[0] > 0 for look in looks} == {True, False}
    assert len({round(look.gamma, 3) for look in looks}) == 12 and len({look.jpeg for look in looks}) > 4
    assert all(B.JPEG_QUALITY_V4[0] <= look.jpeg < B.JPEG_QUALITY_V4[1] for look in looks)
    assert {look.sun is None for look in looks} == {True, False}
    assert {look.bug is None for look in looks} == {True, False}
    assert len({players[0].kit["shirt"] for _, players, _, _ in scenes}) > 6
    # the score bug is drawn on top and its clock runs (61 s later it reads differently)
    look = next(look for look in looks if look.bug is not None)
    a, b = np.zeros((96, 128, 3), np.uint8), np.zeros((96, 128, 3), np.uint8)
    B._draw_graphics(a, look, 0, cfg.fps, cv2)
    B._draw_graphics(b, look, int(61 * cfg.fps), cfg.fps, cv2)
    assert a.any() and not np.array_equal(a, b)
    # one rendered clip
    cam, players, ball, look = scenes[0]
    frames = list(B.render_frames(cfg, cam, players, ball, look, np.random.default_rng(0)))
    assert len(frames) == 24 and frames[0].shape == (96, 128, 3)
    green = frames[12][..., 1].astype(int) - frames[12][..., 2]
    assert (green > 15).mean() > 0.3   # mostly pitch


def test_v4_feints_are_timed_as_kicks_and_a_leaving_ball_never_falls_behind(monkeypatch):
    """The single-frame leaks v4 removes (issue 25): v3's feints came late in the clip (a redraw until
    feint and leave were apart), so how many frames were in the swing told kicks from the rest; and a
    v3 runner overtook a slow leaving ball. In v4 the swing of every class is timed alike, and the
    ball leaves relative to the target."""
    import soccerkd.data.synth as S

    swings: list[float] = []
    real = S._apply_kick
    monkeypatch.setattr(S, "_apply_kick", lambda ang, t, tc, *a, **k: (swings.append(tc), real(ang, t, tc, *a, **k)))

    def swing_spread(label: str, version: int) -> float:
        swings.clear()
        cfg = SynthConfig(64, 48, 24, version=version)
        for k in range(80):
            S.simulate_clip(label, cfg, S.clip_rng(0, 0, k, cfg))
        return float(np.std(swings))

    # v3: feints at the window's ends (std 0.084 s against a kick's 0.057 s); v4: 0.061 against 0.063
    assert swing_spread("walk", 3) - swing_spread("kick", 3) > 0.015
    assert abs(swing_spread("walk", 4) - swing_spread("kick", 4)) < 0.008
    behind = {}
    for v in (3, 4):
        cfg, n = SynthConfig(64, 48, 24, version=v), 0
        for k in range(40):
            _, players, ball, _ = S.simulate_clip("run", cfg, S.clip_rng(0, 2, k, cfg))
            t = players[0]
            ahead = ((ball[:, :2] - t.pos) * np.stack([np.cos(t.heading), np.sin(t.heading)], 1)).sum(1)
            n += int((ahead < -0.05).any())
        behind[v] = n
    assert behind[4] == 0 < behind[3], behind


@pytest.mark.slow
def test_v4_single_frames_at_the_stronger_probe_budget():
    """Issue 25, item 3: on v4 the single-frame probe stays <= 40% per video at the stronger budget
    (1500 clips per class, 2x256, 6000 steps), while the clip model still learns. Measured
    (``soccerkd data probe --version 4 --train-per-class 1500 --hidden 256 --steps 6000``, seeds 0/1/2,
    docs/results.md "Generator v4"): seed 0 33.3% video (29.7% per frame), clip model 100%; v3 at the
    same budget 42.5-47.5%. ~60 s on a free core (the scene's textures are not built to simulate it)."""
    import torch

    from soccerkd.data.probe import run_probe

    torch.set_num_threads(1)
    res = run_probe(SynthConfig(128, 96, 24, version=4), seed=0, train_per_class=1500, hidden=256, steps=6000)
    assert res.train_videos == 6000
    assert res.frame_video_acc <= 0.40, res
    assert res.clip_video_acc >= res.frame_video_acc + 0.3, res
