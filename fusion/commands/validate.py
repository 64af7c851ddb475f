"""`fusion validate`: check a nuScenes dataroot (the checks are `fusion.data.validate`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fusion.commands.arguments import add_json_arguments, emit_json
from fusion.data.validate import validate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataroot", required=True, type=Path)
    parser.add_argument("--version", required=True, help="e.g. v1.0-mini, v1.0-trainval")
    parser.add_argument(
        "--deep-images", action="store_true", help="decode every image, not only keyframes"
    )
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    add_json_arguments(parser, "the report")


def run(args: argparse.Namespace) -> int:
    report = validate(args.dataroot, args.version, args.deep_images)
    if not emit_json(args, report.as_json()):
        print(report.render())
    failed = report.n_errors > 0 or (args.strict and report.n_warnings > 0)
    return 1 if failed else 0
