"""Generator v4's look: domain randomisation toward real broadcast footage.

v2 and v3 draw flat colours (a striped pitch, coloured board quads, a plain stand). v4 keeps their
scene (the target's motion, the ball, distractors; :mod:`soccerkd.data.synth`) and changes what a
frame looks like, per clip:

* **grass**: a world-space texture warped onto the ground plane every frame (so it moves with the
  camera): mowing stripes along or across the pitch or in a check, 8-24 of them, patches and blade
  noise, a different surround outside the lines;
* **crowd and boards**: a stand texture of spectators in tiers (team-coloured or mixed, empty seats)
  and advertising boards with lettering, each a plane in the world;
* **camera**: player scale from wide shots to close-ups (``PLAYER_FRAC_V4``, log-uniform), a zoom
  that drifts over the clip, the operator's pan/tilt wobble, motion blur;
* **kits**: two teams from a palette of real kit colours (or random), a referee;
* **lighting and shadows**: gain, white balance, gamma, vignette, exposure that drifts, a soft stand
  shadow across the pitch, players' sun shadows in one direction;
* **on-screen graphics**: a score bug (team codes, score, a running clock) and a channel logo;
* **compression**: a resolution loss (rendered small, scaled up) and a JPEG re-encode at a random
  quality (10-80), in every clip.

Nothing here depends on the class: the motion blur's length and direction are drawn per clip, not
taken from the camera's pan, because the pan follows the target and its speed is a class cue that a
single frame should not show (only motion over frames separates the classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from soccerkd.data import synth as S

# Target height as a fraction of the frame height, drawn log-uniform: wide shots to close-ups.
PLAYER_FRAC_V4 = (0.15, 0.65)
JPEG_QUALITY_V4 = (10, 80)
# Kit colours (BGR) of real teams' shirts and shorts: the palette a v4 kit draws from most of the time.
KIT_PALETTE = [(40, 40, 200), (230, 230, 230), (30, 30, 30), (180, 90, 20), (120, 60, 10), (30, 200, 240),
               (20, 120, 20), (90, 30, 130), (0, 110, 250), (200, 160, 60), (60, 20, 120), (150, 150, 150),
               (40, 180, 255), (110, 30, 30)]
_GROUND = (-30.0, -15.0, 135.0, 76.0)   # world x0, y0, x1, y1 of the ground texture
_GROUND_PPM = 6.0
_CROWD_X, _CROWD_H, _CROWD_PPM = (-45.0, 150.0), 16.0, 4.0
_BOARD_X, _BOARD_H, _BOARD_PPM = (-12.0, 117.0), 0.9, 16.0
_BONES = [(0, 1), (1, 2), (0, 3), (3, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10), (1, 11), (11, 12),
          (12, 13), (1, 14), (14, 15), (15, 16)]
_LETTERS = "ABCDEFGHIJKLMNOPRSTUVWXYZ"


@dataclass
class BroadcastLook:
    """Per-clip appearance of a v4 clip. The world-space textures (grass, crowd, boards) are built
    from ``texture_seed`` when first drawn, so simulating a scene (the probe) does not pay for them."""

    texture_seed: int
    sky: tuple[int, int, int]
    line: tuple[int, int, int]
    gain: np.ndarray
    gamma: float
    vignette: float
    exposure: np.ndarray
    stand_shadow: np.ndarray | None
    shadow_depth: float
    sun: np.ndarray | None
    blur: float
    motion: tuple[float, float, float]
    noise: float
    downscale: float
    jpeg: int
    bug: dict[str, Any] | None
    logo: tuple[str, int] | None
    _textures: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def textures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ground, crowd, boards) BGR uint8 textures, the same every call."""
        if self._textures is None:
            import cv2

            rng = np.random.default_rng(self.texture_seed)
            self._textures = (_ground_texture(rng, cv2), _crowd_texture(rng, cv2), _board_texture(rng, cv2))
        return self._textures


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _colour(rng: np.random.Generator, p_palette: float = 0.75) -> np.ndarray:
    if rng.random() < p_palette:
        return np.array(KIT_PALETTE[int(rng.integers(len(KIT_PALETTE)))], float)
    return rng.integers(0, 256, 3).astype(float)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int], cv2: Any) -> np.ndarray:
    small = rng.normal(0, 1, (cells[1], cells[0])).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _ground_texture(rng: np.random.Generator, cv2: Any) -> np.ndarray:
    """Grass with mowing stripes (along, across or checked), patches and blade noise."""
    x0, y0, x1, y1 = _GROUND
    w, h = int((x1 - x0) * _GROUND_PPM), int((y1 - y0) * _GROUND_PPM)
    xs = x0 + (np.arange(w) + 0.5) / _GROUND_PPM
    ys = y0 + (np.arange(h) + 0.5) / _GROUND_PPM
    gx, gy = np.meshgrid(xs, ys)
    base = np.array([_u(rng, 35, 85), _u(rng, 100, 170), _u(rng, 35, 80)])
    delta = _u(rng, 0.04, 0.2)
    kind = int(rng.integers(3))
    n_stripes = int(rng.integers(8, 25))
    sx = np.floor(gx / (S.PITCH_L / n_stripes)).astype(int)
    sy = np.floor(gy / (S.PITCH_W / max(4, round(n_stripes * S.PITCH_W / S.PITCH_L)))).astype(int)
    band = (sx if kind == 0 else sy if kind == 1 else sx + sy) % 2
    sign = np.where(band == 0, 1.0, -1.0)
    on_pitch = (gx >= -2) & (gx <= S.PITCH_L + 2) & (gy >= -2) & (gy <= S.PITCH_W + 2)
    shade = 1 + delta * np.where(on_pitch, sign, -0.8)
    shade = shade + _u(rng, 0.02, 0.1) * _smooth_noise(rng, gx.shape, (28, 16), cv2)
    blades = rng.normal(0, _u(rng, 0.02, 0.08), gx.shape).astype(np.float32)
    shade = shade + cv2.GaussianBlur(blades, (0, 0), 0.7)
    tex = base[None, None, :] * shade[..., None]
    if rng.random() < 0.5:  # worn goalmouths: browner
        for gxm in (0.0, S.PITCH_L):
            d = np.hypot((gx - gxm) / 6.0, (gy - S.PITCH_W / 2) / 4.0)
            wear = np.clip(1 - d, 0, 1)[..., None] * _u(rng, 0.2, 0.6)
            tex = tex * (1 - wear) + wear * np.array([60, 95, 110])
    return np.clip(tex, 0, 255).astype(np.uint8)


