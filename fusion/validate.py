"""`fusion validate DIR --version V`: check any nuScenes dataroot, real or synthetic.

Checks every table and foreign key, that every referenced file is present and parseable,
that timestamps increase per sensor, sensor rates, and record counts. Prints a report and
exits 1 when there are errors (2 when the dataroot cannot be read at all).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fusion.config import load_config
from fusion.errors import DataError
from fusion.nuscenes import TABLES, load_splits
from fusion.poses import SCENE_NAME, load_can_bus
from fusion.sensor_io import (
    _radar_header,
    decode_jpeg,
    decode_lidar_bin,
    decode_radar_pcd,
    image_size,
    resolve_inside,
)

FIELDS: dict[str, tuple[str, ...]] = {
    "attribute": ("name",),
    "calibrated_sensor": ("sensor_token", "translation", "rotation", "camera_intrinsic"),
    "category": ("name",),
    "ego_pose": ("translation", "rotation", "timestamp"),
    "instance": (
        "category_token",
        "nbr_annotations",
        "first_annotation_token",
        "last_annotation_token",
    ),
    "log": ("logfile", "vehicle", "date_captured", "location"),
    "map": ("log_tokens", "category", "filename"),
    "sample": ("timestamp", "scene_token", "prev", "next"),
    "sample_annotation": (
        "sample_token",
        "instance_token",
        "attribute_tokens",
        "visibility_token",
        "translation",
        "size",
        "rotation",
        "num_lidar_pts",
        "num_radar_pts",
        "prev",
        "next",
    ),
    "sample_data": (
        "sample_token",
        "ego_pose_token",
        "calibrated_sensor_token",
        "filename",
        "fileformat",
        "width",
        "height",
        "timestamp",
        "is_key_frame",
        "prev",
        "next",
    ),
    "scene": ("name", "log_token", "nbr_samples", "first_sample_token", "last_sample_token"),
    "sensor": ("channel", "modality"),
    "visibility": ("level",),
}
# nominal rates (Hz) of the nuScenes rig by modality, and of keyframes
NOMINAL_HZ = {"lidar": 20.0, "camera": 12.0, "radar": 13.0}
KEYFRAME_HZ = 2.0
RATE_TOLERANCE = 0.25
MAX_LISTED = 8  # problems listed per check; the rest are counted


_STR, _INT, _BOOL, _NUMS, _STRS = "string", "integer", "boolean", "list of numbers", "strings"


def _kind(name: str) -> str | None:
    """The JSON type a field must have (None: not checked)."""
    if name.endswith("token") or name in ("prev", "next", "filename", "name", "channel"):
        return _STR
    if name in ("modality", "fileformat", "logfile", "vehicle", "location", "category"):
        return _STR
    if name in ("timestamp", "width", "height", "nbr_samples", "nbr_annotations"):
        return _INT
    if name == "is_key_frame":
        return _BOOL
    if name in ("translation", "rotation", "size"):
        return _NUMS
    if name in ("attribute_tokens", "log_tokens"):
        return _STRS
    return None


def _type_ok(value: object, kind: str) -> bool:
    match kind:
        case "string":
            return isinstance(value, str)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "list of numbers":
            return isinstance(value, list) and all(
                isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
                for v in value
            )
        case _:
            return isinstance(value, list) and all(isinstance(v, str) for v in value)


@dataclass
class Report:
    """Problems found, grouped by check."""

    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    warnings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    info: list[str] = field(default_factory=list)

    def error(self, check: str, msg: str) -> None:
        self.errors[check].append(msg)

    def warn(self, check: str, msg: str) -> None:
        self.warnings[check].append(msg)

    @property
    def n_errors(self) -> int:
        return sum(len(v) for v in self.errors.values())

    @property
    def n_warnings(self) -> int:
        return sum(len(v) for v in self.warnings.values())

    def render(self) -> str:
        lines = list(self.info)
        for title, group in (("ERROR", self.errors), ("WARNING", self.warnings)):
            for check, msgs in group.items():
                lines.append(f"{title} [{check}] {len(msgs)} problem(s)")
                lines += [f"    {m}" for m in msgs[:MAX_LISTED]]
                if len(msgs) > MAX_LISTED:
                    lines.append(f"    ... and {len(msgs) - MAX_LISTED} more")
        verdict = "FAILED" if self.n_errors else "OK"
        lines.append(f"{verdict}: {self.n_errors} error(s), {self.n_warnings} warning(s)")
        return "\n".join(lines)


def _load_tables(vdir: Path, report: Report) -> dict[str, list[dict]]:
    tables: dict[str, list[dict]] = {}
    for name in TABLES:
        path = vdir / f"{name}.json"
        if not path.is_file():
            report.error("tables", f"{path}: missing")
            tables[name] = []
            continue
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError) as exc:
            report.error("tables", f"{path}: not valid JSON ({exc})")
            tables[name] = []
            continue
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            report.error("tables", f"{path}: must be a JSON list of records")
            tables[name] = []
            continue
        good = []
        for i, rec in enumerate(data):
            missing = [f for f in ("token", *FIELDS[name]) if f not in rec]
            wrong = [
                f"{f} must be a {k}, got {rec[f]!r:.40}"
                for f in ("token", *FIELDS[name])
                if f in rec and (k := _kind(f)) is not None and not _type_ok(rec[f], k)
            ]
            if missing:
                report.error(
                    "fields",
                    f"{name}[{i}] (token {rec.get('token', '?')!r:.40}): missing "
                    f"{', '.join(missing)}",
                )
            elif wrong:
                report.error(
                    "fields", f"{name}[{i}] (token {rec['token']!r:.40}): {'; '.join(wrong)}"
                )
            else:
                good.append(rec)
        dup = [t for t, c in Counter(r["token"] for r in good).items() if c > 1]
        for t in dup:
            report.error("tokens", f"{name}: duplicate token {t}")
        tables[name] = good
    return tables


# table -> (field, referenced table, "" allowed) for every single-token foreign key
FOREIGN_KEYS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "calibrated_sensor": (("sensor_token", "sensor", False),),
    "scene": (
        ("log_token", "log", False),
        ("first_sample_token", "sample", False),
        ("last_sample_token", "sample", False),
    ),
    "sample": (
        ("scene_token", "scene", False),
        ("prev", "sample", True),
        ("next", "sample", True),
    ),
    "sample_data": (
        ("sample_token", "sample", False),
        ("ego_pose_token", "ego_pose", False),
        ("calibrated_sensor_token", "calibrated_sensor", False),
        ("prev", "sample_data", True),
        ("next", "sample_data", True),
    ),
    "instance": (
        ("category_token", "category", False),
        ("first_annotation_token", "sample_annotation", False),
        ("last_annotation_token", "sample_annotation", False),
    ),
    "sample_annotation": (
        ("sample_token", "sample", False),
        ("instance_token", "instance", False),
        ("visibility_token", "visibility", True),
        ("prev", "sample_annotation", True),
        ("next", "sample_annotation", True),
    ),
}


def _check_keys(t: dict[str, list[dict]], report: Report) -> None:
    idx = {name: {r["token"]: r for r in recs} for name, recs in t.items()}

    for table, keys in FOREIGN_KEYS.items():
        for r in t[table]:
            for fld, target, optional in keys:
                v = r[fld]
                if not (optional and v == "") and v not in idx[target]:
                    report.error(
                        "foreign keys", f"{table} {r['token']}: {fld} {v!r} not in {target}"
                    )
    mapped = set()
    for r in t["map"]:
        for lt in r["log_tokens"]:
            mapped.add(lt)
            if lt not in idx["log"]:
                report.error("foreign keys", f"map {r['token']}: log token {lt!r} not in log")
    for r in t["log"]:
        if r["token"] not in mapped:
            report.error(
                "foreign keys", f"log {r['token']} ({r['logfile']}) is in no map's log_tokens"
            )
    for r in t["sample_annotation"]:
        for a in r["attribute_tokens"]:
            if a not in idx["attribute"]:
                report.error(
                    "foreign keys",
                    f"sample_annotation {r['token']}: attribute {a!r} not in attribute",
                )
        if not (
            isinstance(r["num_lidar_pts"], int)
            and r["num_lidar_pts"] >= 0
            and isinstance(r["num_radar_pts"], int)
            and r["num_radar_pts"] >= 0
        ):
            report.error(
                "counts", f"sample_annotation {r['token']}: point counts must be integers >= 0"
            )
        if len(r["size"]) != 3 or min(r["size"], default=0) <= 0:
            report.error(
                "values", f"sample_annotation {r['token']}: size must be 3 positive numbers"
            )
    for table in ("sample_annotation", "calibrated_sensor", "ego_pose"):
        for r in t[table]:
            _check_pose(table, r, report)
    for r in t["calibrated_sensor"]:
        k = r["camera_intrinsic"]
        if k in ([], None):
            continue
        try:
            kk = np.asarray(k, dtype=np.float64)
        except (TypeError, ValueError):
            kk = np.zeros(0)
        if kk.shape != (3, 3) or not np.isfinite(kk).all() or kk[0, 0] <= 0 or kk[1, 1] <= 0:
            report.error(
                "values",
                f"calibrated_sensor {r['token']}: camera_intrinsic must be a finite 3x3 matrix "
                "with positive focal lengths",
            )

    # linked lists: prev/next symmetric, no loops, chain lengths match the declared counts
    for table in ("sample", "sample_data", "sample_annotation"):
        for r in t[table]:
            nxt = idx[table].get(r["next"]) if r["next"] else None
            if nxt is not None and nxt["prev"] != r["token"]:
                report.error("links", f"{table} {r['token']}: next's prev does not point back")
        for link in ("prev", "next"):
            for tok in _cycles({r["token"]: r[link] for r in t[table]}):
                report.error("links", f"{table} {tok}: the {link} chain loops back to itself")
    for sc in t["scene"]:
        n, cur, seen = 0, idx["sample"].get(sc["first_sample_token"]), set()
        while cur is not None and cur["token"] not in seen:
            seen.add(cur["token"])
            n += 1
            if cur["scene_token"] != sc["token"]:
                report.error(
                    "links", f"scene {sc['name']}: sample {cur['token']} belongs to another scene"
                )
            cur = idx["sample"].get(cur["next"]) if cur["next"] else None
        if n != sc["nbr_samples"]:
            report.error(
                "counts",
                f"scene {sc['name']}: nbr_samples {sc['nbr_samples']} but {n} linked samples",
            )
    for ins in t["instance"]:
        n, cur, seen = 0, idx["sample_annotation"].get(ins["first_annotation_token"]), set()
        while cur is not None and cur["token"] not in seen:
            seen.add(cur["token"])
            n += 1
            cur = idx["sample_annotation"].get(cur["next"]) if cur["next"] else None
        if n != ins["nbr_annotations"]:
            report.error(
                "counts",
                f"instance {ins['token']}: nbr_annotations {ins['nbr_annotations']} but "
                f"{n} linked annotations",
            )


def _check_pose(table: str, r: dict, report: Report) -> None:
    """translation: 3 finite numbers; rotation: a finite non-zero quaternion (a non-unit one
    is a warning: the reader normalizes it)."""
    if len(r["translation"]) != 3:
        report.error("values", f"{table} {r['token']}: translation must be 3 numbers")
    norm = float(np.linalg.norm(r["rotation"])) if len(r["rotation"]) == 4 else 0.0
    if len(r["rotation"]) != 4 or norm < 1e-6:
        report.error("values", f"{table} {r['token']}: rotation is not a non-zero quaternion")
    elif abs(norm - 1) > 1e-3:
        report.warn(
            "values", f"{table} {r['token']}: rotation is not a unit quaternion (normalized)"
        )


def _cycles(links: dict[str, str]) -> list[str]:
    """Tokens on a loop of a prev/next map (token -> linked token or ""), in O(n)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found = []
    for start in links:
        path = []
        tok = start
        while tok and tok in links and tok not in state:
            state[tok] = 1
            path.append(tok)
            tok = links[tok]
        if tok and state.get(tok) == 1:
            found.append(tok)
        for p in path:
            state[p] = 2
    return found


