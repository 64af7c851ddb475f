"""`fusion bench latency`: single-stream latency of the detectors, end to end from bytes.

Anchors: MLPerf Inference LoadGen's single-stream scenario (tail percentiles over at least
`--min-queries` queries and `--min-seconds`; 662 queries is LoadGen's minimum for p99) and
trtexec (min, mean, median, percentiles, max, stdev, throughput; warm-up reported and
excluded). Input: a log of a moving scene (`--dataroot`/`--log`: a nuScenes dataroot scene, with
`--generate` a synthetic one written there first, or any log `fusion.sources.open_source`
reads), played as `fusion replay --rate 0` plays it and cycled: its messages in log order into
the online synchronizer (`fusion.sync.online`), one query per trigger (LIDAR keyframe). Each query
is
`read` (the bytes of the log's messages since the previous frame), `decode` (the payloads the
model reads decoded, camera JPEGs only when a frame takes them and at reduced DCT scale by
default, `--decode full` for every pixel; synchronized; the frame built with its sweeps
motion-compensated), then the stages of `fusion.engines.runner.Runner`.

Every model x backend is built and warmed up in turn (its peak RSS is taken then: VmHWM, reset
before each build), then the queries run round-robin, one per model x backend, so that a change
of load on the machine hits them all alike and the ratios come from the same minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusion.commands.arguments import add_json_arguments, emit_json
from fusion.engines.base import BACKENDS
from fusion.errors import FusionError
from fusion.machine import (
    current_rss_mb,
    env_line,
    machine_info,
    peak_rss_mb,
    reset_peak_rss,
)
from fusion.sources import check_version, open_source
from fusion.stats import STAT_KEYS, LatencyRecorder, latency_stats
from fusion.sync.ingest import StreamFrames
from fusion.threads import apply_threads, default_threads

if TYPE_CHECKING:
    from fusion.sources.base import Source

LOADGEN_P99_QUERIES = 662  # LoadGen's minimum query count for a p99 at 99 % confidence
DEFAULT_WORK = Path("out/latency")  # relative: the working directory, never the source tree
TARGET_CAMERAS = 6
DENSE_STAGES = ("camera_net", "lidar_net", "bev_net")  # the engine's graphs


def input_text(source: Source, lanes: list[Lane], decode: str) -> str:
    """What the lanes read: the log, its frames per pass, and each model's messages per frame."""
    info = source.info()
    first = lanes[0].frames
    scene = f" scene {info['scene']}" if info.get("scene") else ""
    per_model = {}
    for lane in lanes:
        st = lane.frames.stats()
        per_model.setdefault(
            lane.model,
            f"{lane.model} decodes {st['decoded_per_frame']:.1f}"
            f" ({st['camera_decoded_per_frame']:.1f} camera)",
        )
    per_pass = first.frames_per_loop or info.get("keyframes", "?")
    cfg = lanes[0].runner.cfg
    cams = [c.camera for c in source.rig().sensors.values() if c.camera is not None]
    size = f", {cams[0].width}x{cams[0].height} images" if cams else ""
    return (
        f"{info['kind']} {source.path}{scene}{size}: {per_pass} frames per pass (trigger"
        f" {first.sync.options.trigger}; {cfg.point_cloud.sweeps} LIDAR and {cfg.radar.sweeps}"
        " radar sweeps for the models that read them), built online by"
        " fusion.sync.online.OnlineSynchronizer from the log's messages, the log cycled (the"
        f" synchronizer reset at each wrap); per frame every lane reads"
        f" {first.stats()['read_per_frame']:.1f} messages, "
        + ", ".join(per_model.values())
        + f"; JPEGs decoded {decode}"
    )


