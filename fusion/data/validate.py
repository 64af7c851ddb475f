"""`fusion validate --dataroot DIR --version V`: check any nuScenes dataroot, real or synthetic.

Checks every table and foreign key, that every referenced file is present and parseable,
that timestamps increase per sensor, sensor rates, and record counts. Prints a report and
exits 1 when there are errors (2 when the dataroot cannot be read at all).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from fusion.config import load_config
from fusion.data.canbus import SCENE_NAME, load_can_bus
from fusion.data.reader import load_splits
from fusion.data.sensor_io import (
    _radar_header,
    decode_jpeg,
    decode_lidar_bin,
    decode_radar_pcd,
    image_size,
    resolve_inside,
)
from fusion.data.tables import TABLES, Report, check_keys, load_tables
from fusion.errors import DataError

# nominal rates (Hz) of the nuScenes rig by modality, and of keyframes
NOMINAL_HZ = {"lidar": 20.0, "camera": 12.0, "radar": 13.0}
KEYFRAME_HZ = 2.0
RATE_TOLERANCE = 0.25


def _check_lidar(path: Path) -> str | None:
    """The reader's own decoder: size, NaN/Inf, physical bounds."""
    decode_lidar_bin(path.read_bytes(), path)
    return None


def _check_radar(path: Path) -> str | None:
    """The reader's own decoder (header, the 18 fields, size, bounds), plus the devkit's
    stricter length check (it asserts a body longer than the points)."""
    raw = path.read_bytes()
    decode_radar_pcd(raw, path)
    header, offset = _radar_header(raw, path)
    need = int(header["POINTS"][0]) * sum(int(z) for z in header["SIZE"])
    if len(raw) - offset <= need:
        return (
            f"body of {len(raw) - offset} bytes is too short for the devkit, which needs more "
            f"than {need} (truncated?)"
        )
    return None


def _check_image(path: Path, width: int, height: int, deep: bool) -> str | None:
    """The header (size against sample_data's, bounded) always; the full strict decode of
    keyframes (or every image with --deep-images)."""
    raw = path.read_bytes()
    if not deep:
        h, w = image_size(raw, path)
        if (width, height) != (0, 0) and (w, h) != (width, height):
            return f"image is {w}x{h} but sample_data says {width}x{height}"
        return None
    decode_jpeg(raw, path, None if (width, height) == (0, 0) else (height, width))
    return None


def _channel_group(channel: str) -> str:
    """LIDAR_TOP, CAM_*, RADAR_*: how the absent-sweeps warning groups its counts."""
    head, sep, _ = channel.partition("_")
    return f"{head}_*" if sep and head in ("CAM", "RADAR") else channel


def _report_absent_sweeps(absent: Counter[str], sweeps: int, report: Report) -> None:
    """One warning for every absent sweep file (by channel group), not an error per file:
    nuScenes' keyframes-only download has the sweeps in its tables but not on disk, and the
    readers fuse the sweeps that exist. When only some are absent, the same warning says so."""
    n = sum(absent.values())
    if not n:
        return
    groups: Counter[str] = Counter()
    for ch, k in absent.items():
        groups[_channel_group(ch)] += k
    per = ", ".join(f"{g} {k:,}" for g, k in sorted(groups.items()))
    if n == sweeps:
        msg = (
            f"keyframes-only layout: {n:,} sweep files absent ({per}): frames fuse keyframes alone"
        )
    else:
        msg = (
            f"partly keyframes-only: {n:,} of {sweeps:,} sweep files absent ({per}): frames "
            "fuse the sweeps that exist"
        )
    report.warn("layout", msg + "; eval, inspect, replay and convert count the absent sweeps")


def _check_files(root: Path, t: dict[str, list[dict]], report: Report, deep_images: bool) -> None:
    cs = {r["token"]: r["sensor_token"] for r in t["calibrated_sensor"]}
    channels = {r["token"]: r["channel"] for r in t["sensor"]}
    absent: Counter[str] = Counter()
    sweeps = 0
    for r in t["map"]:
        try:
            if not resolve_inside(root, r["filename"]).is_file():
                report.error("files", f"map {r['token']}: {r['filename']} missing")
        except DataError as err:
            report.error("files", f"map {r['token']}: {err.reason}: {r['filename']!r}")
    for r in t["sample_data"]:
        name = r["filename"]
        try:
            path = resolve_inside(root, name)
        except DataError as err:
            report.error("files", f"{name!r}: {err.reason}")
            continue
        if not r["is_key_frame"]:
            sweeps += 1
            if not path.exists():  # absent, not an error: see _report_absent_sweeps
                absent[channels.get(cs.get(r["calibrated_sensor_token"], ""), "?")] += 1
                continue
        if not path.is_file():
            report.error("files", f"{name}: missing")
            continue
        try:
            if name.endswith(".pcd.bin"):
                why = _check_lidar(path)
            elif name.endswith(".pcd"):
                why = _check_radar(path)
            elif name.endswith((".jpg", ".jpeg", ".png")):
                why = _check_image(path, r["width"], r["height"], deep_images or r["is_key_frame"])
            else:
                why = "unknown file type"
        except DataError as err:
            why = err.reason
        except OSError as exc:
            why = f"cannot read: {exc.strerror}"
        if why:
            report.error("files", f"{name}: {why}")
    _report_absent_sweeps(absent, sweeps, report)


