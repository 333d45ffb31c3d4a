"""Procedural broadcast-like soccer clips (dribble, kick, run, walk) and longer "match" videos.

One renderer serves both :func:`generate_dataset` (short labelled clips in the SoccerDB1 video
layout plus a split manifest) and :func:`render_match` (one long video with a ground-truth
action timeline). The scene: a striped pitch with line markings, ad boards and stands seen by a
fixed, elevated broadcast camera that pans and zooms to follow one articulated target player;
distractor players walk and run around; a ball is dribbled, kicked, rolls loose or sits still.

The target is marked only by the camera following it. Classes differ over time (stride
frequency, background motion, repeated ball touches, the kick swing), while single-frame poses
overlap between classes, distractors move like the target and a loose ball often runs alongside
walking and running targets, so one frame is ambiguous by design.

Framing (v2): the camera zooms so that the target is 0.34-0.5 of the frame height
(``PLAYER_FRAC``; v1 used 0.2-0.42), follows it with a short lag (0.05-0.2 s, v1 0.15-0.5 s) while
anticipating its motion, and keeps a small framing offset (about +-0.75 m, v1 +-1.8 m). In v1 the
target was only ~14-30 px tall in 64 px training crops, and a fast target trailed the frame centre
by speed x lag, which is a single-frame speed cue; in v2 it stays near the centre at a learnable
size, so centre crops keep it and a clip model learns from 1400 clips on CPU (docs/results.md).
Class cues (gait ranges, ball, kick) are unchanged.

v3 (the default for clips; ``SynthConfig.version``), where time is needed: in v2 one frame gave
the class away (arm abduction only in kicks, the ball always at a dribbler's feet, class-specific
pose ranges; per-frame features reached 97% video accuracy in ``soccerkd data probe --version 2``).
In v3 every pose range is shared by all classes, arm abduction and gait asymmetry are random in
every clip, every walk/run/dribble clip holds a feint (the kick swing without a strike, with the leg
on the ball's side, when a kick would strike), every target has a ball at its feet that moves as a
dribbled ball does (a walker's or runner's to its own rhythm, not the stride's), and in every class
that ball leaves once mid-clip along the ground at a kick's speed and angle (``LEAVE_T_V3``): struck
at a kick's swing, with the foot on the ball's side; knocked into space or rolling off in the other
classes, never at their feint. What is left to tell the classes apart needs several frames: speed
and cadence, touches locked to the stride, the plant and the ball leaving at the swing.
``soccerkd.data.probe`` measures it.
``render_match`` takes the version too (default 2, the bytes it always rendered); the demo renders
the version its student was trained on (the checkpoint's ``synth`` record,
``soccerkd.train.checkpoint.synth_version``).

v4 (``--version 4``; issue 25) keeps v3's motion and changes what a frame looks like: domain
randomisation toward real broadcast (:mod:`soccerkd.data.broadcast`: textured grass with mowing
stripes, crowd and lettered ad boards, wide shots to close-ups, zoom drift, pan wobble, motion blur,
palette kits, lighting and sun shadows, a score bug with a running clock, resolution loss and JPEG).
It also closes the single-frame leaks that a stronger probe found in v3 (10x the data: 42-48% per
video, mostly kicks): v3 drew a feint and the ball's leaving together and redrew both until they were
apart, which pushed feints to the ends of the window while a kick's contact is uniform in it (how
many of a clip's frames sat in the swing then told kicks apart); a v3 kick blended two gait draws
(more average poses); and a leaving ball moved at an absolute speed, so a runner overtook it ("ball
behind" meant run) and a kicker who planted fell back from it. In v4 a feint is timed exactly as a
kick's contact, a kick keeps one pose draw, the ball leaves *relative* to the target
(``LEAVE_SPEED_V4``), and it may leave just before a feint (a swing at a ball already rolling away)
but never at or just after one (``NO_LEAVE_AFTER_FEINT_S_V4``): swing then ball is a kick's order.

Determinism: each clip draws from :func:`clip_rng` (v3 mixes the frame size, length, fps and version
into the seed; v2 used ``[seed, class_index, clip_index]``) and is rendered with fixed-order
numpy/OpenCV calls, so the same seed and arguments give byte-identical decoded frames.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from soccerkd.errors import ConfigError, DataError
from soccerkd.spec import SOCCERDB1_CLASSES

PITCH_L, PITCH_W = 105.0, 68.0
THIGH, SHIN, UPPER_ARM, FOREARM = 0.46, 0.46, 0.30, 0.28
GAIT_KEYS = ("speed", "freq", "hip", "knee", "lean", "arm", "elbow", "bob")
_G = {k: i for i, k in enumerate(GAIT_KEYS)}
# Per-class ranges. Pose ranges overlap on purpose; stride frequency and speed (visible only
# over time, since the camera follows the target) are what separate walk and run.
GAIT_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "walk": dict(speed=(1.0, 2.0), freq=(0.75, 1.05), hip=(0.30, 0.55), knee=(0.55, 1.15),
                 lean=(0.0, 0.16), arm=(0.25, 0.6), elbow=(0.3, 1.2), bob=(0.015, 0.04)),
    "run": dict(speed=(4.2, 7.0), freq=(1.35, 1.75), hip=(0.40, 0.72), knee=(0.85, 1.75),
                lean=(0.06, 0.28), arm=(0.35, 0.85), elbow=(0.8, 1.6), bob=(0.03, 0.07)),
    "dribble": dict(speed=(3.0, 5.0), freq=(1.3, 1.7), hip=(0.35, 0.60), knee=(0.8, 1.5),
                    lean=(0.08, 0.28), arm=(0.3, 0.75), elbow=(0.6, 1.4), bob=(0.025, 0.06)),
    "approach": dict(speed=(2.6, 4.2), freq=(1.2, 1.55), hip=(0.35, 0.6), knee=(0.8, 1.4),
                     lean=(0.05, 0.2), arm=(0.3, 0.7), elbow=(0.6, 1.3), bob=(0.025, 0.05)),
    "idle": dict(speed=(0.0, 0.3), freq=(0.3, 0.5), hip=(0.02, 0.08), knee=(0.1, 0.3),
                 lean=(0.0, 0.1), arm=(0.05, 0.15), elbow=(0.2, 0.6), bob=(0.0, 0.01)),
}
# v3: every pose range is shared by all classes (a single frame's pose says nothing about the class);
# only speed and stride frequency (cadence) differ, and both are visible only over time because the
# camera follows the target. Distractors ("idle") keep their own range.
_POSE_V3 = dict(hip=(0.30, 0.95), knee=(0.55, 1.75), lean=(-0.18, 0.28), arm=(0.25, 0.85),
                elbow=(0.3, 1.6), bob=(0.015, 0.07))
GAIT_RANGES_V3: dict[str, dict[str, tuple[float, float]]] = {
    "walk": dict(speed=(1.0, 2.0), freq=(0.75, 1.05), **_POSE_V3),
    "run": dict(speed=(4.2, 7.0), freq=(1.35, 1.75), **_POSE_V3),
    "dribble": dict(speed=(2.4, 4.4), freq=(1.05, 1.45), **_POSE_V3),
    "approach": dict(speed=(2.6, 4.2), freq=(1.2, 1.55), **_POSE_V3),
    "idle": GAIT_RANGES["idle"],
}
# Arm abduction (v3): a per-clip level plus a slow drift, drawn the same way for every class.
ABD_V3 = (0.05, 0.75)
# Chance that a walk/run/dribble clip (v3) holds a feint: the kick swing with no ball strike.
FEINT_P_V3 = 1.0
# Chance that a dribble (v3) knocks the ball on, 2.5-5 m ahead, instead of keeping it within reach.
KNOCK_ON_P_V3 = 0.3
# v3: in every class the ball at the target's feet leaves once, mid-clip (0.4-0.62 of the clip, when
# a kick strikes), along the ground at a kick's speed and angle: struck by a kick, knocked into space
# by a dribbler, rolling off on its own past a walker or runner. So "the ball is going away" is in
# every class's frames; only a kick sends it at the swing and plants to do so.
LEAVE_T_V3 = (0.4, 0.62)
# ... and never within this many seconds of a non-kick clip's feint, so that a swing that sends the
# ball away is always a kick.
LEAVE_GAP_S_V3 = 0.16
# v4: the ball that leaves (any class) rolls off relative to the target at this speed (m/s), so
# where it lies in one frame does not depend on how fast the target moves (a v3 runner overtook a
# slow ball, a v3 kicker stopped behind it: "ball behind" meant run).
LEAVE_SPEED_V4 = (3.0, 16.0)
# v4, non-kick clips: the ball may leave shortly before the feint (the swing misses a ball already
# rolling away), never at it or within this window after it (s); so the follow-through with the ball
# going away is in every class's frames, and only the order (swing, then ball) marks a kick.
NO_LEAVE_AFTER_FEINT_S_V4 = (0.0, 0.12)
VERSIONS = (2, 3, 4)
DEFAULT_VERSION = 3
# render_match's default: matches rendered before the version was selectable were v2, and a call
# that does not name a version still renders those bytes.
MATCH_DEFAULT_VERSION = 2
# Target height as a fraction of the frame height (the camera zooms to this). v2: was (0.2, 0.42),
# which left the target ~14-30 px tall in 64 px training crops: too small to learn from.
PLAYER_FRAC = (0.34, 0.5)
# Kick keyframes, seconds relative to ball contact: kicking leg back-swing, contact, follow-through.
_KICK_T = np.array([-0.45, -0.30, -0.12, 0.0, 0.12, 0.30, 0.55])
_KICK_W = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
_KICK_HIP_K = np.array([0.0, -0.10, -0.60, 0.30, 1.15, 0.60, 0.0])
_KICK_KNEE_K = np.array([0.3, 0.60, 1.80, 0.35, 0.15, 0.40, 0.3])
_KICK_HIP_P = np.array([0.0, 0.35, 0.12, -0.05, -0.20, -0.10, 0.0])
_KICK_KNEE_P = np.array([0.2, 0.30, 0.35, 0.30, 0.20, 0.30, 0.2])
_KICK_LEAN = np.array([0.1, 0.05, -0.05, -0.18, -0.12, 0.05, 0.1])
_KICK_ABD = np.array([0.1, 0.45, 0.85, 0.95, 0.75, 0.40, 0.1])


@dataclass(frozen=True)
class SynthConfig:
    """What one generated clip looks like: frame size (width, height), length and frame rate."""

    width: int = 160
    height: int = 120
    num_frames: int = 32
    fps: float = 25.0
    # Generator version: 3 (default) needs time to tell the classes apart; 4 is v3 with a broadcast
    # look and fewer single-frame cues; 2 is kept for reproducing older datasets (module docstring).
    version: int = DEFAULT_VERSION

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise ConfigError(f"synth version must be one of {VERSIONS}, got {self.version!r}")
        if self.width < 32 or self.height < 32:
            raise ConfigError(f"synth size must be at least 32x32, got {self.width}x{self.height}")
        if self.num_frames < 1:
            raise ConfigError(f"synth num_frames must be >= 1, got {self.num_frames!r}")
        if not self.fps > 0:
            raise ConfigError(f"synth fps must be > 0, got {self.fps!r}")


def parse_size(text: str) -> tuple[int, int]:
    """``"160x120"`` -> (160, 120); ``"128"`` -> (128, 128)."""
    try:
        parts = [int(p) for p in str(text).lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 32:
        raise ConfigError(f"size must look like WIDTHxHEIGHT (each >= 32), got {text!r}")
    return parts[0], parts[1]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _sample_gait(kind: str, rng: np.random.Generator, version: int = 2) -> np.ndarray:
    ranges = (GAIT_RANGES_V3 if version >= 3 else GAIT_RANGES)[kind]
    return np.array([_u(rng, *ranges[k]) for k in GAIT_KEYS])


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


# --------------------------------------------------------------------------- motion

@dataclass
class Track:
    """Per-frame state of one player: ground position, heading, gait phase and joint angles."""

    pos: np.ndarray      # T×2 ground position (m)
    heading: np.ndarray  # T
    angles: dict[str, np.ndarray]  # joint angles, each T (legs/arms: [..., side] with side 0=left)
    kit: dict[str, tuple[int, int, int]]
    height: float = 1.0  # body scale


def _integrate(speed: np.ndarray, heading: np.ndarray, freq: np.ndarray, start: np.ndarray,
               phase0: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
    step = np.stack([np.cos(heading), np.sin(heading)], 1) * (speed * dt)[:, None]
    pos = start[None, :] + np.concatenate([np.zeros((1, 2)), np.cumsum(step[:-1], 0)], 0)
    phase = phase0 + np.concatenate([[0.0], np.cumsum(2 * np.pi * freq[:-1] * dt)])
    return pos, phase


def _gait_angles(phase: np.ndarray, g: np.ndarray, abd: np.ndarray | None = None,
                 skew: float = 0.0) -> dict[str, np.ndarray]:
    """Joint angles of a walking/running gait: ``g`` is T×len(GAIT_KEYS); ``abd`` (T) arm abduction;
    ``skew`` moves the right leg off exact anti-phase (an uneven gait, v3)."""
    ph = np.stack([phase, phase + np.pi + skew], 1)  # left, right leg
    hip_amp, knee, arm, elbow = (g[:, _G[k]][:, None] for k in ("hip", "knee", "arm", "elbow"))
    hip = hip_amp * np.sin(ph)
    knee_flex = 0.12 + knee * np.maximum(0.0, np.cos(ph + 0.5)) ** 1.5
    arm_sw = -arm * np.sin(ph)
    elbow_f = elbow * (1 + 0.25 * np.sin(ph))
    bob = g[:, _G["bob"]] * np.cos(2 * phase)
    pelvis = (THIGH + SHIN) * np.cos(0.55 * g[:, _G["hip"]]) - 0.03 + bob
    return dict(hip=hip, knee=knee_flex, arm=arm_sw, elbow=elbow_f, abd=np.full_like(hip, 0.12) if abd is None else np.repeat(abd[:, None], 2, 1),
                lean=g[:, _G["lean"]].copy(), pelvis=pelvis)


def _apply_kick(angles: dict[str, np.ndarray], t: np.ndarray, t_contact: float, side: int,
                rng: np.random.Generator, version: int = 2) -> None:
    """Overwrite the gait with the plant/swing/follow-through keyframes around ``t_contact``.

    v3 keeps every kick pose inside the shared gait ranges (smaller swing, arms untouched), so
    the kick shows only as one swing over time, not as a pose no other class has.
    """
    scale = _u(rng, 0.85, 1.2)
    amp = _u(rng, 0.55, 0.85) if version >= 3 else _u(rng, 0.85, 1.15)
    rel = (t - t_contact) / scale
    w = _smoothstep(np.interp(rel, _KICK_T, _KICK_W))
    k, p = side, 1 - side

    def blend(key: str, col: int | None, values: np.ndarray) -> None:
        target = np.interp(rel, _KICK_T, values)
        arr = angles[key]
        if col is None:
            arr[:] = (1 - w) * arr + w * target
        else:
            arr[:, col] = (1 - w) * arr[:, col] + w * target

    blend("hip", k, _KICK_HIP_K * amp)
    blend("knee", k, _KICK_KNEE_K)
    blend("hip", p, _KICK_HIP_P)
    blend("knee", p, _KICK_KNEE_P)
    blend("lean", None, _KICK_LEAN)
    if version < 3:
        blend("abd", 0, _KICK_ABD)
        blend("abd", 1, _KICK_ABD)
        blend("arm", p, _KICK_ABD * 0.5)
    angles["pelvis"][:] -= 0.06 * w


@dataclass(frozen=True)
class Segment:
    """One stretch of a target's timeline: an action label for ``num_frames`` frames."""

    label: str
    num_frames: int
    kick_at: float = 0.5  # kick only: contact time as a fraction of the segment


