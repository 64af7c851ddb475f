"""Argument helpers the subcommands share (`fusion.cli` lists the conventions): the JSON
output of a command's result, and the choice of ego poses."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fusion.localization.pose_source import POSE_CHOICES


def add_json_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """`--json` (print `what` as JSON instead of the text) and `--json-out PATH`."""
    parser.add_argument(
        "--json", action="store_true", help=f"print {what} as one JSON object instead of text"
    )
    parser.add_argument(
        "--json-out", type=Path, metavar="PATH", help=f"also write {what} as JSON to PATH"
    )


def emit_json(args: argparse.Namespace, payload: Any) -> bool:
    """Print and/or write `payload` as `add_json_arguments` asked; True when it was printed
    (the caller then prints no text)."""
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(payload, indent=2) + "\n")
    if args.json:
        json.dump(payload, sys.stdout)
        sys.stdout.write("\n")
    return bool(args.json)


def add_pose_arguments(parser: argparse.ArgumentParser, latency: bool = True) -> None:
    """`--poses auto|log|gnss-imu` (the one rule, `fusion.localization.pose_source`) and, with
    `latency`, `--gnss-latency-sigma S` for the estimator."""
    parser.add_argument(
        "--poses",
        choices=POSE_CHOICES,
        default="auto",
        help="ego poses: the log's localization (log: a dataroot's ego_pose, /tf map->base_link, "
        "/odom), estimated causally from its IMU, wheel speed and GNSS (gnss-imu), or the first "
        "when the log has it (auto, default)",
    )
    if latency:
        parser.add_argument(
            "--gnss-latency-sigma",
            type=float,
            default=0.0,
            metavar="S",
            help="with estimated poses: estimate the GNSS fix latency online from the configured "
            "one (--rig's [gnss] time_offset_s) with this prior sigma in s (default 0: the "
            "configured latency is held)",
        )
