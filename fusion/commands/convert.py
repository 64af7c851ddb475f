"""`fusion convert`: a nuScenes dataroot scene -> a Foxglove MCAP, a ROS 2 bag or a ROS 1 bag.

    fusion convert DATAROOT --version V --scene NAME --to mcap|ros2|ros1 --out PATH
        [--storage mcap|db3] [--topics FILE] [--overwrite] [--log-time sensor|keyframe]
        [--no-localization]

Every sample_data (keyframes and sweeps), the ego poses (`/tf` map -> base_link at each
sample_data's ego_pose), the CAN bus pose (`/odom`) and IMU (`/imu`), GNSS fixes (`/gps`) and
wheel speed (`/vehicle/twist`) where present, the calibration (`/tf` or `/tf_static`
base_link -> sensor once at the start; camera_info at the start and with every image) and the
keyframe marks (`/nuscenes/keyframes`) are written, in the layout of `fusion.sources.mcap` /
`fusion.sources.rosbag`. Each message's log time is its sensor time (`--log-time keyframe`:
nuscenes2mcap's timing, see `convert`).
`fusion.sources.open_source` reads every output back. A sweep whose file is absent (nuScenes'
keyframes-only download) is not in the log; the count is printed (and in `--json`).
`--no-localization` leaves out the log's localization (`/odom` and `/tf` map -> base_link): a
log of raw GNSS, IMU and wheel speed, as research vehicles record, for the pose estimator.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fusion.commands.arguments import add_json_arguments, emit_json
from fusion.errors import DataError
from fusion.sources.base import LogMessage
from fusion.sources.dataroot import DatarootSource
from fusion.sources.layout import ODOM_CHANNEL, POSE_CHANNEL, load_topic_map
from fusion.sources.mcap import FoxgloveMcapWriter
from fusion.sources.rosbag import RosbagWriter

Target = Literal["mcap", "ros2", "ros1"]


@dataclass(frozen=True)
class Converted:
    """What `convert` wrote: messages per channel, and the sweeps per channel left out because
    their files are absent (keyframes-only layout)."""

    messages: dict[str, int]
    absent_sweeps: dict[str, int]

    def as_json(self, out: Path) -> dict:
        return {
            "out": str(out),
            "messages": {"total": sum(self.messages.values()), "by_channel": self.messages},
            "absent_sweeps": {
                "total": sum(self.absent_sweeps.values()),
                "by_channel": self.absent_sweeps,
            },
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataroot", required=True, type=Path, help="nuScenes dataroot")
    parser.add_argument("--version", required=True, help="table folder, e.g. v1.0-mini")
    parser.add_argument("--scene", required=True, help="scene name, e.g. scene-0061")
    parser.add_argument("--to", required=True, choices=("mcap", "ros2", "ros1"), help="log format")
    parser.add_argument("--out", required=True, type=Path, help="output .mcap, bag folder or .bag")
    parser.add_argument(
        "--storage", choices=("mcap", "db3"), default="mcap", help="ROS 2 storage (default mcap)"
    )
    parser.add_argument("--topics", type=Path, help="topic-map TOML (default: the nuScenes map)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--log-time",
        choices=("sensor", "keyframe"),
        default="sensor",
        help="log time of each message: its sensor time (default), or, as Foxglove's "
        "nuscenes2mcap does, a keyframe's messages at their LIDAR keyframe's time",
    )
    parser.add_argument(
        "--no-localization",
        action="store_true",
        help="leave out /odom and /tf map->base_link (the sensors, /imu, /gps, /tf_static stay)",
    )
    add_json_arguments(parser, "the messages written and the absent sweeps")


def _clear(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise DataError("output exists (use --overwrite to replace it)", out)
    if out.is_dir():
        if not (out / "metadata.yaml").is_file():
            raise DataError("output is a folder that is not a ROS 2 bag: not replacing it", out)
        shutil.rmtree(out)
    else:
        out.unlink()


def convert(
    dataroot: str | Path,
    version: str,
    scene: str,
    to: Target,
    out: str | Path,
    *,
    storage: Literal["mcap", "db3"] = "mcap",
    topics: str | Path | None = None,
    overwrite: bool = False,
    log_time: Literal["sensor", "keyframe"] = "sensor",
    progress: bool = True,
    localization: bool = True,
) -> Converted:
    """Write one scene as a log; returns the messages written per channel and the sweeps left
    out because their files are absent. `log_time`:
    "sensor" logs each message at its sensor time; "keyframe" logs the keyframe messages of a
    sample at its LIDAR_TOP keyframe's time (nuscenes2mcap's timing; message timestamps stay
    the sensor times), everything else at its sensor time. `localization=False` writes no ego
    pose (`pose`, `odom` channels)."""
    from tqdm import tqdm

    src = DatarootSource(dataroot, version, scene)
    tmap = load_topic_map(topics)
    out = Path(out)
    _clear(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = src.info()
    rig, keyframes = src.rig(), src.keyframes()
    lidar_time = {tok: t for t, tok in keyframes.get("LIDAR_TOP", [])}
    if to == "mcap":
        nusc = src.reader.nusc
        sc = next(s for s in nusc.scene if s["name"] == scene)
        log = nusc.get("log", sc["log_token"])
        meta = {"name": scene, "description": sc["description"], "location": log["location"]}
        meta |= {"vehicle": log["vehicle"], "date_captured": log["date_captured"]}
        writer = FoxgloveMcapWriter(
            out, rig, topics=tmap, keyframes=keyframes, metadata=meta, start_us=info["start_us"]
        )
    else:
        writer = RosbagWriter(
            out, rig, ros=to, storage=storage, topics=tmap, keyframes=keyframes,
            start_us=info["start_us"],
        )  # fmt: skip
    counts: dict[str, int] = {}
    total = sum(info["channels"].values())
    ok = False
    try:
        with writer:
            bar = tqdm(
                src.messages(), total=total, desc=f"convert {scene}", unit="msg",
                disable=not progress, dynamic_ncols=True,
            )  # fmt: skip
            for msg in bar:
                if not localization and msg.channel in (POSE_CHANNEL, ODOM_CHANNEL):
                    continue
                if log_time == "keyframe" and msg.sample_token in lidar_time:
                    msg = _logged_at(msg, lidar_time[msg.sample_token])
                writer.write(msg)
                counts[msg.channel] = counts.get(msg.channel, 0) + 1
        ok = True
    finally:
        if not ok and out.exists():  # never leave a half-written log behind
            shutil.rmtree(out) if out.is_dir() else out.unlink()
    return Converted(dict(sorted(counts.items())), dict(sorted(src.absent_sweeps.items())))


def _logged_at(msg: LogMessage, log_time_us: int) -> LogMessage:
    return LogMessage(
        msg.channel, msg.kind, msg.timestamp_us, log_time_us, msg.raw, msg.decoder, msg.origin,
        msg.is_keyframe, msg.sample_token,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    done = convert(
        args.dataroot,
        args.version,
        args.scene,
        args.to,
        args.out,
        storage=args.storage,
        topics=args.topics,
        overwrite=args.overwrite,
        log_time=args.log_time,
        localization=not args.no_localization,
    )
    if emit_json(args, done.as_json(args.out)):
        return 0
    counts, absent = done.messages, done.absent_sweeps
    summary = ", ".join(f"{ch} {n}" for ch, n in counts.items())
    print(f"fusion convert: wrote {sum(counts.values())} messages to {args.out} ({summary})")
    if absent:
        per = ", ".join(f"{ch} {n:,}" for ch, n in absent.items())
        print(
            f"fusion convert: {sum(absent.values()):,} sweeps absent (files not on disk, "
            f"keyframes-only layout; not in the log): {per}"
        )
    return 0