def _crowd_texture(rng: np.random.Generator, cv2: Any) -> np.ndarray:
    """Spectators in tiers: blobs of team colours and clothing, some empty seats, tier rails."""
    w = int((_CROWD_X[1] - _CROWD_X[0]) * _CROWD_PPM)
    h = int(_CROWD_H * _CROWD_PPM)
    cw, ch = w // 2, h // 2
    people = rng.integers(20, 230, (ch, cw, 3)).astype(np.float32)
    team = _colour(rng)
    fans = rng.random((ch, cw)) < _u(rng, 0.0, 0.6)
    people[fans] = team
    seat = _colour(rng, 0.3) * 0.8
    empty = rng.random((ch, cw)) < (_smooth_noise(rng, (ch, cw), (6, 2), cv2) * 0.3 + _u(rng, -0.2, 0.5))
    people[empty] = seat
    tex = cv2.resize(people, (w, h), interpolation=cv2.INTER_NEAREST) * _u(rng, 0.45, 0.9)
    rail = np.array([_u(rng, 20, 80)] * 3)
    for v in range(0, h, max(2, int(0.8 * _CROWD_PPM))):
        tex[v] = rail
    return np.clip(tex, 0, 255).astype(np.uint8)


def _board_texture(rng: np.random.Generator, cv2: Any) -> np.ndarray:
    """Advertising boards: panels of brand colours with lettering."""
    w = int((_BOARD_X[1] - _BOARD_X[0]) * _BOARD_PPM)
    h = int(_BOARD_H * _BOARD_PPM)
    tex = np.zeros((h, w, 3), np.uint8)
    x = 0
    while x < w:
        pw = int(_u(rng, 5, 14) * _BOARD_PPM)
        bg = _colour(rng, 0.4)
        fg = (255 - bg) if rng.random() < 0.5 else np.array([255.0, 255, 255]) * (bg.mean() < 128)
        tex[:, x:x + pw] = bg.astype(np.uint8)
        word = "".join(_LETTERS[int(i)] for i in rng.integers(len(_LETTERS), size=int(rng.integers(3, 9))))
        scale = h / 30.0
        (tw, _), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_DUPLEX, scale, 1)
        for k in range(max(1, pw // max(tw + 20, 1))):
            cv2.putText(tex, word, (x + 8 + k * (tw + 20), int(h * 0.78)), cv2.FONT_HERSHEY_DUPLEX, scale,
                        tuple(int(c) for c in fg), 1, cv2.LINE_AA)
        x += pw
    return tex


def sample_look(rng: np.random.Generator, cfg: Any, n_frames: int) -> BroadcastLook:
    """Everything a v4 clip's frames look like, drawn from ``rng`` (see the module docstring)."""
    t = np.arange(n_frames) / cfg.fps
    exposure = 1 + _u(rng, 0, 0.06) * np.sin(_u(rng, 0.3, 1.5) * t + _u(rng, 0, 6.3))
    shadow = None
    if rng.random() < 0.45:
        x = _u(rng, -10, S.PITCH_L + 10)
        y = _u(rng, 10, S.PITCH_W + 10)
        shadow = np.array([[x, -40, 0], [x + _u(rng, -40, 40), y, 0], [S.PITCH_L + 80, y, 0], [S.PITCH_L + 80, -40, 0]])
        if rng.random() < 0.5:  # the shadow on the other side
            shadow[:, 0] = S.PITCH_L - shadow[:, 0]
    sun = None
    if rng.random() < 0.7:
        ang, length = _u(rng, 0, 2 * math.pi), _u(rng, 0.3, 1.6)
        sun = np.array([math.cos(ang) * length, math.sin(ang) * length])
    bug = None
    if rng.random() < 0.75:
        teams = ["".join(_LETTERS[int(i)] for i in rng.integers(len(_LETTERS), size=3)) for _ in range(2)]
        bug = dict(right=bool(rng.random() < 0.3), bottom=bool(rng.random() < 0.15), teams=teams,
                   score=(int(rng.integers(0, 4)), int(rng.integers(0, 4))), clock=_u(rng, 0, 95 * 60),
                   bg=tuple(int(c) for c in _colour(rng, 0.5) * 0.5), scale=_u(rng, 0.8, 1.2))
    logo = None
    if rng.random() < 0.5:
        logo = ("".join(_LETTERS[int(i)] for i in rng.integers(len(_LETTERS), size=int(rng.integers(2, 5)))),
                int(rng.integers(4)))
    motion = (_u(rng, 0, 5.0) if rng.random() < 0.6 else 0.0, _u(rng, -0.4, 0.4), _u(rng, 0.5, 3.0))
    return BroadcastLook(
        texture_seed=int(rng.integers(2**63)), sky=tuple(int(c) for c in rng.integers(20, 120, 3)),  # type: ignore[arg-type]
        line=tuple(int(c) for c in rng.integers(200, 256, 3)),  # type: ignore[arg-type]
        gain=np.array([_u(rng, 0.85, 1.15), _u(rng, 0.9, 1.1), _u(rng, 0.85, 1.15)]) * _u(rng, 0.7, 1.25),
        gamma=_u(rng, 0.75, 1.3), vignette=_u(rng, 0.0, 0.4), exposure=exposure, stand_shadow=shadow,
        shadow_depth=_u(rng, 0.25, 0.55), sun=sun, blur=_u(rng, 0.0, 0.9), motion=motion,
        noise=_u(rng, 0.0, 6.0), downscale=_u(rng, 0.45, 1.0) if rng.random() < 0.5 else 1.0,
        jpeg=int(rng.integers(*JPEG_QUALITY_V4)), bug=bug, logo=logo)


def make_camera(follow: np.ndarray, cfg: Any, rng: np.random.Generator) -> S.Camera:
    """v3's following camera at a v4 scale (wide to close), plus a zoom drift and the operator's wobble."""
    frac = math.exp(_u(rng, math.log(PLAYER_FRAC_V4[0]), math.log(PLAYER_FRAC_V4[1])))
    cam = S._make_camera(follow, cfg, rng, player_frac=frac)
    n = len(follow)
    t = np.arange(n) / cfg.fps
    ramp = S._smoothstep(t / max(t[-1], 1e-6))
    cam.focal = cam.focal * np.exp(_u(rng, -0.35, 0.35) * ramp + 0.03 * np.sin(_u(rng, 0.5, 2) * t + _u(rng, 0, 6.3)))
    amp = _u(rng, 0.0, 0.05) * cfg.width / cam.focal   # radians: up to 5% of the frame width
    yaw = amp * np.sin(2 * math.pi * _u(rng, 0.2, 1.2) * t + _u(rng, 0, 6.3))
    pitch = 0.5 * amp * np.sin(2 * math.pi * _u(rng, 0.2, 1.2) * t + _u(rng, 0, 6.3))
    for i in range(n):
        cy, sy, cp, sp = math.cos(yaw[i]), math.sin(yaw[i]), math.cos(pitch[i]), math.sin(pitch[i])
        ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
        rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        cam.rot[i] = rx @ ry @ cam.rot[i]
    return cam


def recolour_kits(rng: np.random.Generator, players: list[S.Track]) -> None:
    """Two teams (target's first) from the kit palette, a referee sometimes; each player's own skin."""
    def kit() -> dict[str, tuple[int, int, int]]:
        shirt, shorts = _colour(rng), _colour(rng)
        socks = shirt if rng.random() < 0.5 else _colour(rng)
        base = S._random_kit(rng)
        as_t = lambda a: tuple(int(v) for v in a)  # noqa: E731
        return dict(base, shirt=as_t(shirt), shorts=as_t(shorts), socks=as_t(socks))

    teams = [kit(), kit()]
    referee = rng.random() < 0.4
    for j, tr in enumerate(players):
        if referee and j == len(players) - 1 and j > 0:
            colour = tuple(int(c) for c in _colour(rng, 0.2) * 0.3)
            tr.kit = dict(tr.kit, shirt=colour, shorts=(20, 20, 20), socks=colour)
        else:
            team = teams[0] if j == 0 or (j % 2 == 1 and rng.random() < 0.6) else teams[1]
            tr.kit = dict(team, skin=S._random_kit(rng)["skin"], hair=S._random_kit(rng)["hair"])


def _plane_homography(cam: S.Camera, i: int, origin: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Texture pixel (u, v) -> image pixel, for the world plane ``origin + u*a + v*b``."""
    K = np.array([[cam.focal[i], 0, cam.width / 2], [0, cam.focal[i], cam.height / 2], [0, 0, 1.0]])
    return K @ cam.rot[i] @ np.stack([a, b, origin - cam.centre], 1)


def _paint_plane(img: np.ndarray, tex: np.ndarray, hom: np.ndarray, grid: np.ndarray, cv2: Any) -> None:
    """Draw the textured plane where it is in front of the camera and inside the texture."""
    m = np.linalg.inv(hom)
    s = grid @ m.T
    front = s[..., 2] > 1e-9
    w = np.where(front, s[..., 2], 1.0)
    mx, my = (s[..., 0] / w).astype(np.float32), (s[..., 1] / w).astype(np.float32)
    inside = front & (mx >= 0) & (my >= 0) & (mx <= tex.shape[1] - 1) & (my <= tex.shape[0] - 1)
    if inside.any():
        warped = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        img[inside] = warped[inside]


def _draw_graphics(img: np.ndarray, look: BroadcastLook, i: int, fps: float, cv2: Any) -> None:
    H, W = img.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    if look.bug is not None:
        b = look.bug
        scale = H / 420.0 * b["scale"]
        clock = int(b["clock"] + i / fps)
        text = f"{b['teams'][0]} {b['score'][0]}-{b['score'][1]} {b['teams'][1]}  {clock // 60:02d}:{clock % 60:02d}"
        (tw, th), base = cv2.getTextSize(text, font, scale, 1)
        pad = max(1, int(th * 0.4))
        x0 = W - tw - 2 * pad - 4 if b["right"] else 4
        y0 = H - th - base - 2 * pad - 4 if b["bottom"] else 4
        cv2.rectangle(img, (x0, y0), (x0 + tw + 2 * pad, y0 + th + base + 2 * pad), b["bg"], -1)
        cv2.putText(img, text, (x0 + pad, y0 + pad + th), font, scale, (245, 245, 245), 1, cv2.LINE_AA)
    if look.logo is not None:
        text, corner = look.logo
        scale = H / 340.0
        (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
        x = W - tw - 4 if corner % 2 else 4
        y = H - 4 if corner >= 2 else th + 4
        if look.bug is not None and (corner % 2) == int(look.bug["right"]) and (corner >= 2) == look.bug["bottom"]:
            y = H - 4 if y < H / 2 else th + 4
        overlay = img.copy()
        cv2.putText(overlay, text, (x, y), font, scale, (235, 235, 235), max(1, int(scale * 2)), cv2.LINE_AA)
        cv2.addWeighted(overlay, 0.6, img, 0.4, 0, dst=img)


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    n = max(1, int(math.ceil(length)) | 1)
    k = np.zeros((n, n), np.float32)
    c = n // 2
    for s in np.linspace(-length / 2, length / 2, 4 * n):
        k[int(round(c + s * math.sin(angle))), int(round(c + s * math.cos(angle)))] = 1
    return k / k.sum()


def _shadows(img: np.ndarray, cam: S.Camera, i: int, players: list[S.Track], ball: np.ndarray,
             look: BroadcastLook, cv2: Any) -> None:
    """The stand's soft shadow on the pitch and every player's (and the ball's) sun shadow."""
    H, W = img.shape[:2]
    mask = np.zeros((H, W), np.float32)
    proj = lambda pts: (cam.project(pts, i)[0] * 4).round().astype(np.int32)  # noqa: E731
    if look.stand_shadow is not None:
        cv2.fillConvexPoly(mask, proj(look.stand_shadow), 1.0, cv2.LINE_AA, 2)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, W / 160))
    if look.sun is not None:
        sun_mask = np.zeros((H, W), np.float32)
        for tr in players:
            jw = S._joints(tr, i)
            flat = np.concatenate([jw[:, :2] - jw[:, 2:3] * look.sun[None], np.zeros((len(jw), 1))], 1)
            uv = proj(flat)
            ppm = cam.focal[i] / max(float(cam.project(jw[:1], i)[1][0]), 0.3)
            th = max(1, int(round(0.14 * ppm * tr.height)))
            for a, b in _BONES:
                cv2.line(sun_mask, tuple(uv[a]), tuple(uv[b]), 1.0, th, cv2.LINE_AA, 2)
        bp = ball[i:i + 1].copy()
        bp[:, :2] -= bp[:, 2:3] * look.sun[None]
        bp[:, 2] = 0
        r = max(1, int(round(0.11 * cam.focal[i] / max(float(cam.project(ball[i:i + 1], i)[1][0]), 0.3) * 4)))
        cv2.circle(sun_mask, tuple(proj(bp)[0]), r, 1.0, -1, cv2.LINE_AA, 2)
        mask = np.maximum(mask, sun_mask * 0.9)
    if mask.any():
        img[:] = (img * (1 - look.shadow_depth * np.clip(mask, 0, 1))[..., None]).astype(np.uint8)


def render_frames(cfg: Any, cam: S.Camera, players: list[S.Track], ball: np.ndarray, look: BroadcastLook,
                  rng: np.random.Generator) -> Iterable[np.ndarray]:
    """Yield the BGR uint8 frames of a v4 clip or match."""
    import cv2

    W, H = cfg.width, cfg.height
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    grid = np.stack([xs, ys, np.ones_like(xs)], -1)
    gx0, gy0 = _GROUND[0], _GROUND[1]
    e1, e2, e3 = np.eye(3)
    rise = np.array([0.0, -0.9, 1.0])   # the stand rises away from the pitch (v = 0 is its top row)
    crowd_top = np.array([_CROWD_X[0], S.PITCH_W + 7 + 0.9 * _CROWD_H, _CROWD_H])
    yy, xx = (ys - H / 2) / (H / 2), (xs - W / 2) / (W / 2)
    vignette = (1 - look.vignette * (xx ** 2 + yy ** 2) / 2).astype(np.float32)[..., None]
    noise_rng = np.random.default_rng(rng.integers(2**63))
    ground, crowd, boards = look.textures()
    grass = tuple(float(c) for c in ground[ground.shape[0] // 2, 10])
    prev_ball_uv = None
    for i in range(len(cam.focal)):
        img = np.empty((H, W, 3), np.uint8)
        img[:] = look.sky
        # far to near: the stand, the ground, the lines, the boards
        crowd_h = _plane_homography(cam, i, crowd_top, e1 / _CROWD_PPM, rise / _CROWD_PPM)
        _paint_plane(img, crowd, crowd_h, grid, cv2)
        ground_h = _plane_homography(cam, i, np.array([gx0, gy0, 0.0]), e1 / _GROUND_PPM, e2 / _GROUND_PPM)
        _paint_plane(img, ground, ground_h, grid, cv2)
        proj = lambda pts: (cam.project(pts, i)[0] * 4).round().astype(np.int32)  # noqa: E731
        for line in S._LINES:
            cv2.polylines(img, [proj(line)], False, look.line, 1, cv2.LINE_AA, 2)
        _paint_plane(img, boards, _plane_homography(cam, i, np.array([_BOARD_X[0], S.PITCH_W + 4, _BOARD_H]),
                                                         e1 / _BOARD_PPM, -e3 / _BOARD_PPM), grid, cv2)
        _shadows(img, cam, i, players, ball, look, cv2)
        prev_ball_uv = S._draw_players_and_ball(img, cam, i, players, ball, prev_ball_uv, grass, cv2)
        out = img.astype(np.float32) * (look.gain[::-1] * look.exposure[i])
        out = 255.0 * (np.clip(out, 0, 255) / 255.0) ** look.gamma * vignette
        if look.blur > 0.05:
            out = cv2.GaussianBlur(out, (0, 0), look.blur)
        length, angle, speed = look.motion
        blur_len = length * W / 128 * (0.6 + 0.4 * math.sin(speed * i / cfg.fps))
        if blur_len >= 1.5:
            out = cv2.filter2D(out, -1, _motion_kernel(blur_len, angle))
        if look.noise > 0.5:
            out += noise_rng.normal(0, look.noise, out.shape).astype(np.float32)
        frame = np.clip(out, 0, 255).astype(np.uint8)
        _draw_graphics(frame, look, i, cfg.fps, cv2)
        if look.downscale < 0.98:
            small = cv2.resize(frame, (max(8, int(W * look.downscale)), max(8, int(H * look.downscale))),
                               interpolation=cv2.INTER_AREA)
            frame = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, look.jpeg])
        yield cv2.imdecode(buf, cv2.IMREAD_COLOR)
