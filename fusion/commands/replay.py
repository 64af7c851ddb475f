"""`fusion replay`: replay a recorded drive through the detector at the log's pace (the runner is
`fusion.replay.runner`)."""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from fusion.commands.arguments import add_json_arguments, add_pose_arguments, emit_json
from fusion.data.rig_file import localization_from_rig
from fusion.engines.base import add_backend_argument
from fusion.engines.device import resolve_backend
from fusion.engines.runner import Runner, open_engine
from fusion.localization.pose_source import POSE_SOURCE_TEXT
from fusion.model.weights import load_detector, resolve_weights
from fusion.outputs.sinks import DetectionsJsonl, McapSink, RerunSink, ResultsJson, Sink
from fusion.postprocess.results import results_meta
from fusion.replay.faults import Faults
from fusion.replay.runner import LIDAR_PERIOD_MS, ReplayOptions, ReplayRun, ReplaySummary, replay
from fusion.sources import check_version, open_source
from fusion.stats import latency_stats
from fusion.threads import apply_threads


def format_summary(s: ReplaySummary) -> str:
    lines = [
        f"replay of {s.source} at rate {s.rate:g}: {s.log_s:.2f} s of log in {s.wall_s:.2f} s"
        + (f" (producer {s.producer_s:.2f} s)" if s.producer_s else ""),
        f"backend {s.backend}  decode {s.decode}  between {s.between}  radar {s.radar_match}"
        f"  camera {s.camera_match}"
        + ("" if s.log_delay_ms is None else f"  log delay {s.log_delay_ms:g} ms")
        + f"  early start {'on' if s.early_start else 'off'}  warm start"
        f" {s.warmup_s:.2f} s (before the clock, not in the figures below)",
        *(
            [
                f"keep warm: {s.warm_runs} detector runs on the last frame through idle gaps"
                f" (outputs discarded; {s.warm_delayed} frames waited for one)"
            ]
            if s.keep_warm
            else []
        ),
        f"triggers {s.triggers}  processed {s.processed}  dropped {s.dropped} "
        f"({', '.join(f'{k} {v}' for k, v in s.dropped_by.items())})  late {s.late}",
        "latency ms (end to end): "
        + "  ".join(f"{k} {v:.1f}" for k, v in s.latency_ms.items() if not math.isnan(v))
        + ("" if math.isnan(s.first_frame_ms) else f"  first frame {s.first_frame_ms:.1f}"),
        "sync_wait_ms: "
        + "  ".join(f"{k} {v:.1f}" for k, v in s.sync_wait_ms.items() if not math.isnan(v))
        + (
            "  (work started after: "
            + "  ".join(f"{k} {v:.1f}" for k, v in s.start_wait_ms.items() if not math.isnan(v))
            + ")"
            if s.early_start and s.start_wait_ms
            else ""
        ),
        f"peak RSS {s.peak_rss_mb:.0f} MB",
        f"ego poses: {POSE_SOURCE_TEXT.get(s.pose_source, s.pose_source)}"
        + (
            " (rejected: " + ", ".join(f"{k} {v}" for k, v in s.pose_rejected.items()) + ")"
            if s.pose_rejected
            else ""
        ),
    ]
    if s.pose_calibration:
        lines.append(f"pose calibration: {s.pose_calibration}")
    chans = sorted(set(s.received) | set(s.missing))
    if chans:
        lines.append(f"{'channel':<20}{'received':>10}{'rejected':>10}{'missing':>10}")
        for ch in chans:
            lines.append(
                f"{ch:<20}{s.received.get(ch, 0):>10}{s.rejected.get(ch, 0):>10}"
                f"{s.missing.get(ch, 0):>10}"
            )
    if s.stages_ms:
        lines.append(f"{'stage':<20}{'p50 ms':>10}{'p99 ms':>10}")
        for st, v in s.stages_ms.items():
            if v["p99"] > 0:
                lines.append(f"{st:<20}{v['p50']:>10.1f}{v['p99']:>10.1f}")
    if s.absent_sweeps:
        lines.append(
            f"{sum(s.absent_sweeps.values()):,} sweeps absent (files not on disk, keyframes-only "
            "layout; not replayed): "
            + ", ".join(f"{ch} {n:,}" for ch, n in s.absent_sweeps.items())
        )
    if s.shed:
        lines.append(
            "shed (stale, the producer behind the log): "
            + ", ".join(f"{ch} {n}" for ch, n in s.shed.items())
        )
    if s.reused:
        lines.append(
            "frames with a neighbour's message (reused): "
            + ", ".join(f"{ch} {n}" for ch, n in s.reused.items())
        )
    if any(s.faults.values()):
        lines.append("faults injected: " + ", ".join(f"{k} {v}" for k, v in s.faults.items()))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataroot",
        "--log",
        dest="source",
        type=Path,
        required=True,
        help="the log: a nuScenes dataroot (with --version), a Foxglove MCAP, a ROS 2 bag "
        "folder or a ROS 1 .bag",
    )
    parser.add_argument("--version", help="dataroot version, e.g. v1.0-mini (with a dataroot)")
    parser.add_argument("--scene", help="dataroot scene name")
    parser.add_argument(
        "--rig",
        type=Path,
        help="calibration for sensors the log lacks; its [gnss] section gives the pose "
        "estimator's antenna lever arm and fix latency",
    )
    parser.add_argument("--topics", type=Path, help="topic-map TOML for other ROS layouts")
    parser.add_argument("--model", default="fusion", choices=("fusion", "camera", "lidar"))
    parser.add_argument("--weights", type=Path, help="folder with <model>.safetensors")
    add_backend_argument(parser, default="auto")
    parser.add_argument(
        "--decode",
        default="reduced",
        choices=("reduced", "full"),
        help="camera JPEGs at the DCT scale the network input allows (default), or every pixel",
    )
    parser.add_argument("--rate", type=float, default=1.0, help="log speed; 0: as fast as possible")
    parser.add_argument("--trigger", default="keyframes", choices=("keyframes", "lidar"))
    parser.add_argument(
        "--between",
        default="reuse",
        choices=("reuse", "none"),
        help="a trigger with no camera or radar message of its own (a 12 Hz camera against"
        " 20 Hz LIDAR triggers): reuse the newest within tolerance, marked (default), or none",
    )
    parser.add_argument(
        "--radar-match",
        default="nearest",
        choices=("nearest", "causal"),
        help="a trigger's own radar scan: the nearest to it (default; a trigger waits for a scan"
        " stamped after it, up to 37 ms on nuScenes), or the newest at or before it (no wait;"
        " the scan is up to one radar period old): benchmarks/sync_wait.md",
    )
    parser.add_argument(
        "--camera-match",
        default="nearest",
        choices=("nearest", "causal"),
        help="a trigger's own camera image: the nearest to it (default; with --trigger lidar a"
        " trigger waits about one LIDAR period, since an image stamped after it may still be"
        " its own), or the newest at or before it (or up to 3 ms after it), the scan it fired"
        " for on a rig whose LIDAR triggers the cameras, as nuScenes' does (a keyframe still"
        " takes the images marked for it): benchmarks/sync_wait.md",
    )
    parser.add_argument(
        "--log-delay-ms",
        type=float,
        default=None,
        help="the most any message of the log is logged after its stamp (0 for a log written"
        " by `fusion convert --log-time sensor`; a dataroot states 0 itself). With it a causal"
        " match is final once the log is heard past the trigger plus this delay (no wait for a"
        " camera that skipped the trigger); without it, once the sensor's period or a later"
        " message shows it",
    )
    parser.add_argument(
        "--no-early-start",
        action="store_true",
        help="at --rate > 0, wait for a frame's radar scans before starting its camera and"
        " LIDAR work (by default that work overlaps the wait for a scan stamped after the"
        " trigger; the detections are the same)",
    )
    parser.add_argument(
        "--no-warm-start", action="store_true", help="start the clock with a cold engine"
    )
    parser.add_argument(
        "--no-keep-warm",
        action="store_true",
        help="at --rate > 0, let the detector idle between frames (by default, through an idle"
        " gap it runs once more on the last frame just before the next is due, so that the"
        " frame does not pay the machine's return from idle; the runs are counted)",
    )
    parser.add_argument("--budget-ms", type=float, default=LIDAR_PERIOD_MS)
    parser.add_argument("--start", type=float, default=0.0, help="s into the log")
    parser.add_argument("--duration", type=float, help="s of log to replay")
    parser.add_argument("--loop", type=int, default=1)
    parser.add_argument("--faults", help="drop=P,corrupt=P,delay_ms=D,seed=K")
    parser.add_argument("--detections", type=Path, help="JSON lines, one per processed trigger")
    parser.add_argument("--results", type=Path, help="nuScenes results JSON of the keyframes")
    parser.add_argument("--mcap", type=Path, help="Foxglove MCAP: boxes, points, images, tf")
    parser.add_argument("--rerun", type=Path, help="a rerun recording (.rrd)")
    add_json_arguments(parser, "the run's summary")
    parser.add_argument(
        "--summary", type=Path, dest="json_out", help="the same as --json-out (its former name)"
    )
    add_pose_arguments(parser)
    parser.add_argument("--no-status", action="store_true", help="no live status line")