def _simulate_target(segments: Sequence[Segment], fps: float, rng: np.random.Generator,
                     start: np.ndarray, heading0: float, blend_s: float = 0.35, version: int = 2
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], list[tuple[int, int]], np.ndarray]:
    """Target track over all segments with smooth transitions.

    Returns positions, headings, joint angles, kicks ``(contact_frame, side)`` and the per-frame
    dribble flag.
    """
    dt = 1.0 / fps
    total = sum(s.num_frames for s in segments)
    gait = np.zeros((total, len(GAIT_KEYS)))
    heading = np.zeros(total)
    dribbling = np.zeros(total, bool)
    kicks: list[tuple[int, int, float]] = []
    prev = None
    h = heading0
    f0 = 0
    turn_sign = 1.0 if rng.random() < 0.5 else -1.0
    for seg in segments:
        n = seg.num_frames
        t = np.arange(n) * dt
        if seg.label == "kick":
            approach, after = _sample_gait("approach", rng, version), _sample_gait("walk", rng, version)
            after[_G["speed"]] = _u(rng, 0.6, 1.6)
            if version >= 4:  # one pose for the clip, as every other class keeps (v3 blended two
                # draws, whose mean is narrower than one draw: a kick's frames were more average)
                for key in ("hip", "knee", "lean", "arm", "elbow", "bob"):
                    after[_G[key]] = approach[_G[key]]
            tc = seg.kick_at * n * dt
            mix = _smoothstep((t - (tc - 0.35)) / 0.6)[:, None]
            target = (1 - mix) * approach + mix * after
            slow = 1 - 0.7 * np.exp(-((t - tc) / 0.22) ** 2)  # plant: brake hard around contact
            target[:, _G["speed"]] *= slow
            kicks.append((f0 + int(round(tc * fps)), int(rng.integers(2)), tc))
        else:
            target = np.repeat(_sample_gait(seg.label, rng, version)[None], n, 0)
        if prev is not None:
            w = _smoothstep(t / blend_s)[:, None]
            target = (1 - w) * prev[None] + w * target
        gait[f0:f0 + n] = target
        # gentle curving runs; kicks keep a straight approach
        curv = 0.0 if seg.label == "kick" else turn_sign * _u(rng, 0.0, 0.35)
        if rng.random() < 0.3 and seg.label != "kick":
            turn_sign = -turn_sign
        heading[f0:f0 + n] = h + curv * t
        h = heading[f0 + n - 1]
        dribbling[f0:f0 + n] = seg.label == "dribble"
        prev = target[-1]
        f0 += n
    pos, phase = _integrate(gait[:, _G["speed"]], heading, gait[:, _G["freq"]], start, _u(rng, 0, 2 * np.pi), dt)
    tt = np.arange(total) * dt
    abd = None
    if version >= 3:
        abd = np.clip(_u(rng, *ABD_V3) + _u(rng, 0.0, 0.2) * np.sin(_u(rng, 0.3, 1.5) * tt + _u(rng, 0, 6.3)),
                      0.02, 0.95)
    angles = _gait_angles(phase, gait, abd, skew=_u(rng, -0.6, 0.6) if version >= 3 else 0.0)
    starts = np.cumsum([0] + [s.num_frames for s in segments])
    out_kicks = []
    for (frame, side, tc), s0 in zip(kicks, [starts[i] for i, s in enumerate(segments) if s.label == "kick"]):
        _apply_kick(angles, tt, s0 * dt + tc, side, rng, version)
        out_kicks.append((frame, side))
    angles["phase"] = phase
    return pos, heading, angles, out_kicks, dribbling


