"""`fusion generate`: write a synthetic nuScenes-format dataroot (`fusion.synth.dataroot`).

fusion generate --out DIR --version v1.0-synth --scenes N --samples-per-scene K --seed S
    [--conditions day,night,rain,fog] [--camera-sweeps] [--workers W] [--image-size WxH]
    [--jpeg-quality Q] [--car-parks P] [--rig FILE] [--gnss std|rtk|none]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

from fusion.config import CONDITIONS, Condition
from fusion.data.rig_file import DEFAULT_RIG
from fusion.synth.cameras import NUSCENES_JPEG_QUALITY
from fusion.synth.dataroot import GenerateOptions, generate_dataroot
from fusion.synth.gnss import GNSS_MODES
from fusion.synth.world import CAR_PARKS


def _image_hw(text: str) -> tuple[int, int]:
    """`WxH` as written on command lines (1600x900) -> (height, width) as everywhere in code."""
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 16:
        raise argparse.ArgumentTypeError(f"image size must be WxH with W, H >= 16, got {text!r}")
    return int(m.group(2)), int(m.group(1))


def _chance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


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


def _quality(text: str) -> int:
    v = int(text)
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError(f"must be in 1..100, got {v}")
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
        "--jpeg-quality",
        type=_quality,
        default=NUSCENES_JPEG_QUALITY,
        metavar="Q",
        help=f"camera JPEG quality, 1-100 (default {NUSCENES_JPEG_QUALITY}: nuScenes' own; "
        "dataroots generated before this option used 90)",
    )
    parser.add_argument(
        "--car-parks",
        type=_chance,
        default=CAR_PARKS,
        metavar="P",
        help=f"chance, per side of the road, of a car park beside the ego's drive: rows of cars "
        f"parked across the road, as in nuScenes' car parks (default {CAR_PARKS}; 0: none, as "
        "dataroots generated before this option)",
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


def run(args: argparse.Namespace) -> int:
    names = [f.name for f in dataclasses.fields(GenerateOptions)]
    print(
        "fusion generate: "
        + generate_dataroot(GenerateOptions(**{n: getattr(args, n) for n in names}))
    )
    return 0