def run(args: argparse.Namespace) -> int:
    check_version(args.source, args.version)
    apply_threads()  # the pool sizes of fusion.threads, before any engine is built
    rig_calibration = None if args.rig is None else localization_from_rig(args.rig)
    options = ReplayOptions(
        rate=args.rate,
        trigger=args.trigger,
        budget_ms=args.budget_ms,
        start_s=args.start,
        duration_s=args.duration,
        loop=args.loop,
        faults=Faults.parse(args.faults),
        decode=args.decode,
        between=args.between,
        radar_match=args.radar_match,
        camera_match=args.camera_match,
        log_delay_ms=args.log_delay_ms,
        early_start=not args.no_early_start,
        warm_start=not args.no_warm_start,
        keep_warm=not args.no_keep_warm,
        poses=args.poses,
        localization=None if rig_calibration is None else rig_calibration[0],
        map_origin=None if rig_calibration is None else rig_calibration[1],
        pose_calibration="" if args.rig is None else f"rig {args.rig} [gnss]",
        gnss_latency_sigma_s=args.gnss_latency_sigma,
    )
    source = open_source(
        args.source, version=args.version, scene=args.scene, rig=args.rig, topics=args.topics
    )
    path = resolve_weights([args.model], args.weights, [])[args.model]
    model = load_detector(path)
    # exported graphs next to the outputs, else in a temporary folder (never the working one)
    out = args.json_out or args.detections or args.results or args.mcap or args.rerun
    scratch = None if out else tempfile.TemporaryDirectory(prefix="fusion-replay-")
    work = Path(scratch.name) if scratch else Path(out).parent / "engines"
    engine = open_engine(resolve_backend(args.backend), model, work)  # type: ignore[arg-type]
    if scratch is not None:
        scratch.cleanup()  # the engine has loaded its graphs
    runner = Runner(model.cfg, model.variant, engine, model.params)
    sinks: list[Sink] = []
    if args.detections:
        sinks.append(DetectionsJsonl(args.detections))
    if args.results:
        sinks.append(ResultsJson(args.results, results_meta(model.modalities)))
    if args.mcap:
        sinks.append(McapSink(args.mcap, model.cfg))
    if args.rerun:
        sinks.append(RerunSink(args.rerun))
    status = None if args.no_status or args.json else _StatusLine()
    try:
        summary = replay(source, runner, options, sinks, status)
    finally:
        if status is not None:
            status.close()
    if not emit_json(args, summary.as_json()):
        print(format_summary(summary))
    return 0


class _StatusLine:
    """A live line (rich) with rate, drops and p99, refreshed at most 4 times a second."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(stderr=True)
        self._live = Live("", console=self._console, refresh_per_second=4, transient=True)
        self._live.start()
        self._t0 = time.monotonic()

    def __call__(self, run: ReplayRun) -> None:
        s = run.summary
        lat = run.recorder.end_to_end
        p99 = latency_stats(lat[-200:])["p99_ms"]  # the last 200 processed triggers
        elapsed = max(time.monotonic() - self._t0, 1e-6)
        self._live.update(
            f"processed {s.processed} ({s.processed / elapsed:.1f}/s)  "
            f"dropped {run.busy_dropped + run.sync.counters.overflow + run.sync.counters.no_pose}"
            f"  late {s.late}  p99 {p99:.0f} ms"
        )

    def close(self) -> None:
        self._live.stop()