def moving_scene(root: Path, version: str, samples: int) -> None:
    """Write a synthetic moving scene of `samples` keyframes with sweeps to `root` (704x396
    cameras, the shipped models' size; seed 11, which they were not trained on)."""
    from fusion.synth.dataroot import GenerateOptions, generate_dataroot

    print(f"generating a moving scene of {samples} keyframes in {root}", flush=True)
    opts = GenerateOptions(
        out=root, version=version, scenes=1, samples_per_scene=samples, seed=11,
        conditions=("day",), image_hw=(396, 704),
    )  # fmt: skip
    print(generate_dataroot(opts), flush=True)


# -- one model x backend ------------------------------------------------------------------------


@dataclass
class Lane:
    """One model on one backend: its runner, frames, recorder and trace events."""

    model: str
    backend: str
    runner: Any
    frames: StreamFrames
    recorder: LatencyRecorder
    peak_rss_mb: float = 0.0
    rss_added_mb: float = 0.0  # resident memory this lane's build and warm-up added
    peak_device_mb: float | None = None
    wall_ms: float = 0.0  # wall time of the measured queries
    last_camera_input_ms: float = 0.0
    engine_settings: dict[str, Any] | None = None
    # JPEG read + JPEG decode + images of each measured query, ms
    camera_input_ms: list[float] = field(default_factory=list)

    def query(self) -> tuple[dict[str, float], float]:
        """One frame end to end: stage times (ms) and the query's time (ms): its messages' read
        and decode (since the previous frame) plus the detector's wall time."""
        sf = self.frames.next()
        t0 = time.perf_counter()
        _, times = self.runner.detect(sf.frame)
        t1 = time.perf_counter()
        stages = times.as_dict()
        stages["read"], stages["decode"] = sf.read_ms, sf.decode_ms
        self.last_camera_input_ms = sf.camera_ms + stages["images"]
        return stages, sf.read_ms + sf.decode_ms + (t1 - t0) * 1e3


