"""Cameras: per-pixel ray casting with shading, procedural textures, road markings, sky and
the condition's light and weather. Rays are cast at `render_scale` of the output size and
resized to it (the output keeps the requested size and intrinsics)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration import PinholeCamera, Transform
from fusion.synth.conditions import Conditions
from fusion.synth.mesh import SPECULAR
from fusion.synth.mesh import Material as M
from fusion.synth.raycast import Hits, Raycaster

SUN = np.array([0.45, 0.3, 0.84]) / np.linalg.norm([0.45, 0.3, 0.84])


@dataclass(frozen=True, eq=False)
class Render:
    """`image` (H, W, 3) uint8 RGB at the output size; `actor` (h, w) int32 actor index per
    rendered pixel (-1: none) at the render size."""

    image: NDArray[np.uint8]
    actor: NDArray[np.int32]


def _hash_noise(p: NDArray[np.float64], scale: float) -> NDArray[np.float32]:
    """Deterministic value noise in 0..1 from integer cells of the (N, 3) points."""
    q = np.floor(p * scale).astype(np.int64)
    h = (q[:, 0] * 73856093) ^ (q[:, 1] * 19349663) ^ (q[:, 2] * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h >> 8) & 0xFFFF).astype(np.float32) / 65535.0


def _textures(
    hits: Hits, p: NDArray[np.float64], night: bool
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Albedo (N, 3) with procedural textures, and emitted light (N, 3)."""
    albedo = hits.color.copy()
    emit = np.zeros_like(albedo)
    mat = hits.material
    road = mat == M.ROAD
    if road.any():
        albedo[road] *= (0.85 + 0.3 * _hash_noise(p[road], 6.0))[:, None]
    ground = mat == M.GROUND
    if ground.any():
        albedo[ground] *= (0.7 + 0.6 * _hash_noise(p[ground], 2.0))[:, None]
    foliage = mat == M.FOLIAGE
    if foliage.any():
        albedo[foliage] *= (0.6 + 0.8 * _hash_noise(p[foliage], 3.0))[:, None]
    walk = mat == M.SIDEWALK
    if walk.any():
        g = np.abs(((p[walk, :2] / 1.5) % 1.0) - 0.5).max(1) > 0.47
        albedo[walk] *= np.where(g, 0.7, 1.0)[:, None]
    bld = mat == M.BUILDING
    if bld.any():
        n = hits.normal[bld]
        pb = p[bld]
        tangent = np.column_stack([-n[:, 1], n[:, 0]])
        u = (pb[:, :2] * tangent).sum(1)
        v = pb[:, 2]
        window = (
            (np.abs((u / 3.0) % 1.0 - 0.5) < 0.3)
            & (np.abs((v / 3.2) % 1.0 - 0.55) < 0.25)
            & (v > 1.0)
        )
        window &= np.abs(n[:, 2]) < 0.5
        albedo[bld] = np.where(
            window[:, None], np.array([0.12, 0.16, 0.22], np.float32), albedo[bld]
        )
        if night:
            lit = window & (_hash_noise(pb, 0.33) > 0.6)
            emit[np.flatnonzero(bld)[lit]] = (0.9, 0.75, 0.4)
    if night:
        for m_, c in (
            (M.HEADLIGHT, (3.0, 3.0, 2.6)),
            (M.TAILLIGHT, (2.0, 0.1, 0.1)),
            (M.LAMP, (3.0, 2.8, 2.2)),
        ):
            emit[mat == m_] = c
    return albedo, emit


def _sky(d: NDArray[np.float32], cond: Conditions) -> NDArray[np.float32]:
    up = np.sqrt(np.clip(d[:, 2], 0, 1))[:, None]
    hor = np.asarray(cond.sky_horizon, np.float32)
    return hor + (np.asarray(cond.sky_zenith, np.float32) - hor) * up


