"""`fusion bench replay`: one log replayed at the car's pace with each model, side by side, and
the same model timed by `fusion bench latency`'s loop in the same run.

For every model, on one engine (`--backend`, default `auto`: the engine `fusion replay` picks)
and decode (`--decode`, default `reduced`): a replay per trigger of `--triggers` (default
`keyframes,lidar`) with replay's default options (warm start included), then `--queries`
frames of the same log through `fusion.sync.ingest.StreamFrames` (the same ingest pump,
cycled; read + decode + detector, as `bench latency` times a query). The issue's targets are
ratios of the two: replay end to end p50 at the keyframe trigger against the benchmark's p50;
the first processed frame against the replay's p50; at the LIDAR trigger, wall time against log
time and end-to-end p99 against the benchmark's p99. Results go to `--json-out`,
`--markdown-out` (generated from the JSON, also by `--from-json`) and `--plot`.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from fusion.commands.arguments import add_json_arguments, emit_json
from fusion.engines.device import resolve_backend
from fusion.errors import FusionError
from fusion.machine import machine_info
from fusion.sources import check_version, open_source
from fusion.stats import latency_stats
from fusion.sync.ingest import StreamFrames
from fusion.threads import apply_threads

MODELS = ("fusion", "camera", "lidar")


# the idle time before each detector query of the idle-gap measurement: a keyframe period less
# a typical inference, what the detector sleeps between keyframe triggers in a replay at rate 1
IDLE_GAP_S = 0.45


def bench_latency(
    source: Any,
    runner: Any,
    decode: str,
    queries: int,
    warmup: int = 2,
    idle_queries: int = 8,
    idle_gap_s: float = IDLE_GAP_S,
) -> dict:
    """`queries` frames of the log through `StreamFrames` (cycled), each timed as `fusion bench
    latency` times a query: its messages' read and decode plus the detector, back to back. Then
    `idle_queries` more frames whose detector runs after `idle_gap_s` of sleep, as a paced
    replay's detector does between keyframe triggers: the machine's idle-to-busy cost (cores
    and caches gone cold), which the back-to-back loop cannot show. ms statistics."""

    frames = StreamFrames(source, runner.cfg, runner.modalities, decode)  # type: ignore[arg-type]
    e2e, detect, after_idle = [], [], []
    for k in range(warmup + queries + idle_queries):
        sf = frames.next()
        idle = k >= warmup + queries
        if idle:
            time.sleep(idle_gap_s)
        t0 = time.perf_counter()
        runner.detect(sf.frame)
        ms = (time.perf_counter() - t0) * 1e3
        if idle:
            after_idle.append(ms)
        elif k >= warmup:
            e2e.append(sf.read_ms + sf.decode_ms + ms)
            detect.append(ms)
    return {
        "queries": queries,
        "warmup": warmup,
        "end_to_end": latency_stats(e2e),
        "detector": latency_stats(detect),
        "idle_gap_s": idle_gap_s,
        "idle_queries": len(after_idle),
        "detector_after_idle": latency_stats(after_idle) if after_idle else None,
    }


def measure(
    source_path: Path,
    version: str | None,
    scene: str | None,
    models: list[str],
    rate: float,
    triggers: list[str],
    loop: int,
    backend: str = "auto",
    decode: str = "reduced",
    queries: int = 20,
    work_dir: Path = Path("out/bench-replay"),
    radar_match: str = "nearest",
    early_start: bool = True,
    camera_match: str = "nearest",
    log_delay_ms: float | None = None,
    keep_warm: bool = True,
) -> dict[str, Any]:
    from fusion.engines.runner import Runner, open_engine
    from fusion.model.weights import load_detector, packaged_weights
    from fusion.outputs.sinks import Processed
    from fusion.replay.runner import ReplayOptions, replay

    class Timeline:
        def __init__(self) -> None:
            self.points: list[tuple[float, float, bool]] = []  # (log s, latency ms, late)

        def write(self, item: Processed) -> None:
            self.points.append((item.frame.timestamp_us * 1e-6, item.latency_ms, item.late))

        def close(self) -> None:
            pass

    def source() -> Any:
        return open_source(source_path, version=version, scene=scene)

    out: dict[str, Any] = {}
    engine_name = resolve_backend(backend)
    for name in models:
        model = load_detector(packaged_weights(name))
        engine = open_engine(engine_name, model, work_dir)  # type: ignore[arg-type]
        runner = Runner(model.cfg, model.variant, engine, model.params)
        entry: dict[str, Any] = {
            "backend": engine_name,
            "decode": decode,
            "radar_match": radar_match,
            "camera_match": camera_match,
            "log_delay_ms": log_delay_ms,
            "early_start": early_start,
            "keep_warm": keep_warm,
            "replays": {},
        }
        for trigger in triggers:
            timeline = Timeline()
            options = ReplayOptions(
                rate=rate,
                trigger=trigger,  # type: ignore[arg-type]
                loop=loop,
                decode=decode,  # type: ignore[arg-type]
                radar_match=radar_match,  # type: ignore[arg-type]
                camera_match=camera_match,  # type: ignore[arg-type]
                log_delay_ms=log_delay_ms,
                early_start=early_start,
                keep_warm=keep_warm,
            )
            summary = replay(source(), runner, options, [timeline])
            t0 = min((p[0] for p in timeline.points), default=0.0)
            entry["replays"][trigger] = {
                "summary": summary.as_json(),
                "timeline": [
                    [round(t - t0, 4), round(ms, 2), late] for t, ms, late in timeline.points
                ],
            }
        entry["bench_latency"] = bench_latency(
            source(), runner, decode, queries, idle_queries=min(8, queries)
        )
        out[name] = entry
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b) or b == 0:
        return None
    return a / b


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's replay targets, per model: each with its figure and whether it is met."""
    rows: list[dict[str, Any]] = []

    def add(text: str, value: float | None, limit: float, unit: str = "x") -> None:
        met = None if value is None else bool(value <= limit)
        rows.append({"target": text, "value": value, "limit": limit, "unit": unit, "met": met})

    for name, r in result["models"].items():
        bench = r["bench_latency"]["end_to_end"]
        kf = r["replays"].get("keyframes", {}).get("summary")
        if kf:
            add(
                f"replay e2e p50 (rate 1, keyframes) <= 1.15 x bench latency e2e p50 ({name})",
                _ratio(kf["latency_ms"]["p50"], bench["p50_ms"]),
                1.15,
            )
            add(
                f"first processed frame <= 2 x replay p50 ({name}, keyframes)",
                _ratio(kf["first_frame_ms"], kf["latency_ms"]["p50"]),
                2.0,
            )
            add(f"no drop at the keyframe rate ({name})", float(kf["dropped"]), 0.0, "dropped")
        li = r["replays"].get("lidar", {}).get("summary")
        if li:
            add(
                f"producer wall time / log time - 1 <= 5 % (rate 1, lidar trigger, {name})",
                None
                if not li["log_s"] or not li.get("producer_s")
                else abs(li["producer_s"] / li["log_s"] - 1.0) * 100,
                5.0,
                "%",
            )
            add(
                f"replay e2e p99 (rate 1, lidar trigger) <= 2 x bench latency p99 ({name})",
                _ratio(li["latency_ms"]["p99"], bench["p99_ms"]),
                2.0,
            )
            add(
                f"every trigger processed or counted dropped (lidar trigger, {name})",
                float(li["triggers"] - li["processed"] - li["dropped"]),
                0.0,
                "uncounted",
            )
    return rows