def _check_time(t: dict[str, list[dict]], report: Report) -> None:
    cs = {r["token"]: r for r in t["calibrated_sensor"]}
    sensors = {r["token"]: r for r in t["sensor"]}
    samples = {r["token"]: r for r in t["sample"]}
    scenes = {r["token"]: r for r in t["scene"]}
    by_stream: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in t["sample_data"]:
        s = samples.get(r["sample_token"])
        c = cs.get(r["calibrated_sensor_token"])
        if s is None or c is None or c["sensor_token"] not in sensors:
            continue
        by_stream[(s["scene_token"], c["sensor_token"])].append(r)
        if (
            r["is_key_frame"]
            and sensors[c["sensor_token"]]["modality"] == "lidar"
            and r["timestamp"] != s["timestamp"]
        ):
            report.warn(
                "sync", f"{r['filename']}: LIDAR keyframe timestamp differs from its sample's"
            )
    for table in ("sample", "sample_data", "ego_pose"):
        for r in t[table]:
            if r["timestamp"] < 0:  # before 1970: passes every ordering check below
                report.error(
                    "time", f"{table} {r['token']}: timestamp {r['timestamp']} is negative"
                )
    # each sample_data against the one its `next` names, whatever stream or sample it sits in:
    # a sweep stamped at or after the keyframe it leads to is an error
    sd = {r["token"]: r for r in t["sample_data"]}
    for r in t["sample_data"]:
        nxt = sd.get(r["next"]) if r["next"] else None
        if nxt is not None and r["timestamp"] >= nxt["timestamp"]:
            what = "keyframe" if nxt["is_key_frame"] else "sample_data"
            report.error(
                "time",
                f"{r['filename']} at {r['timestamp']} us is not older than the {what} after it "
                f"({nxt['filename']} at {nxt['timestamp']} us)",
            )
    rates: dict[str, list[float]] = defaultdict(list)
    for (scene_tok, sensor_tok), recs in by_stream.items():
        sensor = sensors[sensor_tok]
        scene = scenes.get(scene_tok, {}).get("name", scene_tok)
        ts = np.array(sorted(r["timestamp"] for r in recs), dtype=np.int64)
        chain = sorted(recs, key=lambda r: r["timestamp"])
        for a, b in zip(chain, chain[1:], strict=False):
            if a["next"] != b["token"] and a["next"] != "":
                report.error(
                    "time",
                    f"{scene} {sensor['channel']}: prev/next order disagrees with timestamps "
                    f"at {a['timestamp']}",
                )
                break
        if len(ts) > 1 and np.any(np.diff(ts) <= 0):
            report.error("time", f"{scene} {sensor['channel']}: timestamps not strictly increasing")
        if len(ts) < 3:
            continue
        hz = 1e6 / float(np.median(np.diff(ts)))
        has_sweeps = any(not r["is_key_frame"] for r in recs)
        nominal = NOMINAL_HZ.get(sensor["modality"], 0.0) if has_sweeps else KEYFRAME_HZ
        rates[f"{sensor['channel']} ({'all' if has_sweeps else 'keyframes'})"].append(hz)
        if nominal and abs(hz - nominal) > RATE_TOLERANCE * nominal:
            report.warn(
                "rates", f"{scene} {sensor['channel']}: {hz:.1f} Hz, nominal {nominal:g} Hz"
            )
    for sc in t["scene"]:
        cur = samples.get(sc["first_sample_token"])
        prev_ts = None
        while cur is not None:
            if prev_ts is not None and cur["timestamp"] <= prev_ts:
                report.error("time", f"scene {sc['name']}: sample timestamps not increasing")
                break
            prev_ts = cur["timestamp"]
            cur = samples.get(cur["next"]) if cur["next"] else None
    for ch, hz in sorted(rates.items()):
        report.info.append(
            f"  rate {ch:34s} {np.median(hz):6.2f} Hz (median over {len(hz)} scene(s))"
        )