def _dribble_ball(pos: np.ndarray, heading: np.ndarray, phase: np.ndarray, rng: np.random.Generator,
                  frames: np.ndarray, knock_on: bool = False, foot: int | None = None) -> np.ndarray:
    """Ball kept within reach: touched at the dominant foot's forward swing every 1-2 strides.

    ``knock_on`` (v3): pushed 2.5-5 m ahead at each touch, as a player running into space does.
    ``foot`` (v3 kicks): the touching foot (0 left, 1 right) instead of a random one.
    """
    every = int(rng.integers(1, 3))
    side = int(rng.integers(2))
    side = side if foot is None else foot
    lat = (0.12 if side == 0 else -0.12) + _u(rng, -0.1, 0.1)
    d_touch, peak = _u(rng, 0.3, 0.45), (_u(rng, 2.5, 5.0) if knock_on else _u(rng, 0.9, 2.0))
    # u = 0 exactly when the touching foot is at its forward extreme (hip angle at its maximum)
    ph = phase[frames] + (np.pi if side else 0.0) - np.pi / 2
    u = (ph / (2 * np.pi * every)) % 1.0
    d = d_touch + (peak - d_touch) * np.sin(np.pi * u) ** 0.8
    f = np.stack([np.cos(heading[frames]), np.sin(heading[frames])], 1)
    lv = np.stack([-f[:, 1], f[:, 0]], 1)
    xy = pos[frames] + d[:, None] * f + lat * lv
    return np.concatenate([xy, np.full((len(frames), 1), 0.11)], 1)


def _free_ball(p0: np.ndarray, v0: np.ndarray, n: int, dt: float) -> np.ndarray:
    """Ball physics: gravity, bounces that lose energy, rolling friction."""
    out = np.zeros((n, 3))
    p, v = p0.astype(float).copy(), v0.astype(float).copy()
    for i in range(n):
        out[i] = p
        v[2] -= 9.81 * dt
        p = p + v * dt
        if p[2] < 0.11:
            p[2] = 0.11
            v[2] = -0.5 * v[2] if abs(v[2]) > 1.0 else 0.0
            v[:2] *= 1 - 1.2 * dt
    return out


def _loose_ball(pos: np.ndarray, heading: np.ndarray, rng: np.random.Generator, dt: float) -> np.ndarray:
    """A ball rolling alongside the player without ever being touched (chasing a loose ball)."""
    n = len(pos)
    t = np.arange(n) * dt
    d = _u(rng, 0.5, 2.6) + _u(rng, 0.2, 0.8) * np.sin(_u(rng, 0.5, 2.0) * t + _u(rng, 0, 6.3))
    lat = _u(rng, -1.4, 1.4) + 0.3 * np.sin(_u(rng, 0.3, 1.0) * t)
    f = np.stack([np.cos(heading), np.sin(heading)], 1)
    lv = np.stack([-f[:, 1], f[:, 0]], 1)
    xy = pos + d[:, None] * f + lat[:, None] * lv
    return np.concatenate([xy, np.full((n, 1), 0.11)], 1)


def _near_ball(pos: np.ndarray, heading: np.ndarray, rng: np.random.Generator, dt: float) -> np.ndarray:
    """v3: a ball at the target's feet that the target never plays: it moves exactly as a dribbled
    ball does (same distances, same side offsets) but to its own rhythm, not the stride's.

    So any one frame of it looks like a frame of a dribble; only over time does it show that the
    ball's bounces are not locked to the feet. Sometimes it then rolls away, as a kicked ball does.
    """
    n = len(pos)
    t = np.arange(n) * dt
    own_phase = _u(rng, 0, 2 * np.pi) + 2 * np.pi * _u(rng, 0.6, 1.8) * t
    return _dribble_ball(pos, heading, own_phase, rng, np.arange(n), knock_on=rng.random() < KNOCK_ON_P_V3)


def _leave(ball: np.ndarray, frame: int, heading: np.ndarray, rng: np.random.Generator, dt: float) -> None:
    """v3: from ``frame`` on, the ball rolls away along the ground from where it was, at a kick's
    speed (3-18 m/s) and within 0.35 rad of the target's heading (in place)."""
    frame = min(max(frame, 1), len(ball) - 1)
    ang = heading[frame] + _u(rng, -0.35, 0.35)
    speed = _u(rng, 3, 18)
    ball[frame:] = _free_ball(ball[frame - 1], np.array([speed * math.cos(ang), speed * math.sin(ang), 0.0]),
                              len(ball) - frame, dt)


def _leave_v4(ball: np.ndarray, frame: int, pos: np.ndarray, heading: np.ndarray, rng: np.random.Generator,
              dt: float) -> None:
    """v4: as :func:`_leave`, but the ball rolls away *relative to the target* (in its body frame, at
    ``LEAVE_SPEED_V4``, slowing as a rolling ball does), so one frame of a ball going away looks the
    same whether a runner, a walker or a kicker who plants sent it."""
    frame = min(max(frame, 1), len(ball) - 1)
    f = np.stack([np.cos(heading), np.sin(heading)], 1)
    lv = np.stack([-f[:, 1], f[:, 0]], 1)
    rel0 = ball[frame - 1, :2] - pos[frame - 1]
    start = np.array([rel0 @ f[frame - 1], rel0 @ lv[frame - 1], 0.11])
    ang, speed = _u(rng, -0.35, 0.35), _u(rng, *LEAVE_SPEED_V4)
    rel = _free_ball(start, np.array([speed * math.cos(ang), speed * math.sin(ang), 0.0]), len(ball) - frame, dt)
    ball[frame:, :2] = pos[frame:] + rel[:, :1] * f[frame:] + rel[:, 1:2] * lv[frame:]
    ball[frame:, 2] = rel[:, 2]