def _trace_events(
    lane_id: int, name: str, start_us: float, stages: dict[str, float], order: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Chrome trace 'complete' events of one query's stages, laid end to end from its start
    (the runner's laps are consecutive)."""
    out, t = [], start_us
    for stage in order:
        dur = stages.get(stage, 0.0) * 1e3
        if dur > 0:
            out.append(
                {
                    "name": stage,
                    "cat": name,
                    "ph": "X",
                    "ts": t,
                    "dur": dur,
                    "pid": 1,
                    "tid": lane_id,
                }
            )
        t += dur
    return out


# -- the report ---------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b) or b == 0:
        return None
    return float(a / b)


def ratios(models: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """fusion / camera per backend and onnxruntime / torch per model, on p50 and p99."""
    out = []
    for backend in {b for m in models.values() for b in m}:
        f, c = models.get("fusion", {}).get(backend), models.get("camera", {}).get(backend)
        if f and c:
            for q in ("p50_ms", "p99_ms"):
                out.append(
                    {
                        "ratio": f"fusion / camera ({backend})",
                        "stat": q,
                        "value": _ratio(f["end_to_end"][q], c["end_to_end"][q]),
                    }
                )
    for model, lanes in models.items():
        for other in ("onnxruntime", "tensorrt"):
            if other in lanes and "torch" in lanes:
                for q in ("p50_ms", "p99_ms"):
                    out.append(
                        {
                            "ratio": f"{other} / torch ({model})",
                            "stat": q,
                            "value": _ratio(
                                lanes[other]["end_to_end"][q], lanes["torch"]["end_to_end"][q]
                            ),
                        }
                    )
    return sorted(out, key=lambda r: (r["ratio"], r["stat"]))


def _early(stream: dict[str, Any]) -> str:
    """Keyframe images decoded on the pool as they arrived, per frame, and that CPU time (no
    stage's wall time holds it: the decode stage waits only for what is left of it)."""
    n = stream.get("camera_decoded_early_per_frame")
    if n is None:
        return "-"
    return f"{n:.1f} ({stream.get('early_decode_cpu_ms_per_frame', 0.0):.1f})"


def targets(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured figure and whether it is met."""
    models = payload["models"]
    rows: list[dict[str, Any]] = []

    def add(text: str, value: float | None, limit: float, unit: str) -> None:
        met = None if value is None or not np.isfinite(value) else bool(value <= limit)
        rows.append({"target": text, "value": value, "limit": limit, "unit": unit, "met": met})

    for backend, lane in sorted(models.get("fusion", {}).items()):
        e2e = lane["end_to_end"]
        add(f"fusion p50 <= 100 ms ({backend})", e2e["p50_ms"], 100.0, "ms")
        add(
            f"fusion p99 <= 1.3 x p50 ({backend})",
            _ratio(e2e["p99_ms"], e2e["p50_ms"]),
            1.3,
            "x",
        )
        st = lane["stages"]
        dense = sum(st.get(k, {}).get("p50_ms", 0.0) or 0.0 for k in DENSE_STAGES)
        add(
            f"decode p50 <= 0.5 x the dense graphs' p50 sum ({backend}; camera_net + lidar_net"
            " + bev_net)",
            _ratio(st.get("decode", {}).get("p50_ms"), dense),
            0.5,
            "x",
        )
        cam = models.get("camera", {}).get(backend)
        if cam:
            add(
                f"fusion p50 <= 1.5 x camera p50 ({backend})",
                _ratio(e2e["p50_ms"], cam["end_to_end"]["p50_ms"]),
                1.5,
                "x",
            )
    for model, lanes in sorted(models.items()):
        if "onnxruntime" in lanes and "torch" in lanes and model == "fusion":
            add(
                f"onnxruntime p50 <= 0.8 x torch p50 ({model})",
                _ratio(
                    lanes["onnxruntime"]["end_to_end"]["p50_ms"],
                    lanes["torch"]["end_to_end"]["p50_ms"],
                ),
                0.8,
                "x",
            )
    for backend, lane in sorted(models.get("camera", {}).items()):
        six = lane.get("camera_input")
        if six is not None:
            add(
                f"read + decode + images, {lane.get('cameras', '?')} cameras <= 10 ms"
                f" (camera model, {backend}; p50 of the per-frame sum of the JPEG parts)",
                six["p50_ms"],
                10.0,
                "ms",
            )
    return rows


def _fmt(v: float | None, unit: str = "") -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.2f}{unit}"


def latency_table(payload: dict[str, Any]) -> str:
    """The console table: per model x backend, every stage's p50 and the end-to-end figures."""
    lanes = [(m, b, x) for m, bs in payload["models"].items() for b, x in bs.items()]
    stages = payload["stage_order"]
    head = f"{'p50 ms':<18}" + "".join(f"{m + '/' + b:>20}" for m, b, _ in lanes)
    lines = [head, "-" * len(head)]
    for s in stages:
        vals = [x["stages"].get(s, {}).get("p50_ms") for _, _, x in lanes]
        if any(v is not None and v > 0 for v in vals):
            lines.append(f"{s:<18}" + "".join(f"{_fmt(v):>20}" for v in vals))
    lines.append("-" * len(head))
    for k in STAT_KEYS:
        lines.append(
            f"{'e2e ' + k[:-3]:<18}" + "".join(f"{_fmt(x['end_to_end'][k]):>20}" for *_, x in lanes)
        )
    lines.append(
        f"{'frames/s':<18}" + "".join(f"{_fmt(x['throughput_fps']):>20}" for *_, x in lanes)
    )
    lines.append(
        f"{'peak RSS MB':<18}" + "".join(f"{_fmt(x['peak_rss_mb']):>20}" for *_, x in lanes)
    )
    lines.append(
        f"{'frames (warm-up)':<18}"
        + "".join(f"{str(x['frames']) + ' (' + str(x['warmup']) + ')':>20}" for *_, x in lanes)
    )
    return "\n".join(lines)


def latency_markdown(payload: dict[str, Any]) -> str:
    """The markdown report of one `fusion bench latency` JSON payload."""
    env = payload["env"]
    lanes = [(m, b, x) for m, bs in payload["models"].items() for b, x in bs.items()]
    lines = [
        "# Latency benchmark",
        "",
        f"Generated from the JSON by `fusion.bench.latency.latency_markdown`. Command: "
        f"`{payload['command']}`  ",
        f"Date: {env['date']}  ",
        f"Environment: {env_line(env)}  ",
        f"Load average (1/5/15 min) at the start {env.get('load_average_at_start')}, at the end"
        f" {env['load_average_1_5_15']}: the 2 cores are shared with other processes, so the"
        " absolute figures carry their load; the ratios come from queries interleaved in the"
        " same minutes.  ",
        f"Input: {payload['input']}",
        "",
        "## End to end (ms)",
        "",
        "| model | backend | frames | warm-up | "
        + " | ".join(k[:-3] for k in STAT_KEYS)
        + " | frames/s | peak RSS (MB) | RSS added (MB) |",
        "| --- | --- | ---: | ---: | "
        + " | ".join("---:" for _ in STAT_KEYS)
        + " | ---: | ---: | ---: |",
    ]
    for m, b, x in lanes:
        lines.append(
            f"| {m} | {b} | {x['frames']} | {x['warmup']} | "
            + " | ".join(_fmt(x["end_to_end"][k]) for k in STAT_KEYS)
            + f" | {_fmt(x['throughput_fps'])} | {_fmt(x['peak_rss_mb'])}"
            + f" | {_fmt(x.get('rss_added_mb'))} |"
        )
    lines += [
        "",
        "Peak RSS: the process's VmHWM over the build and warm-up of that model x backend (the"
        " lanes built before it stay resident); RSS added: what that build and warm-up added.",
        "",
    ]
    if all("stream" in x for *_, x in lanes):
        lines += [
            "## Input stream (fusion.sync.online.OnlineSynchronizer, per lane)",
            "",
            "| model | backend | frames built | per pass | passes | messages read / frame"
            " | decoded / frame | camera kept / frame | camera decoded / frame"
            " | of them on arrival (CPU ms / frame) | dropped | missing |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for m, b, x in lanes:
            st = x["stream"]
            dropped = ", ".join(f"{k} {v}" for k, v in st["dropped"].items())
            missing = ", ".join(f"{k} {v}" for k, v in st["missing"].items()) or "none"
            lines.append(
                f"| {m} | {b} | {st['frames_built']} | {st['frames_per_loop']} | {st['loops']}"
                f" | {st['read_per_frame']:.1f} | {st['decoded_per_frame']:.1f}"
                f" | {_fmt(st.get('camera_kept_per_frame'))}"
                f" | {st['camera_decoded_per_frame']:.1f} | {_early(st)} | {dropped} | {missing} |"
            )
        lines.append("")
    lines += ["## Stages (p50 / p99 ms)", ""]
    lines.append("| stage | " + " | ".join(f"{m} {b}" for m, b, _ in lanes) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in lanes) + " |")
    for s in payload["stage_order"]:
        cells = []
        for *_, x in lanes:
            st = x["stages"].get(s)
            cells.append("" if st is None else f"{_fmt(st['p50_ms'])} / {_fmt(st['p99_ms'])}")
        if any(cells):
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "## Ratios (same run, interleaved queries)", "", "| ratio | stat | value |"]
    lines.append("| --- | --- | ---: |")
    for r in payload["ratios"]:
        lines.append(f"| {r['ratio']} | {r['stat'][:-3]} | {_fmt(r['value'])} |")
    lines += ["", "## Targets", "", "| target | measured | met |", "| --- | ---: | --- |"]
    for t in payload["targets"]:
        met = "not measured" if t["met"] is None else ("met" if t["met"] else "NOT met")
        lines.append(f"| {t['target']} | {_fmt(t['value'], ' ' + t['unit'])} | {met} |")
    if payload.get("skipped"):
        lines += ["", "Not run: " + "; ".join(payload["skipped"])]
    lines += ["", "Analysis (thread pools, ONNX Runtime against torch, decode accuracy):"]
    lines += ["`benchmarks/latency_notes.md`."]
    return "\n".join(lines) + "\n"


def write_png(path: Path, lanes: list[Lane], order: tuple[str, ...]) -> None:
    """Latency CDF per model x backend, and a stacked bar of the mean per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for lane in lanes:
        x = np.sort(np.asarray(lane.recorder.end_to_end))
        if len(x):
            ax1.plot(x, np.arange(1, len(x) + 1) / len(x), label=f"{lane.model}/{lane.backend}")
    ax1.set_xlabel("end-to-end latency (ms)")
    ax1.set_ylabel("fraction of queries")
    ax1.set_title("latency CDF (warm-up excluded)")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    names = [f"{lane.model}\n{lane.backend}" for lane in lanes]
    bottom = np.zeros(len(lanes))
    cmap = plt.get_cmap("tab20")
    for i, stage in enumerate(order):
        means = np.array([np.mean(lane.recorder.stages.get(stage, [0.0])) for lane in lanes])
        if means.any():
            ax2.bar(names, means, bottom=bottom, label=stage, color=cmap(i % 20))
            bottom += means
    ax2.set_ylabel("mean ms per frame")
    ax2.set_title("per-stage mean")
    ax2.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- CLI ----------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fusion.model.weights import add_model_arguments

    parser.add_argument(
        "--dataroot",
        "--log",
        dest="dataroot",
        type=Path,
        required=True,
        help="the log: a nuScenes dataroot (with --generate: a moving scene written there"
        " first), a Foxglove MCAP, a ROS 2 bag folder or a ROS 1 .bag",
    )
    parser.add_argument(
        "--version",
        help="dataroot version, e.g. v1.0-mini (with a dataroot; --generate: v1.0-synth)",
    )
    parser.add_argument("--scene", help="dataroot scene (default: its only one)")
    parser.add_argument("--rig", type=Path, help="calibration for sensors the log lacks")
    parser.add_argument("--topics", type=Path, help="topic-map TOML for other ROS layouts")
    parser.add_argument(
        "--trigger",
        choices=("keyframes", "lidar"),
        default="keyframes",
        help="a frame per LIDAR keyframe, or per LIDAR scan (as fusion replay)",
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="if --dataroot holds no scene, generate a moving synthetic one there (once)",
    )
    parser.add_argument("--scene-samples", type=int, default=40, help="keyframes generated")
    add_model_arguments(parser)
    parser.add_argument("--backends", default="torch,onnxruntime")
    parser.add_argument(
        "--device",
        default="cpu",
        help="device of every backend: cpu, cuda, cuda:N or auto (fusion.engines.device)",
    )
    parser.add_argument(
        "--decode",
        choices=("reduced", "full"),
        default="reduced",
        help="JPEG decode: at reduced DCT scale (inference) or every pixel (the training path)",
    )
    parser.add_argument(
        "--min-queries",
        type=int,
        default=LOADGEN_P99_QUERIES,
        help="measured queries per model x backend (LoadGen: 662 for p99)",
    )
    parser.add_argument("--min-seconds", type=float, default=10.0, help="and at least this long")
    parser.add_argument("--warmup", type=int, default=10, help="queries counted, not measured")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 queries, 2 warm-up")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK, help="exported graphs")
    threads = parser.add_argument_group("threads (default: fusion.threads.default_threads)")
    threads.add_argument("--numba-threads", type=int, default=0, help="0: every usable core")
    threads.add_argument("--torch-threads", type=int, default=0, help="0: every usable core")
    threads.add_argument("--ort-threads", type=int, default=0, help="ORT intra-op; 0: every core")
    threads.add_argument(
        "--ort-spinning", action="store_true", help="let ORT's idle threads busy-wait"
    )
    add_json_arguments(parser, "the figures")
    parser.add_argument("--markdown-out", type=Path, help="write the markdown report here")
    parser.add_argument("--plot", type=Path, help="PNG: latency CDF and per-stage bars")
    parser.add_argument("--trace", type=Path, help="Chrome trace (chrome://tracing, Perfetto)")


def _argv_text(args: argparse.Namespace) -> str:
    parts = ["fusion bench latency"]
    for key in ("models", "backends", "decode", "min_queries", "min_seconds", "warmup"):
        parts.append(f"--{key.replace('_', '-')} {getattr(args, key)}")
    for key in ("numba_threads", "torch_threads", "ort_threads"):
        if getattr(args, key):
            parts.append(f"--{key.replace('_', '-')} {getattr(args, key)}")
    if args.ort_spinning:
        parts.append("--ort-spinning")
    parts.append(f"--dataroot {args.dataroot}")
    for key in ("version", "scene", "rig", "topics"):
        if getattr(args, key):
            parts.append(f"--{key} {getattr(args, key)}")
    if args.trigger != "keyframes":
        parts.append(f"--trigger {args.trigger}")
    if args.quick:
        parts.append("--quick")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    d = default_threads()
    threads = apply_threads(  # before any engine: pools sized, ORT sessions read it
        replace(
            d,
            numba=args.numba_threads or d.numba,
            torch=args.torch_threads or d.torch,
            ort_intra=args.ort_threads or d.ort_intra,
            ort_spinning=args.ort_spinning,
        )
    )
    from fusion.engines.runner import STAGES, Runner, open_engine
    from fusion.model.detector import variant_modalities
    from fusion.model.weights import load_detector, models_from_args

    if args.quick:
        args.min_queries, args.min_seconds, args.warmup = 20, 0.0, 2
        args.scene_samples = min(args.scene_samples, 8)
    load_at_start = machine_info()["load_average_1_5_15"]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in BACKENDS:
            raise FusionError(f"unknown backend {b!r} (known: {', '.join(BACKENDS)})")
    models = models_from_args(args)
    dataroot, version = args.dataroot, args.version

    if args.generate:
        version = version or "v1.0-synth"
        if not (dataroot / version / "sample.json").is_file():
            moving_scene(dataroot, version, args.scene_samples)
    check_version(dataroot, version)

    source = open_source(
        dataroot, version=version, scene=args.scene, rig=args.rig, topics=args.topics
    )
    lanes: list[Lane] = []
    skipped: list[str] = []
    for name, path in models.items():
        model = load_detector(path)
        modalities = variant_modalities(model.variant)
        for backend in backends:
            rss_before = current_rss_mb()
            reset_peak_rss()
            device_peak = None
            try:
                engine = open_engine(backend, model, args.work_dir, args.device)  # type: ignore[arg-type]
            except FusionError as err:
                skipped.append(f"{name}/{backend}: {err}")
                print(f"skipping {name}/{backend}: {err}", flush=True)
                continue
            cuda = args.device.startswith("cuda") and backend != "onnxruntime"
            if cuda:
                import torch

                torch.cuda.reset_peak_memory_stats()
            lane = Lane(
                name,
                backend,
                Runner(model.cfg, model.variant, engine, model.params),
                StreamFrames(source, model.cfg, modalities, args.decode, args.trigger),
                LatencyRecorder(args.warmup),
            )
            lane.engine_settings = getattr(engine, "settings", lambda: None)()
            for _ in range(args.warmup):  # counted, not measured
                lane.recorder.add(*lane.query())
            lane.peak_rss_mb = peak_rss_mb()
            lane.rss_added_mb = current_rss_mb() - rss_before
            if cuda:
                device_peak = torch.cuda.max_memory_allocated() / 2**20
            lane.peak_device_mb = device_peak
            lanes.append(lane)
            print(
                f"built {name}/{backend}: peak RSS {lane.peak_rss_mb:.0f} MB"
                f" ({lane.rss_added_mb:+.0f} MB)",
                flush=True,
            )
    if not lanes:
        raise FusionError("no model/backend could run: " + "; ".join(skipped))
    trace: list[dict[str, Any]] = []
    t_origin = time.perf_counter()
    t_start = time.perf_counter()
    while True:
        for lane_id, lane in enumerate(lanes):
            start_us = (time.perf_counter() - t_origin) * 1e6
            stages, e2e = lane.query()
            lane.recorder.add(stages, e2e)
            lane.camera_input_ms.append(lane.last_camera_input_ms)
            lane.wall_ms += e2e
            if args.trace:
                trace += _trace_events(
                    lane_id, f"{lane.model}/{lane.backend}", start_us, stages, STAGES
                )
        done = min(lane.recorder.frames for lane in lanes)
        if done >= args.min_queries and time.perf_counter() - t_start >= args.min_seconds:
            break
        if done and done % 50 == 0:
            print(f"  {done} queries per model x backend", flush=True)
    env = machine_info()
    env["load_average_at_start"] = load_at_start
    env["thread_settings"] = threads.as_dict()
    env["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "unset")
    env["precision"] = ", ".join(
        sorted({str(getattr(lane.runner.engine, "precision", "fp32")) for lane in lanes})
    )
    env["execution_provider"] = ", ".join(
        sorted(
            {
                ",".join(lane.engine_settings["providers"])
                if lane.engine_settings
                else f"torch {args.device}"
                for lane in lanes
            }
        )
    )
    ort = next((lane.engine_settings for lane in lanes if lane.engine_settings), None)
    if ort:
        env["onnxruntime_session"] = ort
    env["config"] = lanes[0].runner.cfg.name
    env["decode"] = args.decode
    out_models: dict[str, dict[str, Any]] = {}
    for lane in lanes:
        summary = lane.recorder.summary(STAGES)
        entry = {
            "frames": summary["frames"],
            "warmup": summary["warmup"],
            "peak_rss_mb": round(lane.peak_rss_mb, 1),
            "rss_added_mb": round(lane.rss_added_mb, 1),
            "end_to_end": summary["end_to_end"],
            "stages": summary["stages"],
            "throughput_fps": 1e3 * lane.recorder.frames / lane.wall_ms if lane.wall_ms else None,
            "peak_device_mb": lane.peak_device_mb,
            "stream": lane.frames.stats(),
        }
        if "camera" in variant_modalities(lane.runner.variant) and lane.camera_input_ms:
            entry["camera_input"] = latency_stats(lane.camera_input_ms)
            entry["cameras"] = len(lane.runner.cfg.camera.channels)
        out_models.setdefault(lane.model, {})[lane.backend] = entry
    payload: dict[str, Any] = {
        "env": env,
        "models": out_models,
        "command": _argv_text(args),
        "input": input_text(source, lanes, args.decode),
        "stage_order": list(STAGES),
        "skipped": skipped,
    }
    payload["ratios"] = ratios(out_models)
    payload["targets"] = targets(payload)
    if not emit_json(args, payload):
        print(env_line(env))
        print(latency_table(payload))
        for r in payload["ratios"]:
            print(f"  {r['ratio']:<32} {r['stat'][:-3]:<4} {_fmt(r['value'])}")
        for t in payload["targets"]:
            met = "not measured" if t["met"] is None else ("met" if t["met"] else "NOT met")
            print(f"  {t['target']:<72} {_fmt(t['value'], ' ' + t['unit']):>12}  {met}")
    if args.markdown_out:
        args.markdown_out.parent.mkdir(parents=True, exist_ok=True)
        args.markdown_out.write_text(latency_markdown(payload))
    if args.plot:
        write_png(args.plot, lanes, STAGES)
    if args.trace:
        args.trace.parent.mkdir(parents=True, exist_ok=True)
        args.trace.write_text(json.dumps({"traceEvents": trace, "displayTimeUnit": "ms"}))
    return 0