def _f(v: float | None, fmt: str = ".0f") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, fmt)


def _matches(entry: dict[str, Any]) -> str:
    """The radar and camera matches when they are not the default nearest (older results have
    none), and the early start when it was turned off."""
    out = ""
    for sensor in ("radar", "camera"):
        match = entry.get(f"{sensor}_match", "nearest")
        out += "" if match == "nearest" else f", {sensor} {match}"
    if entry.get("log_delay_ms") is not None:
        out += f", log delay {entry['log_delay_ms']:g} ms"
    return out + ("" if entry.get("early_start", True) else ", no early start")


def _keep_warm(summary: dict[str, Any]) -> str:
    """`KeepWarm`'s runs and the frames that waited for one; off (results before it: off)."""
    if not summary.get("keep_warm"):
        return "off"
    return f"{summary['warm_runs']} ({summary['warm_delayed']})"


def to_markdown(result: dict[str, Any]) -> str:
    env = result["env"]
    lines = [
        "# Replay at the car's pace",
        "",
        "Generated from the JSON by `fusion.bench.replay.to_markdown`. Command:"
        f" `{result['command']}`  ",
        f"Log: `{result['source']}` ({result.get('input', '')}), rate {result['rate']:g},"
        f" loops {result['loop']}.  ",
        f"Machine: {env['cpu']}, {env['cores']} cores, load average "
        f"{' '.join(f'{x:.2f}' for x in env['load_average_1_5_15'])}; {env['date']}. The 2 cores"
        " are shared with other jobs: absolute times carry their load, the ratios come from the"
        " same minutes.",
        "",
        "| model | backend | decode | trigger | triggers | processed | dropped (busy, stale) |"
        " late | e2e p50 ms | p99 ms | max ms | first frame ms | sync wait p50 / p99 ms |"
        " work started after p50 / p99 ms | warm start s | keep-warm runs (frames delayed) |"
        " producer s | wall s | log s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["models"].items():
        for trigger, rep in r["replays"].items():
            s = rep["summary"]
            lat, w, d = s["latency_ms"], s.get("sync_wait_ms", {}), s["dropped_by"]
            sw = s.get("start_wait_ms") or {}
            lines.append(
                f"| {name} | {r['backend']} | {r['decode']}{_matches(r)} | {trigger}"
                f" | {s['triggers']}"
                f" | {s['processed']} | {s['dropped']} ({d.get('busy', 0)}, {d.get('stale', 0)})"
                f" | {s['late']} | {_f(lat['p50'])} | {_f(lat['p99'])} | {_f(lat['max'])}"
                f" | {_f(s.get('first_frame_ms'))}"
                f" | {_f(w.get('p50'), '.1f')} / {_f(w.get('p99'), '.1f')}"
                f" | {_f(sw.get('p50'), '.1f')} / {_f(sw.get('p99'), '.1f')}"
                f" | {_f(s.get('warmup_s'), '.1f')} | {_keep_warm(s)}"
                f" | {_f(s.get('producer_s'), '.2f')}"
                f" | {s['wall_s']:.2f} | {s['log_s']:.2f} |"
            )
    lines += [
        "",
        "## The same models through `bench latency`'s loop (same run, same engine)",
        "",
        "| model | queries | e2e p50 ms | e2e p99 ms | detector p50 ms | detector p50 ms after an"
        " idle gap (queries) | after idle / back to back |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["models"].items():
        b = r["bench_latency"]
        idle = b.get("detector_after_idle") or {}
        gap = f"{b['idle_gap_s']:.2f} s: " if b.get("idle_gap_s") else ""
        lines.append(
            f"| {name} | {b['queries']} | {_f(b['end_to_end']['p50_ms'])}"
            f" | {_f(b['end_to_end']['p99_ms'])} | {_f(b['detector']['p50_ms'])}"
            f" | {gap}{_f(idle.get('p50_ms'))} ({b.get('idle_queries', 0)})"
            f" | {_f(_ratio(idle.get('p50_ms'), b['detector']['p50_ms']), '.2f')} |"
        )
    lines += [
        "",
        "The idle-gap column runs the same detector on frames of the same log after sleeping "
        "the gap before each, as it sleeps between keyframe triggers in a replay at rate 1 "
        "(the back-to-back loop never idles): what the machine's return from idle adds to a "
        "paced frame.",
    ]
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---:|---|"]
    for t in result.get("targets", []):
        met = "not measured" if t["met"] is None else ("met" if t["met"] else "NOT met")
        lines.append(f"| {t['target']} | {_f(t['value'], '.2f')} {t['unit']} | {met} |")
    lines += [
        "",
        "`latency` is end to end on the replay clock: from the trigger's sensor time to its "
        "detections out, so it includes the wait for the other sensors (`sync wait`, at most the "
        "budget) and any time the frame waited for the detector. `work started after`: with the "
        "early start (the default at rate > 0), a frame's decode, camera and LIDAR work begins "
        "once only its radar scans are not final, and the radars join before the BEV graph; the "
        "rest of the sync wait overlaps that work (the same detections). `late`: detections out "
        "after trigger time + budget (default 50 ms, the LIDAR period). `dropped`: replaced in the "
        "one-frame mailbox while the detector was busy (latest wins), or shed as stale by a "
        "producer behind the log. Invariant: processed + dropped = triggers. `warm start`: "
        "the engine built and one frame of the log run before the clock (not in the figures). "
        "`keep-warm runs`: through each idle gap between frames, the detector ran once more on "
        "the last frame (output discarded) just before the next was due, so that the frame does "
        "not pay the machine's return from idle (`fusion.replay.runner.KeepWarm`); `frames "
        "delayed`: frames that arrived during such a run and waited for it. "
        "`producer s`: the producer's wall time from the log's first message to its last (the "
        "pace target); `wall s` adds the last frame still in the detector when the log ends.",
        "",
        f"![latency over time]({Path(result['plot']).name})" if result.get("plot") else "",
        "",
        "The camera-geometry choice (ego motion between camera and LIDAR times) and the 10-minute "
        "`--loop` soak are in `replay_notes.md`.",
    ]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=110)
    colors = {"fusion": "tab:red", "camera": "tab:blue", "lidar": "tab:orange"}
    for name, r in result["models"].items():
        for trigger, rep in r["replays"].items():
            pts = rep["timeline"]
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    "o-" if trigger == "keyframes" else ".:",
                    ms=3,
                    lw=0.8,
                    color=colors.get(name),
                    label=f"{name}, {trigger} ({rep['summary']['processed']} processed, "
                    f"{rep['summary']['dropped']} dropped)",
                )
    ax.axhline(result["budget_ms"], color="k", ls="--", lw=0.8, label="budget")
    ax.set_xlabel("log time (s)")
    ax.set_ylabel("end-to-end latency (ms)")
    ax.set_title(f"replay at {result['rate']:g}x")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataroot",
        "--log",
        dest="source",
        type=Path,
        help="the log: a nuScenes dataroot (with --version), a Foxglove MCAP, a ROS 2 bag "
        "folder or a ROS 1 .bag",
    )
    parser.add_argument(
        "--from-json", type=Path, help="regenerate the markdown from a results JSON, run nothing"
    )
    parser.add_argument("--version", help="dataroot version, e.g. v1.0-mini (with a dataroot)")
    parser.add_argument("--scene")
    parser.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated: " + ",".join(MODELS)
    )
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument(
        "--triggers", default="keyframes,lidar", help="one replay per trigger (keyframes, lidar)"
    )
    parser.add_argument("--loop", type=int, default=1)
    parser.add_argument("--backend", default="auto", help="auto, torch, onnxruntime, tensorrt")
    parser.add_argument("--decode", default="reduced", choices=("reduced", "full"))
    parser.add_argument(
        "--radar-match",
        default="nearest",
        choices=("nearest", "causal"),
        help="as fusion replay --radar-match: each radar's nearest scan (default) or its newest "
        "at or before the trigger (no wait for a later scan)",
    )
    parser.add_argument(
        "--camera-match",
        default="nearest",
        choices=("nearest", "causal"),
        help="as fusion replay --camera-match: each camera's nearest image (default) or its "
        "newest at or before the trigger",
    )
    parser.add_argument(
        "--log-delay-ms",
        type=float,
        default=None,
        help="as fusion replay --log-delay-ms: the most a message is logged after its stamp",
    )
    parser.add_argument(
        "--no-early-start",
        action="store_true",
        help="as fusion replay --no-early-start: a frame's work waits for its radar scans",
    )
    parser.add_argument(
        "--no-keep-warm",
        action="store_true",
        help="as fusion replay --no-keep-warm: the detector idles between frames",
    )
    parser.add_argument("--queries", type=int, default=20, help="bench latency queries per model")
    parser.add_argument("--work-dir", type=Path, default=Path("out/bench-replay"))
    add_json_arguments(parser, "the results")
    parser.add_argument("--markdown-out", type=Path, help="results markdown")
    parser.add_argument("--plot", type=Path, help="latency-over-time PNG")