def _target_ball(segments: Sequence[Segment], pos: np.ndarray, heading: np.ndarray, phase: np.ndarray,
                 kicks: list[tuple[int, int]], dt: float, rng: np.random.Generator,
                 ball0: np.ndarray | None, version: int = 2) -> np.ndarray:
    """Ball track for a timeline: dribbled, placed and kicked, or rolling free; passes in between.

    ``ball0=None`` starts with the ball already where the first segment needs it (clips).
    """
    total = len(pos)
    ball = np.zeros((total, 3))
    cur_p, cur_v = (None if ball0 is None else ball0.copy()), np.zeros(3)
    f0 = 0
    kick_iter = iter(kicks)
    for seg in segments:
        n = seg.num_frames
        frames = np.arange(f0, f0 + n)
        if seg.label == "dribble":
            knock_on = version >= 3 and rng.random() < KNOCK_ON_P_V3
            want = _dribble_ball(pos, heading, phase, rng, frames, knock_on)
        elif seg.label == "kick":
            frame, side = next(kick_iter)
            frame = min(max(frame, f0), f0 + n - 1)
            k = frame - f0
            if version >= 3:  # dribbled in (as a dribble's ball, knock-ons included), struck along the ground
                # with the kicking foot, so the ball is on the swinging leg's side (as at a feint)
                want = _dribble_ball(pos, heading, phase, rng, frames, rng.random() < KNOCK_ON_P_V3, foot=side)
                if version >= 4:
                    _leave_v4(want, max(k, 1), pos[f0:f0 + n], heading[f0:f0 + n], rng, dt)
                else:
                    _leave(want, max(k, 1), heading[f0:f0 + n], rng, dt)
            else:
                fwd = np.array([math.cos(heading[frame]), math.sin(heading[frame])])
                lat = np.array([-fwd[1], fwd[0]]) * (0.1 if side == 0 else -0.1)
                spot = np.r_[pos[frame] + 0.3 * fwd + lat, 0.11]
                want = np.repeat(spot[None], n, 0)
                ang = heading[frame] + _u(rng, -0.35, 0.35)
                speed, vz = _u(rng, 14, 26), _u(rng, 0.0, 8.0)
                v0 = np.array([speed * math.cos(ang), speed * math.sin(ang), vz])
                want[k:] = _free_ball(spot, v0, n - k, dt)
        else:
            p0 = np.r_[pos[f0] + 15 * rng.normal(size=2), 0.11] if cur_p is None else cur_p
            want = _free_ball(p0, cur_v, n, dt)
        if cur_p is not None and seg.label in ("dribble", "kick") and np.linalg.norm(want[0, :2] - cur_p[:2]) > 0.05:
            # the ball is passed in: roll from where it is to where the action needs it
            reach = _smoothstep(np.arange(n) * dt / 0.5)[:, None]
            want = (1 - reach) * (cur_p[None] + np.arange(n)[:, None] * dt * cur_v[None]) + reach * want
        ball[frames] = want
        cur_p = want[-1].copy()
        cur_v = (want[-1] - want[-2]) / dt if n > 1 else np.zeros(3)
        f0 += n
    return ball


# --------------------------------------------------------------------------- camera & drawing

@dataclass
class Camera:
    """A fixed broadcast camera that rotates (pan/tilt) and zooms: per-frame R (T×3×3) and focal."""

    centre: np.ndarray
    rot: np.ndarray
    focal: np.ndarray
    width: int
    height: int

    def project(self, pts: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
        """World points N×3 at frame ``i`` -> pixel coords N×2 (float) and depth N."""
        cam = (pts - self.centre) @ self.rot[i].T
        depth = np.maximum(cam[:, 2], 0.3)
        uv = np.stack([self.width / 2 + self.focal[i] * cam[:, 0] / depth,
                       self.height / 2 + self.focal[i] * cam[:, 1] / depth], 1)
        return uv, depth


def _look_rotation(direction: np.ndarray) -> np.ndarray:
    fwd = direction / np.linalg.norm(direction)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd])


def _make_camera(follow: np.ndarray, cfg: SynthConfig, rng: np.random.Generator, player_frac: float) -> Camera:
    """Camera on the near stand following ``follow`` (T×2) with lag, framing offset and zoom drift."""
    n = len(follow)
    centre = np.array([PITCH_L / 2 + _u(rng, -12, 12), -_u(rng, 22, 40), _u(rng, 10, 22)])
    lag = _u(rng, 0.05, 0.2)
    alpha = 1 - math.exp(-1 / (lag * cfg.fps))
    # the operator anticipates: the smoother tracks the position ``lead * lag`` seconds ahead, so
    # the steady-state lag (speed x lag, a single-frame speed cue) mostly cancels
    vel = np.gradient(follow, axis=0) * cfg.fps if n > 1 else np.zeros_like(follow)
    ahead = follow + vel * (lag * _u(rng, 0.7, 1.0))
    smooth = np.zeros_like(follow)
    smooth[0] = follow[0]
    for i in range(1, n):
        smooth[i] = smooth[i - 1] + alpha * (ahead[i] - smooth[i - 1])
    # and keeps a small, slowly drifting framing offset (metres; the target stays near the centre)
    t = np.arange(n) / cfg.fps
    off = np.stack([_u(rng, -0.5, 0.5) + 0.25 * np.sin(_u(rng, 0.2, 0.9) * t + _u(rng, 0, 6.3)),
                    _u(rng, -0.3, 0.3) + 0.15 * np.sin(_u(rng, 0.2, 0.9) * t + _u(rng, 0, 6.3))], 1)
    jitter = rng.normal(0, 0.03, (n, 2))
    look = np.concatenate([smooth + off + jitter, np.full((n, 1), 0.9)], 1)
    rot = np.stack([_look_rotation(look[i] - centre) for i in range(n)])
    dist = np.linalg.norm(look - centre, axis=1)
    zoom = 1 + _u(rng, -0.15, 0.15) * _smoothstep(t / max(t[-1], 1e-6))
    focal = player_frac * cfg.height * dist / 1.8 * zoom
    return Camera(centre, rot, focal, cfg.width, cfg.height)


