"""`fusion generate`: write a synthetic nuScenes-format dataroot.

fusion generate --out DIR --version v1.0-synth --scenes N --samples-per-scene K --seed S
    [--conditions day,night,rain,fog] [--camera-sweeps] [--workers W] [--image-size WxH]
    [--rig FILE] [--gnss std|rtk|none]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import resource
import time
from pathlib import Path

from tqdm import tqdm

from fusion.config import CONDITIONS, Condition
from fusion.errors import ConfigError, FusionError
from fusion.sources.rig_file import DEFAULT_RIG, RigSpec, load_rig
from fusion.synth.gnss import GNSS_MODES
from fusion.synth.scene import SceneJob, SceneRecords, generate_scene
from fusion.synth.writer import STATE_DIR, load_scene, save_scene, static_tables, write_tables

# cameras cast rays at most this wide and resize to the image size (see benchmarks/generate.md)
RENDER_WIDTH = 640.0
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


def _image_hw(text: str) -> tuple[int, int]:
    """`WxH` as written on command lines (1600x900) -> (height, width) as everywhere in code."""
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 16:
        raise argparse.ArgumentTypeError(f"image size must be WxH with W, H >= 16, got {text!r}")
    return int(m.group(2)), int(m.group(1))


def _conditions(text: str) -> tuple[Condition, ...]:
    names = tuple(c.strip() for c in text.split(",") if c.strip())
    for c in names:
        if c not in CONDITIONS:
            raise argparse.ArgumentTypeError(f"unknown condition {c!r} ({', '.join(CONDITIONS)})")
    if not names:
        raise argparse.ArgumentTypeError("give at least one condition")
    return names


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="dataroot to write")
    parser.add_argument("--version", default="v1.0-synth", help="version folder name")
    parser.add_argument("--scenes", type=_positive, default=2)
    parser.add_argument(
        "--samples-per-scene",
        type=_positive,
        default=40,
        help="keyframes per scene (2 Hz; 40 = a 20 s nuScenes scene)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--conditions",
        type=_conditions,
        default=("day", "night", "rain", "fog"),
        help="comma list of day,night,rain,fog; scene i gets condition i mod len",
    )
    parser.add_argument(
        "--camera-sweeps", action="store_true", help="also write 12 Hz camera sweeps"
    )
    parser.add_argument("--workers", type=_positive, default=1, help="scenes generated in parallel")
    parser.add_argument(
        "--image-size",
        dest="image_hw",
        type=_image_hw,
        default=(900, 1600),
        metavar="WxH",
        help="camera image width x height in px (default 1600x900)",
    )
    parser.add_argument(
        "--render-scale",
        type=float,
        default=None,
        help="cast camera rays at this fraction of the image size, then resize "
        "(default: min(1, 640 / width): 0.4 at 1600x900)",
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="share of scenes in synth_val"
    )
    parser.add_argument(
        "--first-scene", type=_positive, default=1, help="number of the first scene name"
    )
    parser.add_argument("--rig", type=Path, default=DEFAULT_RIG, help="rig TOML file")
    parser.add_argument(
        "--gnss",
        choices=GNSS_MODES,
        default="std",
        help="GNSS fixes written to can_bus/<scene>_gnss.json: a standard receiver (~1.5 m), "
        "RTK (~2 cm), or none (default std)",
    )


def _params(args: argparse.Namespace, rig: RigSpec) -> dict:
    """What fixes the content of a dataroot: a rerun must match it."""
    return {
        "version": args.version,
        "seed": args.seed,
        "samples_per_scene": args.samples_per_scene,
        "conditions": list(args.conditions),
        "camera_sweeps": args.camera_sweeps,
        "image_hw": list(args.image_hw),
        "render_scale": args.render_scale,
        "first_scene": args.first_scene,
        "rig": repr(rig),
        "gnss": args.gnss,
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


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    rig = load_rig(args.rig)
    width = args.image_hw[1]
    scale = args.render_scale if args.render_scale is not None else min(1.0, RENDER_WIDTH / width)
    if not 0.05 <= scale <= 1.0:
        raise ConfigError(f"--render-scale must be in [0.05, 1], got {scale}")
    out: Path = args.out
    _check_out(out, _params(args, rig))
    names = scene_names(args.scenes, args.first_scene)
    jobs = [
        SceneJob(
            out=str(out),
            version=args.version,
            seed=args.seed,
            index=args.first_scene - 1 + i,
            name=name,
            samples=args.samples_per_scene,
            condition=args.conditions[i % len(args.conditions)],
            image_hw=args.image_hw,
            render_scale=scale,
            camera_sweeps=args.camera_sweeps,
            rig=rig,
            gnss=args.gnss,
        )
        for i, name in enumerate(names)
    ]
    todo = [j for j in jobs if load_scene(out, j.name) is None]
    skipped = len(jobs) - len(todo)
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    bar = tqdm(total=len(todo), unit="scene", desc="generate", disable=None)
    times: list[float] = []
    if args.workers > 1 and len(todo) > 1:
        ctx = mp.get_context("spawn")  # open3d and threads do not survive fork reliably
        with ctx.Pool(min(args.workers, len(todo)), maxtasksperchild=1) as pool:
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
    write_tables(out, args.version, static_tables(channels), scenes, args.val_fraction)
    wall = time.perf_counter() - t0
    n_key = len(todo) * args.samples_per_scene
    cpu = _cpu_seconds() - cpu0
    rate = (
        f", {wall / n_key:.2f} s per keyframe (wall), {cpu / n_key:.2f} CPU-s per keyframe"
        if n_key
        else ""
    )
    print(
        f"fusion generate: {len(jobs)} scenes ({skipped} already complete) in {out} "
        f"[{args.version}], {wall:.1f} s{rate}"
    )
    return 0
