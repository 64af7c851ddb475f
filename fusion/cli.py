"""Camera, LIDAR, radar and GPS/IMU 3D object detection: from sensor logs to scored detections.

Each subcommand is a module of `fusion.commands` (the `fusion bench` targets: of `fusion.bench`)
that exposes `add_arguments(parser)` and `run(args) -> int` over the library below it; modules
are imported only when their subcommand runs, so `fusion --help` stays fast.

Conventions of every subcommand: `--json` prints the result as one JSON object on stdout
instead of the text; `--json-out PATH` (and `--markdown-out PATH`) write files; outputs go
where the user says (`--out`, `--*-out`) or to the working directory, never into the source
tree (the JSON helpers are `fusion.commands.arguments`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fusion.errors import FusionError

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("fusion.commands.inspect", "summarize one sample: sensors, offsets, points, boxes"),
    "calibrate": (
        "fusion.commands.calibrate",
        "checkerboard intrinsics; LIDAR-camera alignment check",
    ),
    "generate": ("fusion.commands.generate", "write a synthetic nuScenes-format dataroot"),
    "validate": (
        "fusion.commands.validate",
        "check any nuScenes dataroot: tables, keys, files, rates",
    ),
    "bench": ("fusion.bench", "benchmark kernels, per-stage latency and replay at the log's pace"),
    "train": ("fusion.commands.train", "train the fusion, camera or lidar detector"),
    "eval": ("fusion.commands.eval", "run detectors and score them with the nuScenes devkit"),
    "export": ("fusion.commands.export", "export the dense network to ONNX"),
    "replay": (
        "fusion.commands.replay",
        "replay a recorded drive through the detector in real time",
    ),
    "convert": (
        "fusion.commands.convert",
        "write a nuScenes scene as a Foxglove MCAP, ROS 2 or ROS 1 log",
    ),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    summary = __doc__.split("\n\n", 1)[0].replace("\n", " ")  # the first paragraph
    parser = argparse.ArgumentParser(prog="fusion", description=summary)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only the chosen subcommand's module is imported
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except FusionError as err:
        print(f"fusion {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fusion {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