def _pitch_geometry() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Stripe quads and line polylines in world coordinates (z = 0)."""
    stripes = []
    n = 18
    for k in range(n):
        x0, x1 = PITCH_L * k / n, PITCH_L * (k + 1) / n
        stripes.append(np.array([[x0, 0, 0], [x1, 0, 0], [x1, PITCH_W, 0], [x0, PITCH_W, 0.0]]))
    lines = [np.array([[0, 0, 0], [PITCH_L, 0, 0], [PITCH_L, PITCH_W, 0], [0, PITCH_W, 0], [0, 0, 0.0]]),
             np.array([[PITCH_L / 2, 0, 0], [PITCH_L / 2, PITCH_W, 0.0]])]
    a = np.linspace(0, 2 * np.pi, 40)
    lines.append(np.stack([PITCH_L / 2 + 9.15 * np.cos(a), PITCH_W / 2 + 9.15 * np.sin(a), 0 * a], 1))
    for x0, sgn in ((0.0, 1), (PITCH_L, -1)):
        for depth, half in ((16.5, 20.16), (5.5, 9.16)):
            lines.append(np.array([[x0, PITCH_W / 2 - half, 0], [x0 + sgn * depth, PITCH_W / 2 - half, 0],
                                   [x0 + sgn * depth, PITCH_W / 2 + half, 0], [x0, PITCH_W / 2 + half, 0]]))
        arc = np.linspace(-0.93, 0.93, 16)
        lines.append(np.stack([x0 + sgn * (11 + 9.15 * np.cos(arc)), PITCH_W / 2 + 9.15 * np.sin(arc), 0 * arc], 1))
    return stripes, lines


_STRIPES, _LINES = _pitch_geometry()


@dataclass
class Look:
    """Per-clip appearance: colours, lighting and degradations."""

    grass: tuple[np.ndarray, np.ndarray]
    line: tuple[int, int, int]
    stands: tuple[int, int, int]
    boards: list[tuple[int, int, int]]
    gain: np.ndarray
    noise: float
    blur: float
    jpeg: int | None
    shadow: np.ndarray | None
    scorebug: tuple[int, int, tuple[int, int, int], tuple[int, int, int]] | None


def _sample_look(rng: np.random.Generator, cfg: SynthConfig) -> Look:
    base = np.array([_u(rng, 40, 80), _u(rng, 110, 165), _u(rng, 40, 75)])
    delta = _u(rng, 0.06, 0.16)
    grass = (base * (1 + delta), base * (1 - delta))
    boards = [tuple(int(c) for c in rng.integers(30, 255, 3)) for _ in range(12)]
    gain = np.array([_u(rng, 0.85, 1.12), _u(rng, 0.9, 1.1), _u(rng, 0.85, 1.12)]) * _u(rng, 0.75, 1.2)
    shadow = None
    if rng.random() < 0.35:
        x = _u(rng, 0, PITCH_L)
        shadow = np.array([[x, -5, 0], [x + _u(rng, -30, 30), PITCH_W + 5, 0], [PITCH_L + 60, PITCH_W + 5, 0],
                           [PITCH_L + 60, -5, 0]])
    bug = None
    if rng.random() < 0.5:
        bug = (int(rng.integers(0, 2)), int(rng.integers(0, 2)),
               tuple(int(c) for c in rng.integers(0, 255, 3)), tuple(int(c) for c in rng.integers(0, 255, 3)))
    return Look(grass=grass, line=tuple(int(c) for c in rng.integers(215, 256, 3)),  # type: ignore[arg-type]
                stands=tuple(int(c) for c in rng.integers(25, 90, 3)), boards=boards, gain=gain,  # type: ignore[arg-type]
                noise=_u(rng, 0.0, 7.0), blur=_u(rng, 0.0, 0.9) if rng.random() < 0.6 else 0.0,
                jpeg=int(rng.integers(25, 90)) if rng.random() < 0.5 else None, shadow=shadow, scorebug=bug)


def _random_kit(rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    shirt = rng.integers(0, 256, 3)
    shorts = rng.integers(0, 256, 3) if rng.random() < 0.6 else np.full(3, 240 if shirt.mean() < 128 else 20)
    skin = np.array([_u(rng, 90, 240), 0, 0])
    skin[1], skin[2] = skin[0] * _u(rng, 0.65, 0.8), skin[0] * _u(rng, 0.5, 0.65)
    socks = shirt if rng.random() < 0.5 else rng.integers(0, 256, 3)
    as_t = lambda a: tuple(int(v) for v in a)  # noqa: E731
    return dict(shirt=as_t(shirt), shorts=as_t(shorts), skin=as_t(skin), socks=as_t(socks),
                hair=as_t(rng.integers(10, 90, 3)), boots=as_t(rng.integers(0, 60, 3)))


def _joints(track: Track, i: int) -> np.ndarray:
    """World coordinates of the skeleton at frame ``i`` (see ``_BONES`` for the joint order)."""
    a = track.angles
    h = track.heading[i]
    f = np.array([math.cos(h), math.sin(h), 0.0])
    lv = np.array([-f[1], f[0], 0.0])
    z = np.array([0.0, 0.0, 1.0])
    s = track.height
    pelvis = np.r_[track.pos[i], a["pelvis"][i] * s]
    lean = a["lean"][i]
    up = math.sin(lean) * f + math.cos(lean) * z
    neck = pelvis + 0.52 * s * up
    head = neck + 0.15 * s * up
    out = [pelvis, neck, head]
    for side, sgn in ((0, 1.0), (1, -1.0)):
        th, kn = a["hip"][i, side], a["knee"][i, side]
        hip = pelvis + sgn * 0.1 * s * lv
        knee = hip + THIGH * s * (math.sin(th) * f - math.cos(th) * z)
        sh = th - kn
        ankle = knee + SHIN * s * (math.sin(sh) * f - math.cos(sh) * z)
        toe = ankle + 0.16 * s * (math.cos(sh) * f + math.sin(sh) * z)
        out += [hip, knee, ankle, toe]
    for side, sgn in ((0, 1.0), (1, -1.0)):
        al, el, ab = a["arm"][i, side], a["elbow"][i, side], a["abd"][i, side]
        shoulder = neck - 0.05 * s * up + sgn * 0.19 * s * lv
        d1 = math.cos(ab) * (math.sin(al) * f - math.cos(al) * z) + math.sin(ab) * sgn * lv
        d2 = math.cos(ab) * (math.sin(al + el) * f - math.cos(al + el) * z) + math.sin(ab) * sgn * lv
        elbow = shoulder + UPPER_ARM * s * d1
        out += [shoulder, elbow, elbow + FOREARM * s * d2]
    return np.array(out)


# joint indices: 0 pelvis 1 neck 2 head | 3 hipL 4 kneeL 5 ankleL 6 toeL | 7 hipR 8 kneeR 9 ankleR 10 toeR
# | 11 shL 12 elbL 13 handL | 14 shR 15 elbR 16 handR
def _draw_player(img: np.ndarray, uv: np.ndarray, ppm: float, track: Track, near_left: bool, cv2: Any) -> None:
    k = track.kit
    p = lambda j: (int(round(uv[j, 0] * 4)), int(round(uv[j, 1] * 4)))  # noqa: E731  (2 fractional bits)
    th = lambda w: max(1, int(round(w * ppm * track.height)))  # noqa: E731
    aa = cv2.LINE_AA

    def limb(a: int, b: int, color: tuple[int, int, int], w: float) -> None:
        cv2.line(img, p(a), p(b), color, th(w), aa, 2)

    def dim(c: tuple[int, int, int]) -> tuple[int, int, int]:
        return tuple(int(v * 0.78) for v in c)  # type: ignore[return-value]

    def leg(side: int, far: bool) -> None:
        o = 3 + 4 * side
        shade = dim if far else (lambda c: c)
        limb(o, o + 1, shade(k["skin"]), 0.13)
        limb(o + 1, o + 2, shade(k["socks"]), 0.11)
        limb(o + 2, o + 3, shade(k["boots"]), 0.09)

    def arm(side: int, far: bool) -> None:
        o = 11 + 3 * side
        shade = dim if far else (lambda c: c)
        limb(o, o + 1, shade(k["shirt"]), 0.11)
        limb(o + 1, o + 2, shade(k["skin"]), 0.08)

    near, far = (0, 1) if near_left else (1, 0)
    leg(far, True)
    arm(far, True)
    limb(0, 1, k["shirt"], 0.34)
    cv2.line(img, p(0), p(3 + 4 * near), k["shorts"], th(0.26), aa, 2)
    cv2.line(img, p(0), p(3 + 4 * far), k["shorts"], th(0.26), aa, 2)
    leg(near, False)
    arm(near, False)
    r = max(1, int(round(0.11 * ppm * track.height * 4)))
    cv2.circle(img, p(2), r, k["skin"], -1, aa, 2)
    cv2.circle(img, (p(2)[0], p(2)[1] - r // 3), max(1, int(r * 0.8)), k["hair"], -1, aa, 2)


def _draw_players_and_ball(img: np.ndarray, camera: Camera, i: int, players: list[Track], ball: np.ndarray,
                           prev_ball_uv: np.ndarray | None, grass: Any, cv2: Any) -> np.ndarray:
    """Players (with a contact shadow in ``grass`` colour) and the ball, far to near, at frame ``i``;
    returns the ball's pixel position (the next frame draws a streak from it when it moved fast)."""
    aa = cv2.LINE_AA
    items = []
    for tr in players:
        jw = _joints(tr, i)
        uv, depth = camera.project(jw, i)
        items.append((float(depth[0]), "p", tr, jw, uv, depth))
    buv, bdepth = camera.project(ball[i:i + 1], i)
    items.append((float(bdepth[0]), "b", None, None, buv, bdepth))
    for depth, kind, tr, jw, uv, _ in sorted(items, key=lambda it: -it[0]):
        ppm = camera.focal[i] / depth
        if kind == "p":
            foot = np.r_[tr.pos[i], 0.0][None]
            fuv = camera.project(foot, i)[0][0]
            cv2.ellipse(img, (int(fuv[0] * 4), int(fuv[1] * 4)), (max(1, int(ppm * 0.45 * 4)), max(1, int(ppm * 0.15 * 4))),
                        0, 0, 360, tuple(int(c * 0.55) for c in grass), -1, aa, 2)
            cam_dir = camera.centre[:2] - tr.pos[i]
            lv = np.array([-math.sin(tr.heading[i]), math.cos(tr.heading[i])])
            _draw_player(img, uv, ppm, tr, bool(lv @ cam_dir > 0), cv2)
        else:
            sh = camera.project(np.array([[ball[i, 0], ball[i, 1], 0.0]]), i)[0][0]
            r = max(1, int(round(0.11 * ppm * 4)))
            cv2.circle(img, (int(sh[0] * 4), int(sh[1] * 4)), r, tuple(int(c * 0.5) for c in grass), -1, aa, 2)
            c = (int(uv[0, 0] * 4), int(uv[0, 1] * 4))
            if prev_ball_uv is not None and np.linalg.norm(uv[0] - prev_ball_uv) > 3:
                cv2.line(img, (int(prev_ball_uv[0] * 4), int(prev_ball_uv[1] * 4)), c, (205, 205, 205), max(1, r // 4), aa, 2)
            cv2.circle(img, c, r, (240, 240, 240), -1, aa, 2)
    return buv[0]


def _render_frames(cfg: SynthConfig, camera: Camera, players: list[Track], ball: np.ndarray, look: Look,
                   rng: np.random.Generator) -> Iterable[np.ndarray]:
    """Yield BGR uint8 frames."""
    import cv2

    if cfg.version >= 4:  # the broadcast look (soccerkd.data.broadcast)
        from soccerkd.data import broadcast

        yield from broadcast.render_frames(cfg, camera, players, ball, look, rng)  # type: ignore[arg-type]
        return

    W, H = cfg.width, cfg.height
    aa = cv2.LINE_AA
    ground = np.array([[-30, -15, 0], [PITCH_L + 30, -15, 0], [PITCH_L + 30, PITCH_W + 6, 0], [-30, PITCH_W + 6, 0.0]])
    board_x = np.linspace(-10, PITCH_L + 10, len(look.boards) + 1)
    stand_tiers = [np.array([[-40, PITCH_W + 8 + z * 0.8, z], [PITCH_L + 40, PITCH_W + 8 + z * 0.8, z]]) for z in (2, 5, 8, 11, 14)]
    noise_rng = np.random.default_rng(rng.integers(2**63))
    prev_ball_uv = None
    for i in range(len(camera.focal)):
        img = np.empty((H, W, 3), np.uint8)
        img[:] = look.stands
        proj = lambda pts: (camera.project(pts, i)[0] * 4).round().astype(np.int32)  # noqa: E731
        cv2.fillConvexPoly(img, proj(ground), tuple(float(c) for c in look.grass[1] * 0.9), aa, 2)
        for k, q in enumerate(_STRIPES):
            cv2.fillConvexPoly(img, proj(q), tuple(float(c) for c in look.grass[k % 2]), aa, 2)
        for line in _LINES:
            cv2.polylines(img, [proj(line)], False, look.line, 1, aa, 2)
        for tier in stand_tiers:
            cv2.polylines(img, [proj(tier)], False, tuple(min(255, c + 25) for c in look.stands), 1, aa, 2)
        for b, color in enumerate(look.boards):
            x0, x1 = board_x[b], board_x[b + 1]
            y = PITCH_W + 5
            quad = np.array([[x0, y, 0], [x1, y, 0], [x1, y, 0.9], [x0, y, 0.9]])
            cv2.fillConvexPoly(img, proj(quad), color, aa, 2)
        if look.shadow is not None:
            mask = np.zeros((H, W), np.uint8)
            cv2.fillConvexPoly(mask, proj(look.shadow), 1, aa, 2)
            img[mask.astype(bool)] = (img[mask.astype(bool)] * 0.7).astype(np.uint8)
        prev_ball_uv = _draw_players_and_ball(img, camera, i, players, ball, prev_ball_uv, look.grass[0], cv2)
        if look.scorebug is not None:
            right, bottom, c1, c2 = look.scorebug
            w, h = max(8, W // 5), max(4, H // 16)
            x0 = W - w - 3 if right else 3
            y0 = H - h - 3 if bottom else 3
            cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (25, 25, 25), -1)
            cv2.rectangle(img, (x0 + 1, y0 + 1), (x0 + w // 4, y0 + h - 1), c1, -1)
            cv2.rectangle(img, (x0 + w - w // 4, y0 + 1), (x0 + w - 1, y0 + h - 1), c2, -1)
        out = img.astype(np.float32) * look.gain[::-1]  # BGR gains
        if look.blur > 0.05:
            out = cv2.GaussianBlur(out, (0, 0), look.blur)
        if look.noise > 0.5:
            out += noise_rng.normal(0, look.noise, out.shape).astype(np.float32)
        frame = np.clip(out, 0, 255).astype(np.uint8)
        if look.jpeg is not None:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, look.jpeg])
            frame = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        yield frame


# --------------------------------------------------------------------------- scene assembly

def _distractors(rng: np.random.Generator, target_pos: np.ndarray, target_heading: np.ndarray, n_frames: int,
                 fps: float, count: int, occlude: bool) -> list[Track]:
    dt = 1.0 / fps
    teams = [_random_kit(rng), _random_kit(rng)]
    out = []
    for j in range(count):
        kind = str(rng.choice(["walk", "run", "run", "walk", "idle", "dribble"]))
        if kind == "dribble":
            kind = "run"
        g = _sample_gait(kind, rng)
        if j == 0 and rng.random() < 0.5:  # a team-mate moving along with the target
            start = target_pos[0] + rng.normal(0, 4, 2)
            heading = target_heading[0] + _u(rng, -0.4, 0.4)
        elif occlude and j == 1:  # crosses between the camera and the target
            start = target_pos[n_frames // 2] + np.array([_u(rng, -5, 5), -_u(rng, 1.5, 4)])
            heading = 0.0 if rng.random() < 0.5 else math.pi
            g = _sample_gait("run", rng)
            start = start - np.array([math.cos(heading), math.sin(heading)]) * g[_G["speed"]] * n_frames * dt / 2
        else:
            start = target_pos[0] + np.array([_u(rng, -22, 22), _u(rng, -12, 12)])
            heading = _u(rng, 0, 2 * np.pi)
        gait = np.repeat(g[None], n_frames, 0)
        headings = np.full(n_frames, heading) + _u(rng, -0.3, 0.3) * np.arange(n_frames) * dt
        pos, phase = _integrate(gait[:, _G["speed"]], headings, gait[:, _G["freq"]], start, _u(rng, 0, 6.3), dt)
        ang = _gait_angles(phase, gait)
        ang["phase"] = phase
        kit = dict(teams[j % 2]) if j < count - 1 or rng.random() < 0.5 else dict(
            shirt=(20, 20, 20), shorts=(20, 20, 20), socks=(20, 20, 20), skin=teams[0]["skin"],
            hair=(30, 30, 30), boots=(10, 10, 10))  # a referee in black
        kit["skin"] = _random_kit(rng)["skin"]
        out.append(Track(pos, headings, ang, kit, height=_u(rng, 0.92, 1.08)))
    return out


def _scene(segments: Sequence[Segment], cfg: SynthConfig, rng: np.random.Generator, *, clip_mode: bool
           ) -> tuple[Camera, list[Track], np.ndarray, Look]:
    n = sum(s.num_frames for s in segments)
    dt = 1.0 / cfg.fps
    if rng.random() < 0.7:  # mostly across the screen, as broadcast shots usually are
        heading0 = (0.0 if rng.random() < 0.5 else math.pi) + _u(rng, -0.8, 0.8)
    else:
        heading0 = _u(rng, 0, 2 * math.pi)
    start = np.array([_u(rng, 20, PITCH_L - 20), _u(rng, 12, PITCH_W - 12)])
    pos, heading, angles, kicks, _ = _simulate_target(segments, cfg.fps, rng, start, heading0, version=cfg.version)
    target = Track(pos, heading, angles, _random_kit(rng), height=_u(rng, 0.92, 1.08))
    if cfg.version >= 4:
        from soccerkd.data import broadcast

        look: Any = broadcast.sample_look(rng, cfg, n)
    else:
        look = _sample_look(rng, cfg)
    n_dis = int(rng.integers(3, 8))
    dis = _distractors(rng, pos, heading, n, cfg.fps, n_dis, occlude=rng.random() < 0.3)
    # keep the target's team colours shared with some distractors so colour does not mark it
    if rng.random() < 0.5:
        mates = [d for d in dis[:-1:2]]
        for d in mates:
            d.kit = dict(d.kit, shirt=target.kit["shirt"], shorts=target.kit["shorts"], socks=target.kit["socks"])
    label = segments[0].label
    v3_clip = clip_mode and cfg.version >= 3
    feint_at = leave_at = -1
    feint_t: float | None = None
    if v3_clip and label != "kick":  # when the dummy swing comes, and when the ball leaves (apart)
        if cfg.version >= 4:
            feint_t, leave_at = _feint_and_leave_v4(n, cfg.fps, rng)
            feint_at = min(n - 1, int(round(feint_t * cfg.fps)))
        else:
            feint_at, leave_at = _feint_and_leave_frames(n, cfg.fps, rng)
    if clip_mode and label in ("walk", "run"):
        if cfg.version >= 3:  # a ball at the feet, as every dribble and kick shows one
            mode = "near"
        else:
            mode = rng.choice(["loose", "distractor", "far"], p=[0.45, 0.3, 0.25])
        if mode == "near":
            ball = _near_ball(pos, heading, rng, dt)
        elif mode == "loose":
            ball = _loose_ball(pos, heading, rng, dt)
        elif mode == "distractor":
            d = dis[int(rng.integers(len(dis)))]
            ball = _dribble_ball(d.pos, d.heading, d.angles["phase"], rng, np.arange(n))
        else:
            p0 = np.r_[pos[0] + rng.normal(0, 12, 2), 0.11]
            ball = _free_ball(p0, np.r_[rng.normal(0, 2, 2), 0.0], n, dt)
    else:
        ball0 = None if clip_mode else np.r_[pos[0] + rng.normal(0, 15, 2), 0.11]
        ball = _target_ball(segments, pos, heading, angles["phase"], kicks, dt, rng, ball0, version=cfg.version)
    if leave_at >= 0 and cfg.version >= 4:
        _leave_v4(ball, leave_at, pos, heading, rng, dt)
    elif leave_at >= 0:
        _leave(ball, leave_at, heading, rng, dt)
    if feint_at >= 0 and rng.random() < FEINT_P_V3:
        _feint(target, ball, feint_at, rng, dt, feint_t)
    if cfg.version >= 4:
        camera = broadcast.make_camera(pos, cfg, rng)
        broadcast.recolour_kits(rng, [target] + dis)
    else:
        camera = _make_camera(pos, cfg, rng, player_frac=_u(rng, PLAYER_FRAC[0], PLAYER_FRAC[1]))
    return camera, [target] + dis, ball, look


def _feint_and_leave_frames(n: int, fps: float, rng: np.random.Generator) -> tuple[int, int]:
    """v3, non-kick clips: the feint's frame and the frame the ball leaves, both drawn as a kick's
    contact is (``LEAVE_T_V3`` of the clip) but at least ``LEAVE_GAP_S_V3`` apart (the first draw
    that is; clips too short for that take the last draw)."""
    gap = LEAVE_GAP_S_V3 * fps
    for _ in range(20):
        feint = min(n - 1, int(round(_u(rng, *LEAVE_T_V3) * n)))
        leave = min(n - 1, int(round(_u(rng, *LEAVE_T_V3) * n)))
        if abs(feint - leave) >= gap:
            break
    return feint, leave


def _feint_and_leave_v4(n: int, fps: float, rng: np.random.Generator) -> tuple[float, int]:
    """v4, non-kick clips: the feint's time (s) and the frame the ball leaves. The feint is timed
    exactly as a kick's contact (uniform in ``LEAVE_T_V3`` of the clip; v3's draw, which redrew both
    until they were apart, pushed feints late: a frame's place in the swing then told kick from the
    rest). The leave is drawn as a kick's, redrawn only while it falls at the feint or within
    ``NO_LEAVE_AFTER_FEINT_S_V4`` after it (that order, swing then ball, is a kick's); just before it
    is allowed (the swing misses a ball already rolling away)."""
    feint_t = _u(rng, *LEAVE_T_V3) * n / fps
    feint = min(n - 1, int(round(feint_t * fps)))
    lo, hi = (round(x * fps) for x in NO_LEAVE_AFTER_FEINT_S_V4)
    for _ in range(50):
        leave = min(n - 1, int(round(_u(rng, *LEAVE_T_V3) * n)))
        if not lo <= leave - feint <= hi:
            break
    return feint_t, leave


def _feint(target: Track, ball: np.ndarray, frame: int, rng: np.random.Generator, dt: float,
           t_swing: float | None = None) -> None:
    """v3: the kicking swing with no strike (a dummy), at ``frame`` (drawn as a kick's contact is)
    with the leg on the ball's side, so swing pose plus a ball at the feet is not a kick by itself;
    a kick also plants (brakes) and sends the ball away at the swing, which only a sequence shows."""
    n = len(target.pos)
    f = np.array([math.cos(target.heading[frame]), math.sin(target.heading[frame])])
    rel = ball[frame, :2] - target.pos[frame]
    side = 0 if rel[0] * -f[1] + rel[1] * f[0] > 0 else 1
    _apply_kick(target.angles, np.arange(n) * dt, frame * dt if t_swing is None else t_swing, side, rng, 3)


def _clip_segments(label: str, cfg: SynthConfig, rng: np.random.Generator) -> list[Segment]:
    kick_at = _u(rng, 0.4, 0.62) if label == "kick" else 0.5
    return [Segment(label, cfg.num_frames, kick_at=kick_at)]


def simulate_clip(label: str, cfg: SynthConfig, rng: np.random.Generator
                  ) -> tuple[Camera, list[Track], np.ndarray, Look]:
    """The scene of one clip of ``label`` before drawing: camera, players (target first), ball, look."""
    if label not in SOCCERDB1_CLASSES:
        raise ConfigError(f"unknown synth label {label!r}; choose from {SOCCERDB1_CLASSES}")
    return _scene(_clip_segments(label, cfg, rng), cfg, rng, clip_mode=True)


def render_clip(label: str, cfg: SynthConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """All frames (BGR uint8) of one clip of ``label``."""
    camera, players, ball, look = simulate_clip(label, cfg, rng)
    return list(_render_frames(cfg, camera, players, ball, look, rng))


# What one frame shows of the target and the ball (for the single-frame probe, see frame_features).
FRAME_FEATURES = ("hip_l", "hip_r", "knee_l", "knee_r", "arm_l", "arm_r", "elbow_l", "elbow_r", "abd",
                  "lean", "pelvis", "ball_ahead", "ball_side", "ball_height", "ball_near")


def frame_features(target: Track, ball: np.ndarray) -> np.ndarray:
    """T×len(FRAME_FEATURES): the target's pose and the ball relative to it, frame by frame.

    Everything here is visible in one frame (joint angles, where the ball is relative to the body
    and whether it is within 3 m); nothing needs a second frame. Speed and cadence do, so they are
    absent: :func:`clip_motion` gives what a clip adds.
    """
    a = target.angles
    f = np.stack([np.cos(target.heading), np.sin(target.heading)], 1)
    rel = ball[:, :2] - target.pos
    ahead = (rel * f).sum(1)
    side = rel[:, 0] * -f[:, 1] + rel[:, 1] * f[:, 0]
    near = np.hypot(ahead, side) < 3.0
    cols = [a["hip"][:, 0], a["hip"][:, 1], a["knee"][:, 0], a["knee"][:, 1], a["arm"][:, 0], a["arm"][:, 1],
            a["elbow"][:, 0], a["elbow"][:, 1], a["abd"].mean(1), a["lean"], a["pelvis"],
            np.where(near, ahead, 0.0), np.where(near, side, 0.0), np.where(near, ball[:, 2], 0.0),
            near.astype(float)]
    return np.stack(cols, 1).astype(np.float32)


def clip_motion(target: Track, fps: float) -> np.ndarray:
    """T×2: the target's ground displacement from the clip's first frame, in metres along and across
    its first heading (what background motion shows a clip model, since the camera follows)."""
    rel = target.pos - target.pos[0]
    f0 = np.array([math.cos(target.heading[0]), math.sin(target.heading[0])])
    return np.stack([rel @ f0, rel @ np.array([-f0[1], f0[0]])], 1).astype(np.float32)


def _write_video(path: Path, frames: Iterable[np.ndarray], fps: float, size: tuple[int, int]) -> int:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise DataError(f"cannot open an mp4v video writer for {str(path)!r}")
    n = 0
    try:
        for frame in frames:
            writer.write(frame)
            n += 1
    finally:
        writer.release()
    return n


def clip_rng(seed: int, class_index: int, clip_index: int, cfg: SynthConfig | None = None) -> np.random.Generator:
    """The one generator a clip draws from: independent of every other clip and of run order.

    From v3 on, the frame size, clip length, frame rate and version are mixed into the seed, so
    datasets of different sizes or lengths do not share scenes (v2 drew the same scene for clip k
    of a class at every size, which put training clips of one set into the test split of another).
    v2 keeps its old stream so that v2 datasets are reproduced byte for byte.
    """
    key = [int(seed), int(class_index), int(clip_index)]
    if cfg is not None and cfg.version >= 3:
        key += [cfg.version, cfg.width, cfg.height, cfg.num_frames, int(round(cfg.fps * 1000))]
    return np.random.default_rng(key)


def _make_one(job: tuple[Path, str, int, int, int, SynthConfig]) -> str:
    path, label, ci, idx, seed, cfg = job
    frames = render_clip(label, cfg, clip_rng(seed, ci, idx, cfg))
    _write_video(path, frames, cfg.fps, (cfg.width, cfg.height))
    return str(path)


def generate_dataset(out: str | Path, *, clips_per_class: int, seed: int = 0, cfg: SynthConfig = SynthConfig(),
                     classes: Sequence[str] = SOCCERDB1_CLASSES, split_seed: int | None = None,
                     fractions: Sequence[float] = (0.7, 0.15, 0.15), workers: int = 1,
                     progress: bool = True) -> dict[str, Any]:
    """Write ``out/<class>/<class>_<NNNN>.mp4`` for every class plus ``out/manifest.json``.

    Returns a summary (counts, seconds, clips/s, manifest path).
    """
    from tqdm import tqdm

    from soccerkd.data.splits import MANIFEST_NAME, make_split, write_manifest

    if clips_per_class < 1:
        raise ConfigError(f"clips_per_class must be >= 1, got {clips_per_class!r}")
    out = Path(out)
    jobs = []
    for ci, label in enumerate(classes):
        if label not in SOCCERDB1_CLASSES:
            raise ConfigError(f"unknown synth class {label!r}; choose from {SOCCERDB1_CLASSES}")
        (out / label).mkdir(parents=True, exist_ok=True)
        ci_global = SOCCERDB1_CLASSES.index(label)
        for k in range(clips_per_class):
            jobs.append((out / label / f"{label}_{k:04d}.mp4", label, ci_global, k, seed, cfg))
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="synth", unit="clip", disable=not progress)
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_make_one, jobs):
                bar.update()
    else:
        for job in jobs:
            _make_one(job)
            bar.update()
    bar.close()
    elapsed = time.perf_counter() - t0
    videos = [(p.relative_to(out).as_posix(), label) for p, label, *_ in jobs]
    meta = {"synth": {"seed": seed, "clips_per_class": clips_per_class, "width": cfg.width, "height": cfg.height,
                      "num_frames": cfg.num_frames, "fps": cfg.fps, "classes": list(classes),
                      "version": cfg.version}}
    manifest = make_split(videos, classes, seed=seed if split_seed is None else split_seed,
                          fractions=fractions, extra=meta)
    path = write_manifest(manifest, out / MANIFEST_NAME)
    return {"clips": len(jobs), "seconds": elapsed, "clips_per_s": len(jobs) / max(elapsed, 1e-9),
            "manifest": str(path), "counts": manifest.counts()}


def render_match(path: str | Path, timeline: Sequence[tuple[str, int]], *, size: tuple[int, int] = (320, 240),
                 fps: float = 25.0, seed: int = 0, gt_path: str | Path | None = None,
                 version: int = MATCH_DEFAULT_VERSION) -> dict[str, Any]:
    """Render one broadcast-style video in which the camera-followed player acts out ``timeline``.

    ``timeline`` is a list of ``(label, num_frames)`` segments; transitions between them are
    smooth (gait blends over ~0.35 s, the ball is passed in for dribble/kick segments). Writes
    the mp4 to ``path`` and the ground truth to ``gt_path`` (default: ``path`` with ``.json``)::

        {"fps": 25.0, "width": 320, "height": 240, "num_frames": 250, "seed": 0, "version": 3,
         "segments": [{"label": "walk", "start_frame": 0, "end_frame": 50}, ...]}   # end exclusive

    ``version`` is the generator version (``VERSIONS``) of the scene: render the version the
    model that watches the match was trained on (the demo reads it from the checkpoint's
    ``synth`` record). The default stays 2, so a call without it renders the same bytes as
    before versions were selectable; the same seed, size and version give the same video.
    Returns that ground-truth dict.
    """
    if not timeline:
        raise ConfigError("render_match needs a non-empty timeline of (label, num_frames)")
    segments = []
    for item in timeline:
        label, n = item
        if label not in SOCCERDB1_CLASSES:
            raise ConfigError(f"unknown timeline label {label!r}; choose from {SOCCERDB1_CLASSES}")
        if int(n) < 2:
            raise ConfigError(f"timeline segment {label!r} needs >= 2 frames, got {n!r}")
        segments.append(Segment(label, int(n), kick_at=0.55))
    cfg = SynthConfig(width=size[0], height=size[1], num_frames=sum(s.num_frames for s in segments), fps=fps,
                      version=version)
    rng = np.random.default_rng([int(seed), 9999])
    camera, players, ball, look = _scene(segments, cfg, rng, clip_mode=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = _write_video(path, _render_frames(cfg, camera, players, ball, look, rng), fps, size)
    gt, start = [], 0
    for s in segments:
        gt.append({"label": s.label, "start_frame": start, "end_frame": start + s.num_frames})
        start += s.num_frames
    truth = {"fps": fps, "width": size[0], "height": size[1], "num_frames": n, "seed": seed, "version": version,
             "segments": gt}
    gt_path = Path(gt_path) if gt_path is not None else path.with_suffix(".json")
    gt_path.write_text(json.dumps(truth, indent=1) + "\n")
    return truth


# --------------------------------------------------------------------------- clips cut from matches

# Random match timelines for :func:`generate_match_clips`: segment lengths in frames (at 25 fps) and
# how often each label comes next (kicks are short, so they come more often to balance the classes).
MATCH_SEGMENT_FRAMES = {"walk": (60, 130), "run": (60, 130), "dribble": (70, 130), "kick": (36, 48)}
MATCH_NEXT_P = {"walk": 0.22, "run": 0.22, "dribble": 0.22, "kick": 0.34}
MATCH_KICK_AT = 0.55   # as render_match


def random_timeline(rng: np.random.Generator, num_segments: int) -> list[tuple[str, int]]:
    """A match timeline of ``num_segments`` segments: labels drawn by ``MATCH_NEXT_P`` with no label
    twice in a row, lengths uniform in ``MATCH_SEGMENT_FRAMES``."""
    out: list[tuple[str, int]] = []
    labels = list(MATCH_NEXT_P)
    for _ in range(num_segments):
        choices = [lab for lab in labels if not out or lab != out[-1][0]]
        p = np.array([MATCH_NEXT_P[lab] for lab in choices])
        label = choices[int(rng.choice(len(choices), p=p / p.sum()))]
        lo, hi = MATCH_SEGMENT_FRAMES[label]
        out.append((label, int(rng.integers(lo, hi + 1))))
    return out


def _match_clip_job(job: tuple[Path, int, int, SynthConfig, int, dict[str, int]]) -> list[tuple[str, str]]:
    out, seed, index, cfg, num_segments, strides = job
    rng = np.random.default_rng([int(seed), 7777, int(index)])   # never render_match's [seed, 9999] stream
    timeline = random_timeline(rng, num_segments)
    segments = [Segment(label, n, kick_at=MATCH_KICK_AT) for label, n in timeline]
    mcfg = SynthConfig(width=cfg.width, height=cfg.height, num_frames=sum(n for _, n in timeline), fps=cfg.fps,
                       version=cfg.version)
    camera, players, ball, look = _scene(segments, mcfg, rng, clip_mode=False)
    frames = list(_render_frames(mcfg, camera, players, ball, look, rng))
    written, start = [], 0
    for label, n in timeline:
        for k, s in enumerate(range(start, start + n - cfg.num_frames + 1, strides[label])):
            rel = f"{label}/m{index:04d}_{k:02d}_{s:04d}.mp4"
            _write_video(out / rel, frames[s:s + cfg.num_frames], cfg.fps, (cfg.width, cfg.height))
            written.append((rel, label))
        start += n
    return written


def generate_match_clips(out: str | Path, *, matches: int, seed: int = 0, cfg: SynthConfig = SynthConfig(),
                         num_segments: int = 10, strides: dict[str, int] | None = None,
                         fractions: Sequence[float] = (0.7, 0.15, 0.15), workers: int = 1,
                         progress: bool = True) -> dict[str, Any]:
    """Labelled clips cut from ``matches`` procedural matches (``render_match``'s scene, generator
    ``cfg.version``, random timelines of ``num_segments`` segments), for a model that watches such
    matches: the windows the service classifies come from continuous footage (gait blends, the
    ball passed in, a kicked ball rolling on into the next segment), which single clips never show.

    Every ``cfg.num_frames``-frame clip lies inside one segment and takes its label; clip starts
    step by ``strides[label]`` frames (default 16, and 4 for the short kicks). The split is **by
    match** (``fractions`` of the matches; a match's clips overlap, so they never straddle splits),
    written to ``out/manifest.json`` with a ``synth`` record (``source: "match"``).
    """
    from tqdm import tqdm

    from soccerkd.data.splits import MANIFEST_NAME, SPLITS, SplitManifest, _check_fractions, _cut, write_manifest

    if matches < 3:
        raise ConfigError(f"generate_match_clips needs >= 3 matches (train, val, test), got {matches!r}")
    fr = _check_fractions(fractions)
    strides = dict(strides or {"walk": 16, "run": 16, "dribble": 16, "kick": 4})
    out = Path(out)
    for label in SOCCERDB1_CLASSES:
        (out / label).mkdir(parents=True, exist_ok=True)
    jobs = [(out, seed, m, cfg, num_segments, strides) for m in range(matches)]
    t0 = time.perf_counter()
    per_match: list[list[tuple[str, str]]] = [[] for _ in range(matches)]
    bar = tqdm(total=matches, desc="match clips", unit="match", disable=not progress)
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for m, clips in enumerate(pool.imap(_match_clip_job, jobs)):
                per_match[m] = clips
                bar.update()
    else:
        for m, job in enumerate(jobs):
            per_match[m] = _match_clip_job(job)
            bar.update()
    bar.close()
    elapsed = time.perf_counter() - t0
    n_train, n_val, _ = _cut(matches, fr)
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, matches)}
    splits = {s: tuple(sorted(c for m in range(*bounds[s]) for c in per_match[m])) for s in SPLITS}
    meta = {"synth": {"source": "match", "seed": seed, "matches": matches, "num_segments": num_segments,
                      "strides": strides, "width": cfg.width, "height": cfg.height, "num_frames": cfg.num_frames,
                      "fps": cfg.fps, "classes": list(SOCCERDB1_CLASSES), "version": cfg.version,
                      "matches_per_split": {s: bounds[s][1] - bounds[s][0] for s in SPLITS}}}
    manifest = SplitManifest(class_names=tuple(SOCCERDB1_CLASSES), splits=splits, seed=seed, fractions=fr, extra=meta)
    path = write_manifest(manifest, out / MANIFEST_NAME)
    clips = sum(len(c) for c in per_match)
    return {"clips": clips, "matches": matches, "seconds": elapsed, "clips_per_s": clips / max(elapsed, 1e-9),
            "manifest": str(path), "counts": manifest.counts()}
