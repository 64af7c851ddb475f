"""A synthetic nuScenes-format dataroot: `generate_dataroot(GenerateOptions(...))`, what
`fusion generate` (`fusion.commands.generate`) and `fusion bench latency --generate` run.

Scenes are generated one process each (`--workers`), saved as they complete, so that a stopped
run resumes; the tables are written once all scenes are in.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from fusion.config import Condition
from fusion.data.rig_file import DEFAULT_RIG, RigSpec, load_rig
from fusion.errors import ConfigError, FusionError
from fusion.synth.cameras import NUSCENES_JPEG_QUALITY
from fusion.synth.scene import SceneJob, SceneRecords, generate_scene
from fusion.synth.world import CAR_PARKS
from fusion.synth.writer import STATE_DIR, load_scene, save_scene, static_tables, write_tables

# cameras cast rays at most this wide and resize to the image size (see benchmarks/generate.md)
RENDER_WIDTH = 640.0
# the JPEG quality of dataroots generated before `jpeg_quality` was an option (their params.json
# does not name it)
LEGACY_JPEG_QUALITY = 90
# dataroots generated before car parks (`car_parks`) had none
LEGACY_CAR_PARKS = 0.0
CAN_BLACKLIST = frozenset([*range(161, 169), *range(170, 177), *range(309, 315)])


def scene_names(n: int, first: int = 1) -> list[str]:
    """`scene-NNNN` names from `first` upward, skipping the devkit's CAN bus blacklist."""
    names, i = [], first
    while len(names) < n:
        if i not in CAN_BLACKLIST:
            names.append(f"scene-{i:04d}")
        i += 1
    if i - 1 > 9999:
        raise ConfigError(f"too many scenes for scene-NNNN names: {n}")
    return names  # type: ignore[return-value] (each checked against CONDITIONS)


@dataclass(frozen=True)
class GenerateOptions:
    """What `fusion generate` writes (its command-line options, with the same defaults)."""

    out: Path
    version: str = "v1.0-synth"
    scenes: int = 2
    samples_per_scene: int = 40  # keyframes per scene (2 Hz; 40 = a 20 s nuScenes scene)
    seed: int = 0
    conditions: tuple[Condition, ...] = ("day", "night", "rain", "fog")  # scene i: i mod len
    camera_sweeps: bool = False  # also write 12 Hz camera sweeps
    workers: int = 1  # scenes generated in parallel
    image_hw: tuple[int, int] = (900, 1600)
    render_scale: float | None = None  # default min(1, RENDER_WIDTH / width)
    val_fraction: float = 0.2  # share of scenes in synth_val
    first_scene: int = 1  # number of the first scene name
    rig: Path = DEFAULT_RIG
    gnss: str = "std"  # one of fusion.synth.gnss.GNSS_MODES
    jpeg_quality: int = NUSCENES_JPEG_QUALITY  # camera JPEGs' IJG quality (nuScenes': 80)
    car_parks: float = CAR_PARKS  # the chance of a car park per side of the road


def _params(opts: GenerateOptions, rig: RigSpec) -> dict:
    """What fixes the content of a dataroot: a rerun must match it."""
    return {
        "version": opts.version,
        "seed": opts.seed,
        "samples_per_scene": opts.samples_per_scene,
        "conditions": list(opts.conditions),
        "camera_sweeps": opts.camera_sweeps,
        "image_hw": list(opts.image_hw),
        "render_scale": opts.render_scale,
        "first_scene": opts.first_scene,
        "rig": repr(rig),
        "gnss": opts.gnss,
        "jpeg_quality": opts.jpeg_quality,
        "car_parks": opts.car_parks,
    }


