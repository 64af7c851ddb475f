"""`fusion bench latency`: per-stage wall time of the detectors on real frames.

Each frame is read once; every model then runs it through its `Runner` (pre-processing
kernels, the engine's dense graphs, bev_pool / scatter, decode + NMS). The first `--warmup`
frames of each model (JIT compilation, allocator warm-up) are not counted.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from fusion.engines.base import BACKENDS
from fusion.engines.runner import Runner, StageTimes, open_engine
from fusion.errors import FusionError
from fusion.evaluate import resolve_weights
from fusion.model.weights import load_detector

DEFAULT_DATAROOT = Path(__file__).resolve().parent.parent / "tests" / "data" / "nuscenes-real-frame"


def measure(
    frames: list,
    models: dict[str, Path],
    backend: str,
    work_dir: Path,
    device: str,
    repeats: int,
    warmup: int,
) -> dict[str, dict[str, dict[str, float]]]:
    """model -> stage -> {"median_ms", "mean_ms"} over `repeats` passes of the frames."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, path in models.items():
        model = load_detector(path)
        engine = open_engine(backend, model, work_dir, device)  # type: ignore[arg-type]
        runner = Runner(model.cfg, model.variant, engine, model.params)
        for i in range(warmup):
            runner.detect(frames[i % len(frames)])
        times: list[StageTimes] = []
        for _ in range(repeats):
            for frame in frames:
                times.append(runner.detect(frame)[1])
        stats = {}
        for stage in (*StageTimes.names(), "total"):
            values = np.array([t.total if stage == "total" else getattr(t, stage) for t in times])
            stats[stage] = {"median_ms": float(np.median(values)), "mean_ms": float(values.mean())}
        out[name] = stats
    return out


def format_latency(stats: dict[str, dict[str, dict[str, float]]]) -> str:
    names = list(stats)
    head = f"{'stage (median ms)':<20}" + "".join(f"{n:>12}" for n in names)
    lines = [head, "-" * len(head)]
    for stage in (*StageTimes.names(), "total"):
        lines.append(
            f"{stage:<20}" + "".join(f"{stats[n][stage]['median_ms']:>12.2f}" for n in names)
        )
    lines.append(
        f"{'frames / s':<20}"
        + "".join(f"{1e3 / stats[n]['total']['median_ms']:>12.2f}" for n in names)
    )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataroot", type=Path, default=DEFAULT_DATAROOT)
    parser.add_argument("--version", default="v1.0-mini")
    parser.add_argument("--split", default=None, help="default: every sample of the dataroot")
    parser.add_argument("--models", default="fusion,camera,lidar")
    parser.add_argument("--backend", default="torch", choices=BACKENDS)
    parser.add_argument("--device", default="cpu", help="torch device of the torch backend")
    parser.add_argument(
        "--weights", type=Path, help="folder with <model>.safetensors (default: shipped)"
    )
    parser.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=PATH")
    parser.add_argument("--samples", type=int, default=10, help="frames to read")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the frames")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--work-dir", type=Path, default=Path("out/latency"), help="exported graphs"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")


def run(args: argparse.Namespace) -> int:
    from fusion.nuscenes import NuScenesReader

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    models = resolve_weights(names, args.weights, args.checkpoint)
    cfg = load_detector(next(iter(models.values()))).cfg
    reader = NuScenesReader(args.dataroot, args.version, config=cfg)
    tokens = reader.sample_tokens(args.split)[: args.samples]
    if not tokens:
        raise FusionError("no samples to time", args.dataroot)
    frames = [reader.frame(t) for t in tokens]
    t0 = time.time()
    stats = measure(
        frames, models, args.backend, args.work_dir, args.device, args.repeats, args.warmup
    )
    cpu = platform.processor() or platform.machine()
    print(f"{len(frames)} frames x {args.repeats}, backend {args.backend}, {cpu}")
    print(format_latency(stats))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "machine": platform.platform(),
                    "backend": args.backend,
                    "device": args.device,
                    "frames": len(frames),
                    "repeats": args.repeats,
                    "wall_s": round(time.time() - t0, 1),
                    "models": stats,
                },
                indent=2,
            )
        )
    return 0
