"""`fusion eval`: run detectors over a split and score them with the nuScenes devkit (the
library is `fusion.eval.evaluate`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fusion.commands.arguments import add_json_arguments, add_pose_arguments, emit_json
from fusion.distributed import close_shard, init_shard
from fusion.engines.base import add_backend_argument
from fusion.engines.device import resolve_backend
from fusion.eval.evaluate import evaluate, format_table, inside
from fusion.model.weights import add_model_arguments, models_from_args
from fusion.postprocess.decode import NUSCENES_MAX_BOXES
from fusion.threads import apply_threads


def _threshold(text: str) -> float:
    v = float(text)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return v


def _max_boxes(text: str) -> int:
    v = int(text)
    if not 1 <= v <= NUSCENES_MAX_BOXES:
        raise argparse.ArgumentTypeError(f"must be in 1..{NUSCENES_MAX_BOXES}, got {text}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataroot", required=True, type=Path)
    parser.add_argument("--version", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument(
        "--drop",
        nargs="+",
        default=[],
        metavar="SENSOR",
        help="remove sensors at inference: LIDAR_TOP, a camera or radar channel, cameras, radars",
    )
    add_backend_argument(parser)
    parser.add_argument("--device", default="cpu", help="torch device of the torch backend")
    add_model_arguments(parser)
    parser.add_argument(
        "--out", required=True, type=Path, help="results JSON, devkit outputs, plots"
    )
    add_json_arguments(parser, "the summary (always written to OUT/summary.json too)")
    parser.add_argument(
        "--pictures",
        type=int,
        default=3,
        help="BEV and six-camera pictures of the first N samples",
    )
    parser.add_argument(
        "--camera-motion",
        default="ignore",
        choices=("ignore", "compensate"),
        help="camera geometry by rig, computed once (ignore), or each camera at its own "
        "time's ego pose, every frame (compensate); see benchmarks/replay.md",
    )
    parser.add_argument("--no-progress", action="store_true")
    add_pose_arguments(parser)
    parser.add_argument(
        "--rig",
        type=Path,
        help="with --poses gnss-imu: the rig whose [gnss] gives the antenna lever arm, the fix "
        "latency and the map's geodetic origin (default: the generator's rig)",
    )
    parser.add_argument(
        "--score-threshold",
        type=_threshold,
        metavar="S",
        help="keep boxes scoring above S (default: each weights file's, 0.1 for the shipped "
        "models); the nuScenes benchmark only gains from lower-scored boxes",
    )
    parser.add_argument(
        "--max-detections",
        type=_max_boxes,
        metavar="N",
        help=f"at most N boxes a sample, 1..{NUSCENES_MAX_BOXES} (the nuScenes benchmark's cap; "
        "default: each weights file's, 200 for the shipped models)",
    )
    parser.add_argument(
        "--decode",
        choices=("full", "reduced"),
        default="full",
        help="JPEG decode: every pixel, or at reduced DCT scale (the real-time path)",
    )


def run(args: argparse.Namespace) -> int:
    apply_threads()  # the pool sizes of fusion.threads, before any engine is built
    models = models_from_args(args)
    shard = init_shard()
    report = evaluate(
        args.dataroot,
        args.version,
        args.split,
        models,
        args.out,
        args.drop,
        resolve_backend(args.backend),
        args.device,
        args.pictures,
        not args.no_progress,
        shard,
        camera_motion=args.camera_motion,
        decode=args.decode,
        poses=args.poses,
        rig=args.rig,
        gnss_latency_sigma_s=args.gnss_latency_sigma,
        score_threshold=args.score_threshold,
        max_detections=args.max_detections,
    )
    close_shard(shard)  # on success only: a failing rank must not wait in a barrier
    if report is None:  # a rank other than 0 under torchrun: rank 0 scores and writes
        return 0
    summary = report.as_json()
    inside(args.out, args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not emit_json(args, summary):
        print(format_table(report))
    return 0