def shade(
    hits: Hits,
    origin: NDArray[np.float64],
    d: NDArray[np.float64],
    cond: Conditions,
    lights: NDArray[np.float64],
    headlights: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> NDArray[np.float32]:
    """Linear RGB (N, 3) of the rays: lit surfaces, emitters, sky, fog."""
    hit = hits.hit
    t = np.where(hit, hits.t, 0.0)
    p = (origin + d * t[:, None]).astype(np.float32)
    dark = cond.ambient < 0.1  # lamps and headlights matter only at night
    albedo, emit = _textures(hits, p, night=dark)
    n = hits.normal
    sun = SUN.astype(np.float32)
    light = cond.ambient * (0.6 + 0.4 * np.clip(n[:, 2], 0, 1)) + cond.sun * np.clip(
        n @ sun, 0, None
    )
    light = np.repeat(light[:, None], 3, axis=1)
    if dark:
        warm = np.array([1.0, 0.9, 0.7], np.float32)
        lit = np.flatnonzero(hit & (t < 90.0))  # lamps light only what is near them
        pl, nl = p[lit], n[lit]
        acc = np.zeros(len(lit), np.float32)
        for lamp in lights[np.hypot(*(lights[:, :2] - origin[:2]).T) < 80.0]:
            v = lamp.astype(np.float32) - pl
            dist2 = np.einsum("ij,ij->i", v, v)
            lam = np.clip(np.einsum("ij,ij->i", v, nl), 0, None) / np.sqrt(dist2 + 1e-6)
            acc += np.where(dist2 < 35.0**2, 9.0 * lam / (dist2 + 4.0), 0.0).astype(np.float32)
        light[lit] += acc[:, None] * warm
        hp, hf = headlights  # ego headlight position (3,) and forward (3,)
        v = p - hp
        dist = np.linalg.norm(v, axis=1) + 1e-6
        cone = np.clip((v @ hf) / dist, 0, 1) ** 12
        lam = np.clip(-(v * n).sum(1) / dist, 0, None)
        light += (60.0 * cone * lam / (dist**2 + 2.0))[:, None] * np.array([1.0, 0.97, 0.9])
    spec = SPECULAR[hits.material] * (2.0 if cond.wet else 1.0)
    if cond.wet:
        road = hits.material == M.ROAD
        albedo[road] *= 0.6
        spec = np.where(road, 0.6, spec)
    color = albedo * light + emit
    shiny = np.flatnonzero(hit & (spec > 0.05))
    if len(shiny):
        ds, ns = d[shiny], n[shiny]
        refl = ds - 2 * (ds * ns).sum(1, keepdims=True) * ns
        color[shiny] += spec[shiny, None] * _sky(refl, cond) * 0.5
    miss = np.flatnonzero(~hit)
    color[miss] = _sky(d[miss], cond)
    if cond.camera_fog_beta > 0:
        att = np.exp(-cond.camera_fog_beta * np.where(hit, t, 1e4))[:, None]
        color = color * att + np.asarray(cond.fog_color) * (1 - att)
    return color.astype(np.float32, copy=False)


def _camera_rays(camera: PinholeCamera, rw: int, rh: int) -> NDArray[np.float32]:
    """Unit ray directions (rh * rw, 3) in the camera frame through the pixel centres of the
    image scaled to rw x rh (cached: the rig's cameras repeat every frame)."""
    key = (tuple(camera.intrinsics.ravel()), camera.width, camera.height, rw, rh)
    if key not in _RAYS:
        _RAYS[key] = _compute_rays(camera, rw, rh)
    return _RAYS[key]


_RAYS: dict[tuple, NDArray[np.float32]] = {}


def _compute_rays(camera: PinholeCamera, rw: int, rh: int) -> NDArray[np.float32]:
    small = camera.scaled(rw / camera.width, rh / camera.height)
    uu, vv = np.meshgrid(
        np.arange(rw, dtype=np.float32) + 0.5, np.arange(rh, dtype=np.float32) + 0.5
    )
    rays = np.stack(
        [(uu - small.cx) / small.fx, (vv - small.cy) / small.fy, np.ones_like(uu)], axis=-1
    )
    rays = rays.reshape(-1, 3)
    return (rays / np.linalg.norm(rays, axis=1, keepdims=True)).astype(np.float32)


@functools.cache
def _gamma_lut(gamma: float) -> NDArray[np.uint8]:
    return (np.linspace(0, 1, 4096) ** (1 / gamma) * 255 + 0.5).astype(np.uint8)


def to_srgb8(linear: NDArray[np.float32], gamma: float = 2.2) -> NDArray[np.uint8]:
    """Linear RGB in 0..1 -> uint8 encoded with exponent 1 / `gamma` through a lookup table."""
    q = (np.clip(linear, 0.0, 1.0) * 4095).astype(np.int32)
    return _gamma_lut(gamma)[q]


# The camera's processing of the rendered light, one for every condition (one camera: the
# conditions change the light): the share of colour kept around each pixel's luminance, a
# linear gain and the encoding exponent. Fitted to the real nuScenes cameras by day (scene-0916:
# brightness 105, contrast 53, HSV saturation 20 of 255; plain gamma 2.2 gave 160, 46, 33;
# benchmarks/sim2real.md); no real night, rain or fog was measured.
CAMERA_SATURATION = 0.4
CAMERA_EXPOSURE = 0.8
CAMERA_TONE_GAMMA = 1.4


def develop(
    linear: NDArray[np.float32],
    saturation: float = CAMERA_SATURATION,
    exposure: float = CAMERA_EXPOSURE,
    tone_gamma: float = CAMERA_TONE_GAMMA,
) -> NDArray[np.uint8]:
    """A linear RGB image (h, w, 3) -> uint8 as the camera records it: keep `saturation` of the
    colour around each pixel's luminance (Rec. 709 weights), gain `exposure`, encode with
    exponent 1 / `tone_gamma`."""
    luma = linear @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    img = luma[..., None] + np.float32(saturation) * (linear - luma[..., None])
    return to_srgb8(img * np.float32(exposure), tone_gamma)


def render(
    caster: Raycaster,
    camera: PinholeCamera,
    cam_to_global: Transform,
    time_s: float,
    cond: Conditions,
    rng: np.random.Generator,
    render_scale: float,
    headlights: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> Render:
    """Render one image of `camera` posed at `cam_to_global` at `time_s` (s)."""
    rw = max(8, int(round(camera.width * render_scale)))
    rh = max(8, int(round(camera.height * render_scale)))
    rays_cam = _camera_rays(camera, rw, rh)
    d = rays_cam @ cam_to_global.rotation.T.astype(np.float32)
    origin = cam_to_global.translation
    mask = _actor_mask(
        caster, camera.scaled(rw / camera.width, rh / camera.height), cam_to_global, time_s
    )
    hits = caster.cast(
        np.broadcast_to(origin, d.shape),
        d,
        time_s,
        near=origin,
        radius=250.0,
        actor_rays=mask.ravel(),
    )
    color = shade(hits, origin, d, cond, caster.world.lights, headlights)
    img = _weather_linear(color.reshape(rh, rw, 3), cond)
    img8 = develop(img)
    if (rw, rh) != (camera.width, camera.height):
        img8 = cv2.resize(img8, (camera.width, camera.height), interpolation=cv2.INTER_LINEAR)
    img8 = _weather_sensor(img8, cond, rng)
    return Render(img8, hits.actor.reshape(rh, rw))


def _actor_mask(
    caster: Raycaster, camera: PinholeCamera, cam_to_global: Transform, time_s: float
) -> NDArray[np.bool_]:
    """(h, w) pixels inside the projected bounding rectangle of some actor's box."""
    world = caster.world
    centres, yaws, _ = world.states(time_s)
    mask = np.zeros((camera.height, camera.width), bool)
    sizes = np.array([a.size_wlh for a in world.actors])
    to_cam = cam_to_global.inverse()
    unit = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    for i in range(len(world.actors)):
        w, l, h = sizes[i]
        c, s = math.cos(yaws[i]), math.sin(yaws[i])
        local = unit * np.array([l, w, h])
        corners = (
            np.column_stack(
                [c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], local[:, 2]]
            )
            + centres[i]
        )
        p = to_cam.apply(corners)
        if np.all(p[:, 2] <= 0.1):
            continue
        if np.any(p[:, 2] <= 0.1):  # straddles the image plane: cast all rays
            mask[:] = True
            break
        uv = p[:, :2] / p[:, 2:3] * np.array([camera.fx, camera.fy]) + np.array(
            [camera.cx, camera.cy]
        )
        u0, v0 = np.floor(uv.min(0)).astype(int) - 1
        u1, v1 = np.ceil(uv.max(0)).astype(int) + 1
        if u1 < 0 or v1 < 0 or u0 >= camera.width or v0 >= camera.height:
            continue
        mask[max(v0, 0) : max(v1, 0), max(u0, 0) : max(u1, 0)] = True
    return mask


def _weather_linear(img: NDArray[np.float32], cond: Conditions) -> NDArray[np.float32]:
    if cond.contrast < 1.0:
        mean = img.mean(axis=(0, 1), keepdims=True)
        img = cond.contrast * img + (1 - cond.contrast) * (0.5 * mean + 0.25)
    return img


def _weather_sensor(
    img: NDArray[np.uint8], cond: Conditions, rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Rain streaks and sensor noise on the output-size uint8 image."""
    h, w = img.shape[:2]
    out = img
    if cond.rain_streaks:
        streaks = np.zeros((h, w), np.uint8)
        n = int(cond.rain_streaks * w * h / (1600 * 900))
        x0 = rng.uniform(0, w, n)
        y0 = rng.uniform(0, h, n)
        length = rng.uniform(0.02, 0.06, n) * h
        for x, y, ln in zip(x0, y0, length, strict=True):
            cv2.line(
                streaks, (int(x), int(y)), (int(x + 0.25 * ln), int(y + ln)), 60, 1, cv2.LINE_AA
            )
        out = cv2.add(out, cv2.merge([streaks, streaks, streaks]))
        out = cv2.GaussianBlur(out, (0, 0), 0.8)
    if cond.noise > 0:
        # a shifted tile of gaussian noise: cheap and still different in every image
        pos, neg = _noise_tiles(cond.noise)
        oy = int(rng.integers(0, pos.shape[0] - h + 1))
        ox = int(rng.integers(0, pos.shape[1] - w + 1))
        out = cv2.add(out, pos[oy : oy + h, ox : ox + w])
        out = cv2.subtract(out, neg[oy : oy + h, ox : ox + w])
    return out


_TILES: dict[float, tuple[NDArray[np.uint8], NDArray[np.uint8]]] = {}


def _noise_tiles(sigma: float) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Positive and negative parts (1000, 1800, 3) uint8 of grey gaussian noise of `sigma`."""
    if sigma not in _TILES:
        n = np.random.default_rng(12345).standard_normal((1000, 1800), dtype=np.float32)
        n *= sigma * 255
        pos = np.clip(np.round(n), 0, 255).astype(np.uint8)
        neg = np.clip(np.round(-n), 0, 255).astype(np.uint8)
        _TILES[sigma] = (np.repeat(pos[..., None], 3, 2), np.repeat(neg[..., None], 3, 2))
    return _TILES[sigma]


# nuScenes' camera JPEGs are encoded at IJG quality 80: their luma quantisation table is the
# standard one scaled by 0.4 (6, 4, 4, 6, 10, 16, 20, 24 on its first row), 151 KB an image on
# average at 1600x900 in scene-0916 (`benchmarks/sim2real_changes.md`). Quality 90, what the
# generator wrote before, made images 1.5 x larger and 1.8 x slower to decode than real ones.
NUSCENES_JPEG_QUALITY = 80
