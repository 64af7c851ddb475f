"""`fusion bench kernels|latency|replay|real|localization`: kernel micro-benchmarks, per-stage
latency, replay, the shipped models on real nuScenes, the GNSS/IMU pose estimator."""

from __future__ import annotations

import argparse
import importlib
import sys

# target -> module exposing add_arguments(parser) and run(args)
TARGETS = {
    "kernels": "fusion.bench.kernels",
    "latency": "fusion.bench.latency",
    "replay": "fusion.bench.replay",
    "real": "fusion.bench.real",
    "localization": "fusion.bench.localization",
}


def _wanted() -> str | None:
    """The target named on this process's command line (`fusion bench kernels ...`), so that only
    its module is imported: `fusion bench kernels` must not import torch, which the other
    targets' arguments do. None when the command line names none (a parser built in a test):
    then every target's arguments are added."""
    argv = sys.argv[1:]
    if "bench" not in argv:
        return None
    rest = [a for a in argv[argv.index("bench") + 1 :] if not a.startswith("-")]
    return rest[0] if rest and rest[0] in TARGETS else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET")
    sub.required = True
    wanted = _wanted()
    for name, module in TARGETS.items():
        p = sub.add_parser(name, help=f"benchmark {name}")
        p.set_defaults(_bench_module=module)
        if wanted is None or name == wanted:
            importlib.import_module(module).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._bench_module).run(args) or 0)