def run(args: argparse.Namespace) -> int:
    import sys

    from fusion.replay.runner import LIDAR_PERIOD_MS

    if args.from_json:
        result = json.loads(args.from_json.read_text())
        text = to_markdown(result)
        if not emit_json(args, result):
            print(text)
        if args.markdown_out:
            args.markdown_out.write_text(text)
        return 0
    if args.source is None:
        raise FusionError("give --dataroot or --log to replay (or --from-json RESULTS)")

    check_version(args.source, args.version)
    apply_threads()  # as `fusion replay` does, before any engine is built

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    triggers = [t.strip() for t in args.triggers.split(",") if t.strip()]
    src = open_source(args.source, version=args.version, scene=args.scene)
    cams = [c.camera for c in src.rig().sensors.values() if c.camera is not None]
    size = f"{cams[0].width}x{cams[0].height} images" if cams else "no cameras"
    info = src.info()
    result: dict[str, Any] = {
        "command": "fusion bench replay " + " ".join(sys.argv[3:]),
        "source": str(args.source),
        "input": f"{info['kind']}, {size}, {info.get('duration_s', 0):.1f} s of log",
        "rate": args.rate,
        "triggers": triggers,
        "loop": args.loop,
        "budget_ms": LIDAR_PERIOD_MS,
        "env": machine_info(),
        "models": measure(
            args.source,
            args.version,
            args.scene,
            models,
            args.rate,
            triggers,
            args.loop,
            args.backend,
            args.decode,
            args.queries,
            args.work_dir,
            args.radar_match,
            not args.no_early_start,
            args.camera_match,
            args.log_delay_ms,
            not args.no_keep_warm,
        ),
    }
    result["targets"] = targets(result)
    if args.plot:
        result["plot"] = str(plot(result, args.plot))
    text = to_markdown(result)
    if not emit_json(args, result):
        print(text)
    if args.markdown_out:
        args.markdown_out.parent.mkdir(parents=True, exist_ok=True)
        args.markdown_out.write_text(text)
    return 0
