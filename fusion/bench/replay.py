"""`fusion bench replay`: one log replayed at the car's pace with each model, side by side.

For every model: triggers, processed, dropped, late and end-to-end latency (p50, p99) from
`fusion.replay`, and a picture of latency over the log's time (a dot per processed trigger;
the gaps are the dropped ones). Results go to `--json-out`, `--markdown-out` and `--plot`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

MODELS = ("fusion", "camera", "lidar")


def measure(
    source_path: Path,
    version: str | None,
    scene: str | None,
    models: list[str],
    rate: float,
    trigger: str,
    loop: int,
) -> dict[str, Any]:
    from fusion.engines.runner import Runner
    from fusion.engines.torch_engine import TorchEngine
    from fusion.model.weights import load_detector, packaged_weights
    from fusion.replay import ReplayOptions, replay
    from fusion.replay_outputs import Processed
    from fusion.sources import open_source

    class Timeline:
        def __init__(self) -> None:
            self.points: list[tuple[float, float, bool]] = []  # (log s, latency ms, late)

        def write(self, item: Processed) -> None:
            self.points.append((item.frame.timestamp_us * 1e-6, item.latency_ms, item.late))

        def close(self) -> None:
            pass

    out: dict[str, Any] = {}
    for name in models:
        model = load_detector(packaged_weights(name))
        runner = Runner(model.cfg, model.variant, TorchEngine(model), model.params)
        timeline = Timeline()
        source = open_source(source_path, version=version, scene=scene)
        options = ReplayOptions(rate=rate, trigger=trigger, loop=loop)  # type: ignore[arg-type]
        summary = replay(source, runner, options, [timeline])
        t0 = min((p[0] for p in timeline.points), default=0.0)
        out[name] = {
            "summary": summary.as_json(),
            "timeline": [[round(t - t0, 4), round(ms, 2), late] for t, ms, late in timeline.points],
        }
    return out


def to_markdown(result: dict[str, Any]) -> str:
    env = result["env"]
    lines = [
        "# Replay at the car's pace",
        "",
        f"Command: `{result['command']}`  ",
        f"Log: `{result['source']}`, rate {result['rate']:g}, trigger `{result['trigger']}`, "
        f"loops {result['loop']}.  ",
        f"Machine: {env['cpu']}, {env['cores']} cores, load average "
        f"{' '.join(f'{x:.2f}' for x in env['load_average_1_5_15'])}; {env['date']}.",
        "",
        "| model | triggers | processed | dropped | late | p50 ms | p99 ms | max ms | wall s "
        "| log s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["models"].items():
        s = r["summary"]
        lat = s["latency_ms"]
        lines.append(
            f"| {name} | {s['triggers']} | {s['processed']} | {s['dropped']} | {s['late']} "
            f"| {lat['p50']:.0f} | {lat['p99']:.0f} | {lat['max']:.0f} | {s['wall_s']:.1f} "
            f"| {s['log_s']:.1f} | {s['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "`latency` is end to end on the replay clock: from the trigger's sensor time to its "
        "detections out, so it includes the wait for the other sensors (at most the budget) and "
        "any time the frame waited for the detector. `late`: detections out after trigger time + "
        "budget (default 50 ms, the LIDAR period). `dropped`: replaced in the one-frame mailbox "
        "while the detector was busy (latest wins). Invariant: processed + dropped = triggers.",
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
        pts = r["timeline"]
        if pts:
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                "o-",
                ms=3,
                lw=0.8,
                color=colors.get(name),
                label=f"{name} ({r['summary']['processed']} processed, "
                f"{r['summary']['dropped']} dropped)",
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
    parser.add_argument("source", type=Path, nargs="?", help="a dataroot, .mcap, ROS 2 bag or .bag")
    parser.add_argument(
        "--from-json", type=Path, help="regenerate the markdown from a results JSON, run nothing"
    )
    parser.add_argument("--version")
    parser.add_argument("--scene")
    parser.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated: " + ",".join(MODELS)
    )
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--trigger", default="keyframes", choices=("keyframes", "lidar"))
    parser.add_argument("--loop", type=int, default=1)
    parser.add_argument("--json-out", type=Path, help="results JSON")
    parser.add_argument("--markdown-out", type=Path, help="results markdown")
    parser.add_argument("--plot", type=Path, help="latency-over-time PNG")


def run(args: argparse.Namespace) -> int:
    import sys

    from fusion.machine import machine_info
    from fusion.replay import LIDAR_PERIOD_MS

    if args.from_json:
        text = to_markdown(json.loads(args.from_json.read_text()))
        print(text)
        if args.markdown_out:
            args.markdown_out.write_text(text)
        return 0
    if args.source is None:
        from fusion.errors import FusionError

        raise FusionError("give a SOURCE to replay (or --from-json RESULTS)")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    result: dict[str, Any] = {
        "command": "fusion bench replay " + " ".join(sys.argv[3:]),
        "source": str(args.source),
        "rate": args.rate,
        "trigger": args.trigger,
        "loop": args.loop,
        "budget_ms": LIDAR_PERIOD_MS,
        "env": machine_info(),
        "models": measure(
            args.source, args.version, args.scene, models, args.rate, args.trigger, args.loop
        ),
    }
    if args.plot:
        result["plot"] = str(plot(result, args.plot))
    text = to_markdown(result)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2))
    if args.markdown_out:
        args.markdown_out.parent.mkdir(parents=True, exist_ok=True)
        args.markdown_out.write_text(text)
    return 0