def _check_can_bus(root: Path, t: dict[str, list[dict]], report: Report) -> None:
    can = root / "can_bus"
    if not can.is_dir():
        report.info.append(
            "  can_bus/ absent (not an error: the devkit's CAN bus expansion is optional)"
        )
        return
    n = 0
    for sc in t["scene"]:
        if not re.fullmatch(r"scene-\d{4}", sc["name"]):
            report.warn(
                "can_bus",
                f"scene name {sc['name']!r:.60} is not scene-NNNN: the CAN bus API rejects it",
            )
            if not SCENE_NAME.fullmatch(sc["name"]):
                continue  # cannot name a file: the reader reports it if a frame needs it
        path = can / f"{sc['name']}_pose.json"
        if not path.is_file():
            continue
        n += 1
        try:  # the reader's own loader: pose and ms_imu parse, finite, integer utime
            load_can_bus(root, sc["name"])
        except DataError as err:
            report.error("can_bus", f"{Path(err.path or '').name}: {err.reason}")
        for msg in ("pose", "ms_imu", "vehicle_monitor", "steeranglefeedback", "meta", "route"):
            p = can / f"{sc['name']}_{msg}.json"
            if not p.is_file():
                report.warn("can_bus", f"{p.name}: missing")
                continue
            try:
                data = json.loads(p.read_bytes())
            except (OSError, ValueError, RecursionError) as exc:
                if msg not in ("pose", "ms_imu"):  # those two are reported by the loader
                    report.error("can_bus", f"{p.name}: not valid JSON ({exc})")
                continue
            if msg == "meta":
                if not isinstance(data, dict):
                    report.error("can_bus", f"{p.name}: must be a dict")
                continue
            if not isinstance(data, list):
                report.error("can_bus", f"{p.name}: must be a list")
                continue
            if msg != "route":
                ut = [m.get("utime") for m in data if isinstance(m, dict)]
                if len(ut) != len(data) or any(
                    not isinstance(u, int) or isinstance(u, bool) for u in ut
                ):
                    report.error("can_bus", f"{p.name}: every message needs an integer utime")
                elif np.any(np.diff(ut) <= 0):
                    report.error("can_bus", f"{p.name}: utime not strictly increasing")
    report.info.append(f"  can_bus: {n} scene(s) with CAN bus data")


def _check_splits(vdir: Path, t: dict[str, list[dict]], report: Report) -> None:
    path = vdir / "splits.json"
    if not path.is_file():
        return
    try:
        splits = load_splits(path)
    except DataError as err:
        report.error("splits", f"{path}: {err.reason}")
        return
    names = {s["name"] for s in t["scene"]}
    for split, scenes in splits.items():
        missing = [s for s in scenes if s not in names]
        if missing:
            report.error("splits", f"{split}: unknown scene(s) {', '.join(missing[:5])}")


def _check_sync(t: dict[str, list[dict]], report: Report) -> None:
    """Keyframes farther from their sample's time than the `[sync]` tolerance (the reader
    leaves them out of the frame): a warning per sensor."""
    sync = load_config("tiny").sync
    tol = {
        "camera": sync.camera_tolerance_us,
        "radar": sync.radar_tolerance_us,
        "lidar": sync.lidar_tolerance_us,
    }
    cs = {r["token"]: r["sensor_token"] for r in t["calibrated_sensor"]}
    sensors = {r["token"]: r for r in t["sensor"]}
    samples = {r["token"]: r["timestamp"] for r in t["sample"]}
    late: Counter[str] = Counter()
    worst: dict[str, int] = {}
    for r in t["sample_data"]:
        sensor = sensors.get(cs.get(r["calibrated_sensor_token"], ""))
        if not r["is_key_frame"] or sensor is None or r["sample_token"] not in samples:
            continue
        off = abs(r["timestamp"] - samples[r["sample_token"]])
        if off > tol.get(sensor["modality"], off):
            late[sensor["channel"]] += 1
            worst[sensor["channel"]] = max(worst.get(sensor["channel"], 0), off)
    for ch, k in sorted(late.items()):
        report.warn(
            "sync",
            f"{ch}: {k} keyframe(s) beyond the sync tolerance (up to {worst[ch] / 1000:.1f} ms "
            "from their sample): left out of those frames",
        )


def validate(dataroot: str | Path, version: str, deep_images: bool = False) -> Report:
    """Check a dataroot; the report lists errors, warnings and a summary."""
    root = Path(dataroot)
    if not root.is_dir():
        raise DataError("dataroot does not exist or is not a directory", root)
    vdir = root / version
    if not vdir.is_dir():
        raise DataError(f"version folder {version!r} is missing", vdir)
    report = Report()
    t = load_tables(vdir, report)
    report.info.append(f"dataroot {root} [{version}]")
    report.info.append("  " + ", ".join(f"{n} {len(t[n])}" for n in TABLES))
    check_keys(t, report)
    _check_files(root, t, report, deep_images)
    _check_time(t, report)
    _check_can_bus(root, t, report)
    _check_splits(vdir, t, report)
    _check_sync(t, report)
    cats = {r["token"]: r["name"] for r in t["category"]}
    inst = {r["token"]: r for r in t["instance"]}
    per_cat = Counter(
        cats.get(inst.get(a["instance_token"], {}).get("category_token"), "?")
        for a in t["sample_annotation"]
    )
    if per_cat:
        report.info.append(
            "  annotations: " + ", ".join(f"{k} {v}" for k, v in sorted(per_cat.items()))
        )
    modality = Counter()
    sensors = {r["token"]: r["modality"] for r in t["sensor"]}
    cs = {r["token"]: sensors.get(r["sensor_token"], "?") for r in t["calibrated_sensor"]}
    for r in t["sample_data"]:
        modality[(cs.get(r["calibrated_sensor_token"], "?"), r["is_key_frame"])] += 1
    report.info.append(
        "  sample_data: "
        + ", ".join(
            f"{m} {'keyframes' if k else 'sweeps'} {n}" for (m, k), n in sorted(modality.items())
        )
    )
    return report