def first_table_error(vdir: Path) -> tuple[Path, str] | None:
    """(table file, reason) of the first table problem (bad JSON, missing or mistyped field,
    dangling or duplicate token), for the reader's error when the devkit cannot load a dataroot."""
    report = Report()
    t = _load_tables(vdir, report)
    if not report.n_errors:
        _check_keys(t, report)
    for msgs in report.errors.values():
        for msg in msgs:
            name = re.split(r"[\[ :]", msg, maxsplit=1)[0]
            if name in TABLES:
                return vdir / f"{name}.json", msg
            if msg.startswith(str(vdir)):
                path, _, why = msg.partition(": ")
                return Path(path), why
    return None


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
    t = _load_tables(vdir, report)
    report.info.append(f"dataroot {root} [{version}]")
    report.info.append("  " + ", ".join(f"{n} {len(t[n])}" for n in TABLES))
    _check_keys(t, report)
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataroot", type=Path)
    parser.add_argument("--version", default="v1.0-mini")
    parser.add_argument(
        "--deep-images", action="store_true", help="decode every image, not only keyframes"
    )
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")


def run(args: argparse.Namespace) -> int:
    report = validate(args.dataroot, args.version, args.deep_images)
    print(report.render())
    failed = report.n_errors > 0 or (args.strict and report.n_warnings > 0)
    return 1 if failed else 0
