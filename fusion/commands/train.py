"""`fusion train`: train the fusion, camera or LIDAR detector (the loop is `fusion.train.loop`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
from collections.abc import Sequence
from pathlib import Path

import torch

from fusion.commands.arguments import add_json_arguments, emit_json
from fusion.config import (
    BranchLR,
    PipelineConfig,
    check_config,
    load_config,
)
from fusion.distributed import leave_process_group
from fusion.engines.device import resolve_device
from fusion.errors import FusionError
from fusion.model.detector import VARIANTS
from fusion.model.weights import read_metadata
from fusion.train.loop import TrainOptions, init_distributed, request_stop, train


def parse_mix(items: Sequence[str]) -> tuple[tuple[Path, str, str, int], ...]:
    """`--mix DATAROOT,VERSION,SPLIT[,REPEAT]` values."""
    out = []
    for item in items:
        fields = item.split(",")
        repeat = fields[3] if len(fields) == 4 else "1"
        if len(fields) not in (3, 4) or not all(fields[:3]) or not repeat.isdigit():
            raise FusionError(f"--mix wants DATAROOT,VERSION,SPLIT[,REPEAT]: {item!r}")
        if int(repeat) < 1:
            raise FusionError(f"--mix: REPEAT must be at least 1: {item!r}")
        out.append((Path(fields[0]), fields[1], fields[2], int(repeat)))
    return tuple(out)


def parse_datasets(items: Sequence[str], option: str) -> tuple[tuple[Path, str, str], ...]:
    """`DATAROOT,VERSION,SPLIT` values of `option`."""
    out = []
    for item in items:
        fields = item.split(",")
        if len(fields) != 3 or not all(fields):
            raise FusionError(f"{option} wants DATAROOT,VERSION,SPLIT: {item!r}")
        out.append((Path(fields[0]), fields[1], fields[2]))
    return tuple(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default="tiny", help="preset name (tiny, nuscenes) or TOML path"
    )
    parser.add_argument("--dataroot", required=True, type=Path)
    parser.add_argument(
        "--version", required=True, help="e.g. v1.0-mini, v1.0-trainval, v1.0-synth"
    )
    parser.add_argument(
        "--split", required=True, help="split name (devkit or <version>/splits.json)"
    )
    parser.add_argument("--model", required=True, choices=VARIANTS)
    parser.add_argument(
        "--out", required=True, type=Path, help="run folder (checkpoints, logs, plot)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="see each sample of --dataroot's split N times per epoch (a small real set in a mix)",
    )
    parser.add_argument(
        "--mix",
        action="append",
        default=[],
        metavar="DATAROOT,VERSION,SPLIT[,REPEAT]",
        help="add another dataroot's split to the training set (repeatable), e.g. synthetic "
        "scenes beside a real one",
    )
    parser.add_argument(
        "--gt-database",
        action="append",
        default=[],
        metavar="DATAROOT,VERSION,SPLIT",
        help="where ground-truth sampling (the config's [train.gt_sampling]) cuts its objects "
        "(repeatable); default: --dataroot's split",
    )
    parser.add_argument("--epochs", type=int, help="default: the config's train.epochs")
    parser.add_argument("--batch-size", type=int, help="per process; default: train.batch_size")
    parser.add_argument("--seed", type=int, help="default: train.seed")
    parser.add_argument("--workers", type=int, default=2, help="data loader processes")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (smoke runs)")
    parser.add_argument(
        "--checkpoint-every", type=int, default=100, help="steps between checkpoints"
    )
    parser.add_argument(
        "--cache-frames",
        type=int,
        default=0,
        help="keep up to N decoded frames in memory per loader process (about 8 MB each)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from RUN/checkpoints/last.safetensors"
    )
    parser.add_argument(
        "--init",
        type=Path,
        help="start from these weights: the same model (fine-tuning), or one that reads more "
        "sensors (e.g. the camera model from the fusion model's camera branch and BEV network)",
    )
    parser.add_argument(
        "--init-branch",
        action="append",
        default=[],
        metavar="SENSOR=WEIGHTS",
        help="after --init, take the camera, lidar or radar branch from these weights (repeatable)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument(
        "--lr-scale",
        action="append",
        default=[],
        metavar="BRANCH=X",
        help="learning-rate multiplier of a branch: camera, lidar, radar or dense (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    add_json_arguments(parser, "the weights written and the run's record")


def _stop(signum: int, frame: object) -> None:
    request_stop()


def parse_init_branches(items: Sequence[str]) -> tuple[tuple[str, Path], ...]:
    """`--init-branch SENSOR=WEIGHTS` values, SENSOR one of camera, lidar, radar."""
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or name not in ("camera", "lidar", "radar") or not path:
            raise FusionError(
                f"--init-branch wants SENSOR=WEIGHTS, SENSOR camera, lidar or radar: {item!r}"
            )
        out.append((name, Path(path)))
    return tuple(out)


def with_lr_scales(cfg: PipelineConfig, items: Sequence[str]) -> PipelineConfig:
    """`--lr-scale BRANCH=X` values applied to `train.branch_lr`, on the config, so that the
    run's config.toml holds the rates it trained with."""
    scales = dataclasses.asdict(cfg.train.branch_lr)
    for item in items:
        name, sep, value = item.partition("=")
        try:
            x = float(value)
        except ValueError:
            sep = ""
        if not sep or name not in scales:
            raise FusionError(
                f"--lr-scale wants BRANCH=X with BRANCH in camera, lidar, radar, dense: {item!r}"
            )
        scales[name] = x
    train_cfg = dataclasses.replace(cfg.train, branch_lr=BranchLR(**scales))
    cfg = dataclasses.replace(cfg, train=train_cfg)
    check_config(cfg, "--lr-scale")
    return cfg


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _stop)  # `kill` stops a run like Ctrl-C: checkpointed
    cfg = load_config(args.config)
    if args.resume and (args.out / "config.toml").is_file():
        cfg = load_config(args.out / "config.toml")
    cfg = with_lr_scales(cfg, args.lr_scale)
    if args.gt_database and cfg.train.gt_sampling.probability == 0:
        raise FusionError(
            "--gt-database: the config's [train.gt_sampling] is off (probability 0): nothing "
            "would be pasted"
        )
    opts = TrainOptions(
        config=cfg,
        dataroot=args.dataroot,
        version=args.version,
        split=args.split,
        variant=args.model,
        out=args.out,
        epochs=args.epochs or cfg.train.epochs,
        batch_size=args.batch_size or cfg.train.batch_size,
        seed=cfg.train.seed if args.seed is None else args.seed,
        workers=args.workers,
        max_steps=args.max_steps,
        resume=args.resume,
        init=args.init,
        init_branches=parse_init_branches(args.init_branch),
        device=args.device,
        checkpoint_every=args.checkpoint_every,
        cache_frames=args.cache_frames,
        progress=not args.no_progress,
        repeat=args.repeat,
        mix=parse_mix(args.mix),
        gt_database=parse_datasets(args.gt_database, "--gt-database"),
    )
    if opts.repeat < 1:
        raise FusionError(f"--repeat must be at least 1, not {opts.repeat}")
    weights = train(opts)
    if init_distributed(torch.device(resolve_device("torch", opts.device))).is_main:
        run = json.loads(read_metadata(weights).get("run", "{}"))
        if not emit_json(args, {"weights": str(weights), "run": run}):
            print(f"weights: {weights}")
    leave_process_group(barrier=False)
    return 0