def _check_out(out: Path, params: dict) -> None:
    if out.exists() and not out.is_dir():
        raise FusionError("output exists and is not a directory", out)
    if out.is_dir() and any(out.iterdir()):
        p = out / STATE_DIR / "params.json"
        if not p.is_file():
            raise FusionError(
                "output directory is not empty and was not written by `fusion generate`; "
                "choose an empty or new directory",
                out,
            )
        old = json.loads(p.read_text())
        if "image_size" in old:  # written before image sizes were (H, W) everywhere: (W, H)
            old["image_hw"] = old.pop("image_size")[::-1]
        old.setdefault("jpeg_quality", LEGACY_JPEG_QUALITY)  # written before it was an option
        old.setdefault("car_parks", LEGACY_CAR_PARKS)
        changed = sorted(k for k in params if old.get(k) != params[k])
        if changed:
            raise FusionError(
                f"output was generated with other arguments ({', '.join(changed)}); "
                "use a new directory",
                out,
            )
    (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
    (out / STATE_DIR / "params.json").write_text(json.dumps(params, indent=1))


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _work(job: SceneJob) -> tuple[str, float]:
    t = time.perf_counter()
    records = generate_scene(job)
    save_scene(Path(job.out), job.name, records)
    return job.name, time.perf_counter() - t


def generate_dataroot(opts: GenerateOptions) -> str:
    """Write the dataroot (resuming one this function started with the same options) and
    return a one-line summary: scenes, wall and CPU time per keyframe."""
    if not 0.0 <= opts.val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {opts.val_fraction}")
    rig = load_rig(opts.rig)
    width = opts.image_hw[1]
    scale = opts.render_scale if opts.render_scale is not None else min(1.0, RENDER_WIDTH / width)
    if not 0.05 <= scale <= 1.0:
        raise ConfigError(f"--render-scale must be in [0.05, 1], got {scale}")
    out: Path = opts.out
    _check_out(out, _params(opts, rig))
    names = scene_names(opts.scenes, opts.first_scene)
    jobs = [
        SceneJob(
            out=str(out),
            version=opts.version,
            seed=opts.seed,
            index=opts.first_scene - 1 + i,
            name=name,
            samples=opts.samples_per_scene,
            condition=opts.conditions[i % len(opts.conditions)],
            image_hw=opts.image_hw,
            render_scale=scale,
            camera_sweeps=opts.camera_sweeps,
            rig=rig,
            gnss=opts.gnss,
            jpeg_quality=opts.jpeg_quality,
            car_parks=opts.car_parks,
        )
        for i, name in enumerate(names)
    ]
    todo = [j for j in jobs if load_scene(out, j.name) is None]
    skipped = len(jobs) - len(todo)
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    bar = tqdm(total=len(todo), unit="scene", desc="generate", disable=None)
    times: list[float] = []
    if opts.workers > 1 and len(todo) > 1:
        ctx = mp.get_context("spawn")  # open3d and threads do not survive fork reliably
        with ctx.Pool(min(opts.workers, len(todo)), maxtasksperchild=1) as pool:
            for _, dt in pool.imap_unordered(_work, todo):
                times.append(dt)
                bar.update()
    else:
        for job in todo:
            times.append(_work(job)[1])
            bar.update()
    bar.close()
    scenes: list[tuple[str, SceneRecords]] = []
    for j in jobs:
        rec = load_scene(out, j.name)
        if rec is None:
            raise FusionError(f"scene {j.name} did not complete", out)
        scenes.append((j.name, rec))
    channels = (
        [(rig.lidar.channel, "lidar")]
        + [(c.channel, "camera") for c in rig.cameras]
        + [(r.channel, "radar") for r in rig.radars]
    )
    write_tables(out, opts.version, static_tables(channels), scenes, opts.val_fraction)
    wall = time.perf_counter() - t0
    n_key = len(todo) * opts.samples_per_scene
    cpu = _cpu_seconds() - cpu0
    rate = (
        f", {wall / n_key:.2f} s per keyframe (wall), {cpu / n_key:.2f} CPU-s per keyframe"
        if n_key
        else ""
    )
    return (
        f"{len(jobs)} scenes ({skipped} already complete) in {out} "
        f"[{opts.version}], {wall:.1f} s{rate}"
    )
