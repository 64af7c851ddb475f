"""`fusion bench kernels|latency`: kernel micro-benchmarks and per-stage latency."""

from __future__ import annotations

import argparse
import importlib

# target -> module exposing add_arguments(parser) and run(args)
TARGETS = {
    "kernels": "fusion.bench.kernels",
    "latency": "fusion.bench.latency",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET")
    sub.required = True
    for name, module in TARGETS.items():
        p = sub.add_parser(name, help=f"benchmark {name}")
        p.set_defaults(_bench_module=module)
        importlib.import_module(module).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._bench_module).run(args) or 0)
