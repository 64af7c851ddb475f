"""The sim-to-real gap, measured: real nuScenes against our generator's output, sensor by sensor.

    python benchmarks/sim2real.py --real ../shared/data/nuscenes-real-scene-0916 \
        --synth now=/tmp/sim2real/synth [--synth before=DIR ...] [--generate /tmp/sim2real/synth] \
        --json-out benchmarks/sim2real.json --markdown-out benchmarks/sim2real.md \
        --plots benchmarks/sim2real
    python benchmarks/sim2real.py --from-json benchmarks/sim2real.json --markdown-out ...

`--generate DIR` first writes a small synthetic set (`fusion generate`, 2 scenes x 6 keyframes,
day and night, 1600x900, seed 99) to DIR and measures it as `now`. Every dataroot is read with
the devkit's tables and the project's file readers; only keyframes are measured (what a
"keyframes only" download has). Per dataroot:

- LIDAR (LIDAR_TOP keyframe scans, sensor frame): intensity of the returns (points off the
  sensor origin and outside the preprocessing's ego box,
  `fusion.preprocess.inputs.ego_filter_mask`),
  elevation and returns per ring, returns per range bin, points within 3 m of the sensor off
  its origin (the ego vehicle's own returns on real data) and points at the origin (firings
  without a return), before and after the ego filter, and the ground height in the ego frame
  (the mode of z of the returns 4-25 m away).
- radar (five radars, the devkit's default filters): RCS, ego-motion-compensated speed, points
  per scan, false alarms = points in no annotated box (boxes grown by 1 m in length and width).
- cameras (every keyframe image, decoded at 1/4): luma mean (brightness) and standard deviation
  (contrast), mean R, G, B, saturation; per condition (the synthetic night is the exposure at
  night; the real scene is daytime). The JPEG files: bytes per image, and the IJG quality whose
  quantisation tables the file carries (`jpeg_quality`: the quality at which Pillow's encoder
  writes the same tables), what an image costs to store and to decode.
- objects: annotated sizes (w, l, h) per class, the height of each box's bottom above the
  ground around it measured by the LIDAR (`local_ground`), and each box's heading against the
  ego's axis (0-90 degrees: along it or across it, whichever way it faces; `across_share`: the
  share at 60 degrees or more, as cars parked across a car park's aisles).
- annotations: `num_lidar_pts` (share of boxes with 0, median), visibility levels.

A gap is stated per quantity as real and synthetic figures side by side; histograms are compared
by total-variation distance (0 = the same distribution, 1 = disjoint).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pyquaternion import Quaternion

from fusion.config import CAMERA_CHANNELS, RADAR_CHANNELS, load_config
from fusion.data.sensor_io import load_lidar_bin, load_radar_pcd
from fusion.frame import RADAR_FIELDS
from fusion.preprocess.inputs import ego_filter_mask

CATEGORY_CLASS = {
    "vehicle.car": "car",
    "vehicle.truck": "truck",
    "vehicle.bus.rigid": "bus",
    "vehicle.bus.bendy": "bus",
    "vehicle.trailer": "trailer",
    "vehicle.construction": "construction_vehicle",
    "human.pedestrian.adult": "pedestrian",
    "vehicle.motorcycle": "motorcycle",
    "vehicle.bicycle": "bicycle",
    "movable_object.trafficcone": "traffic_cone",
    "movable_object.barrier": "barrier",
}
INTENSITY_BINS = np.array([0, 2, 4, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 256])
RANGE_BINS = np.array([0, 3, 5, 10, 15, 20, 30, 40, 50, 70, 100, 200])
RCS_BINS = np.arange(-20, 45, 5)
SPEED_BINS = np.array([0, 0.25, 0.5, 1, 2, 4, 8, 16, 50])
NUM_PTS_BINS = np.array([0, 1, 5, 10, 20, 50, 100, 200, 500, 1000, 100000])
HEADING_BINS = np.array([0, 15, 30, 45, 60, 75, 90.001])  # deg against the ego's axis
ACROSS_DEG = 60.0
EGO_RADIUS_M = 3.0
ORIGIN_M = 0.05  # a firing without a return is stored at the sensor origin


def tv_distance(a: list[float], b: list[float]) -> float:
    """Total-variation distance of two histograms (normalized here): 0 same, 1 disjoint."""
    pa, pb = np.asarray(a, float), np.asarray(b, float)
    if pa.sum() == 0 or pb.sum() == 0:
        return float("nan")
    return float(0.5 * np.abs(pa / pa.sum() - pb / pb.sum()).sum())


def _hist(values: np.ndarray, bins: np.ndarray) -> list[int]:
    return [int(x) for x in np.histogram(np.clip(values, bins[0], bins[-1] - 1e-6), bins)[0]]


def _transform(translation: list[float], rotation: list[float]) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Quaternion(rotation).rotation_matrix
    m[:3, 3] = translation
    return m


def _apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ m[:3, :3].T + m[:3, 3]


_QUALITY_TABLES: dict[str, int] = {}


def _tables_key(tables: dict[int, Any]) -> str:
    return repr({k: list(v) for k, v in tables.items()})


def jpeg_quality(tables: dict[int, Any]) -> int | None:
    """The IJG quality (1-100) at which Pillow's libjpeg encoder writes these quantisation
    tables (`PIL.Image.quantization`), or None: tables of no IJG quality (a custom encoder)."""
    if not _QUALITY_TABLES:
        from PIL import Image

        tile = Image.new("RGB", (16, 16))
        for q in range(1, 101):
            buf = io.BytesIO()
            tile.save(buf, "JPEG", quality=q)
            with Image.open(buf) as im:
                _QUALITY_TABLES.setdefault(_tables_key(im.quantization), q)
    return _QUALITY_TABLES.get(_tables_key(tables))


def jpeg_file_stats(path: Path) -> tuple[float, int | None]:
    """(kB, IJG quality or None) of a JPEG file."""
    from PIL import Image

    with Image.open(path) as im:
        return path.stat().st_size / 1e3, jpeg_quality(im.quantization)


def _jpeg_summary(stats: list[tuple[float, int | None]]) -> dict[str, Any]:
    qualities = sorted({q for _, q in stats}, key=lambda q: (q is None, q))
    return {
        "jpeg_kb": float(np.mean([kb for kb, _ in stats])) if stats else float("nan"),
        "jpeg_quality": qualities,
    }


def _stats(v: np.ndarray) -> dict[str, float]:
    v = np.asarray(v, float)
    if len(v) == 0:
        return {"n": 0}
    return {
        "n": len(v),
        "mean": float(v.mean()),
        "std": float(v.std()),
        "p10": float(np.percentile(v, 10)),
        "median": float(np.median(v)),
        "p90": float(np.percentile(v, 90)),
    }


def local_ground(points_ego: np.ndarray, center: np.ndarray, size_wlh: list[float]) -> float | None:
    """Ground height (m, ego frame) around a box: the 10th percentile of z of the LIDAR returns
    in a ring 0.3-2.5 m outside the box's bounding circle (the ground is not flat: ramps, kerbs,
    a road above a car park); None when the ring holds fewer than 20 returns."""
    r = 0.5 * float(np.hypot(size_wlh[0], size_wlh[1]))
    d = np.hypot(points_ego[:, 0] - center[0], points_ego[:, 1] - center[1])
    ring = (d > r + 0.3) & (d < r + 2.5) & (points_ego[:, 2] < center[2])
    if ring.sum() < 20:
        return None
    return float(np.percentile(points_ego[ring, 2], 10))


def load_devkit(dataroot: Path) -> Any:
    from nuscenes.nuscenes import NuScenes

    version = next(p.name for p in sorted(dataroot.iterdir()) if (p / "sample.json").is_file())
    with contextlib.redirect_stdout(io.StringIO()):
        return NuScenes(version, str(dataroot), verbose=False)


def measure(dataroot: Path) -> dict[str, Any]:
    """Every statistic of the module docstring for one dataroot's keyframes."""
    from nuscenes.utils.geometry_utils import points_in_box

    from fusion.eval.evaluate import scene_condition

    nusc = load_devkit(dataroot)
    pc_cfg = load_config("nuscenes").point_cloud
    lidar: dict[str, Any] = defaultdict(list)
    radar: dict[str, Any] = defaultdict(list)
    cams: dict[str, list[list[float]]] = defaultdict(list)
    jpegs: dict[str, list[tuple[float, int | None]]] = defaultdict(list)
    sizes: dict[str, list[list[float]]] = defaultdict(list)
    bottoms: dict[str, list[float]] = defaultdict(list)
    headings: dict[str, list[float]] = defaultdict(list)
    num_pts: dict[str, list[int]] = defaultdict(list)
    visibility: dict[str, int] = defaultdict(int)
    for sample in nusc.sample:
        condition = scene_condition(nusc.get("scene", sample["scene_token"]))
        sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        ep = nusc.get("ego_pose", sd["ego_pose_token"])
        lidar_to_ego = _transform(cs["translation"], cs["rotation"])
        global_to_ego = np.linalg.inv(_transform(ep["translation"], ep["rotation"]))
        pts = load_lidar_bin(Path(nusc.dataroot) / sd["filename"])
        dist = np.linalg.norm(pts[:, :3], axis=1)
        horiz = np.hypot(pts[:, 0], pts[:, 1])
        kept = ~ego_filter_mask(pts[:, :3], pc_cfg)
        off = dist > ORIGIN_M
        ret = kept & off  # returns from the world: off the origin, outside the car's box
        lidar["scans"].append(1)
        lidar["points"].append(len(pts))
        lidar["origin"].append(int((~off).sum()))
        lidar["near"].append(int((off & (horiz < EGO_RADIUS_M)).sum()))
        lidar["near_after_filter"].append(int((kept & off & (horiz < EGO_RADIUS_M)).sum()))
        lidar["origin_after_filter"].append(int((kept & ~off).sum()))
        lidar["removed_by_filter"].append(int((~kept).sum()))
        lidar["intensity"].append(_hist(pts[ret, 3], INTENSITY_BINS))
        lidar["intensity_values"].append(pts[ret, 3][::7])
        lidar["range"].append(_hist(dist[ret], RANGE_BINS))
        rings = pts[ret, 4].astype(int)
        lidar["per_ring"].append(np.bincount(rings, minlength=32)[:32].tolist())
        elev = np.degrees(np.arctan2(pts[ret, 2], horiz[ret]))
        lidar["ring_elevation"].append(
            [
                float(np.median(elev[rings == r])) if (rings == r).any() else np.nan
                for r in range(32)
            ]
        )
        ego_pts = _apply(lidar_to_ego, pts[ret, :3])
        ground_sel = (horiz[ret] > 4) & (horiz[ret] < 25) & (ego_pts[:, 2] < 1.0)
        zh, ze = np.histogram(ego_pts[ground_sel, 2], np.arange(-2.0, 1.0, 0.05))
        lidar["ground_z_ego"].append(float(ze[np.argmax(zh)] + 0.025))

        boxes = []
        for ann_token in sample["anns"]:
            ann = nusc.get("sample_annotation", ann_token)
            cls = CATEGORY_CLASS.get(ann["category_name"])
            visibility[ann["visibility_token"] or "?"] += 1
            center = _apply(global_to_ego, np.asarray(ann["translation"], float)[None])[0]
            if cls is not None:
                sizes[cls].append([float(v) for v in ann["size"]])
                in_ego = global_to_ego @ _transform(ann["translation"], ann["rotation"])
                yaw = math.atan2(in_ego[1, 0], in_ego[0, 0])
                headings[cls].append(math.degrees(abs((yaw + math.pi / 2) % math.pi - math.pi / 2)))
                ground = local_ground(ego_pts, center, ann["size"])
                if ground is not None:
                    bottoms[cls].append(float(center[2] - ann["size"][2] / 2 - ground))
                num_pts[cls].append(int(ann["num_lidar_pts"]))
            boxes.append(nusc.get_box(ann_token))

        for ch in RADAR_CHANNELS:
            if ch not in sample["data"]:
                continue
            rsd = nusc.get("sample_data", sample["data"][ch])
            raw = load_radar_pcd(Path(nusc.dataroot) / rsd["filename"])
            rcs_ = raw[RADAR_FIELDS.index("rcs")]
            vx, vy = raw[RADAR_FIELDS.index("vx_comp")], raw[RADAR_FIELDS.index("vy_comp")]
            rcs_to_global = _transform(
                nusc.get("ego_pose", rsd["ego_pose_token"])["translation"],
                nusc.get("ego_pose", rsd["ego_pose_token"])["rotation"],
            ) @ _transform(
                *(
                    nusc.get("calibrated_sensor", rsd["calibrated_sensor_token"])[k]
                    for k in ("translation", "rotation")
                )
            )
            xyz = _apply(rcs_to_global, raw[:3].T)
            inside = np.zeros(raw.shape[1], bool)
            for box in boxes:
                grown = box.copy()
                grown.wlh = grown.wlh + np.array([1.0, 1.0, 0.0])
                flat = xyz.copy()
                flat[:, 2] = grown.center[2]  # radar z carries no height: test in BEV only
                inside |= points_in_box(grown, flat.T)
            radar["per_scan"].append(raw.shape[1])
            radar["rcs"].append(_hist(rcs_, RCS_BINS))
            radar["rcs_values"].append(rcs_)
            radar["speed"].append(_hist(np.hypot(vx, vy), SPEED_BINS))
            radar["speed_values"].append(np.hypot(vx, vy))
            radar["in_box"].append(int(inside.sum()))

        for ch in CAMERA_CHANNELS:
            csd = nusc.get("sample_data", sample["data"][ch])
            img = cv2.imread(str(Path(nusc.dataroot) / csd["filename"]), cv2.IMREAD_REDUCED_COLOR_4)
            luma = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(float)
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            b, g, r = (img[..., k].mean() for k in range(3))
            cams[condition].append(
                [luma.mean(), luma.std(), r, g, b, hsv[..., 1].mean(), (luma < 16).mean()]
            )
            jpegs[condition].append(jpeg_file_stats(Path(nusc.dataroot) / csd["filename"]))

    n_scans = len(lidar["scans"])
    ring_counts = np.asarray(lidar["per_ring"], float).sum(0) / max(1, n_scans)
    out: dict[str, Any] = {
        "dataroot": str(dataroot),
        "version": nusc.version,
        "keyframes": len(nusc.sample),
        "lidar": {
            "scans": n_scans,
            "points_per_scan": float(np.mean(lidar["points"])),
            "origin_points_per_scan": float(np.mean(lidar["origin"])),
            "within_3m_per_scan": float(np.mean(lidar["near"])),
            "within_3m_after_ego_filter": float(np.mean(lidar["near_after_filter"])),
            "origin_after_ego_filter": float(np.mean(lidar["origin_after_filter"])),
            "removed_by_ego_filter": float(np.mean(lidar["removed_by_filter"])),
            "intensity_bins": INTENSITY_BINS.tolist(),
            "intensity_hist": np.sum(lidar["intensity"], 0).tolist(),
            "intensity": _stats(np.concatenate(lidar["intensity_values"])),
            "range_bins": RANGE_BINS.tolist(),
            "range_per_scan": (np.sum(lidar["range"], 0) / n_scans).tolist(),
            "points_per_ring": ring_counts.tolist(),
            "ring_elevation_deg": np.nanmedian(
                np.asarray(lidar["ring_elevation"], float), 0
            ).tolist(),
            "ground_z_ego": _stats(np.asarray(lidar["ground_z_ego"])),
        },
        "radar": {
            "scans": len(radar["per_scan"]),
            "points_per_scan": _stats(np.asarray(radar["per_scan"])),
            "rcs_bins": RCS_BINS.tolist(),
            "rcs_hist": np.sum(radar["rcs"], 0).tolist() if radar["rcs"] else [],
            "rcs": _stats(np.concatenate(radar["rcs_values"])) if radar["rcs"] else {"n": 0},
            "speed_bins": SPEED_BINS.tolist(),
            "speed_hist": np.sum(radar["speed"], 0).tolist() if radar["speed"] else [],
            "speed": _stats(np.concatenate(radar["speed_values"])) if radar["speed"] else {"n": 0},
            "false_alarm_share": (
                1.0 - float(np.sum(radar["in_box"])) / max(1, int(np.sum(radar["per_scan"])))
            ),
        },
        "cameras": {
            cond: dict(
                zip(
                    ("luma_mean", "luma_std", "r", "g", "b", "saturation", "dark_share"),
                    np.mean(np.asarray(v), 0).tolist(),
                    strict=True,
                )
            )
            | {"images": len(v)}
            | _jpeg_summary(jpegs[cond])
            for cond, v in sorted(cams.items())
        },
        "objects": {
            cls: {
                "boxes": len(v),
                "wlh_mean": np.mean(v, 0).tolist(),
                "wlh_std": np.std(v, 0).tolist(),
                "bottom_above_ground": _stats(np.asarray(bottoms[cls])),
                "heading_to_ego_bins": HEADING_BINS.tolist(),
                "heading_to_ego_hist": _hist(np.asarray(headings[cls]), HEADING_BINS),
                "across_share": float(np.mean(np.asarray(headings[cls]) >= ACROSS_DEG)),
            }
            for cls, v in sorted(sizes.items())
        },
        "annotations": {
            "num_lidar_pts_bins": NUM_PTS_BINS.tolist(),
            "num_lidar_pts": {
                cls: {
                    "hist": _hist(np.asarray(v), NUM_PTS_BINS),
                    "zero_share": float(np.mean(np.asarray(v) == 0)),
                    "median": float(np.median(v)),
                }
                for cls, v in sorted(num_pts.items())
            },
            "visibility": dict(sorted(visibility.items())),
        },
    }
    return out


# -- plots --------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


COLORS = ("tab:green", "tab:red", "tab:blue", "tab:orange", "tab:purple")


def _bars(ax: Any, series: dict[str, list[float]], labels: list[str], title: str) -> None:
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for k, (name, v) in enumerate(series.items()):
        v = np.asarray(v, float) if len(v) else np.zeros(len(labels))  # a sensor the set lacks
        share = v / v.sum() if v.sum() else v
        ax.bar(x + (k - (len(series) - 1) / 2) * width, share, width, label=name, color=COLORS[k])
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)


def _bin_labels(bins: list[float]) -> list[str]:
    return [f"{a:g}-{b:g}" for a, b in zip(bins[:-1], bins[1:], strict=True)]


def plot_all(result: dict[str, Any], folder: Path) -> list[str]:
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    sets = {"real": result["real"], **result["synth"]}
    files = []

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    lid = {k: v["lidar"] for k, v in sets.items()}
    _bars(
        axes[0, 0],
        {k: v["intensity_hist"] for k, v in lid.items()},
        _bin_labels(lid["real"]["intensity_bins"]),
        "LIDAR intensity (returns), share",
    )
    _bars(
        axes[0, 1],
        {k: v["range_per_scan"] for k, v in lid.items()},
        _bin_labels(lid["real"]["range_bins"]),
        "LIDAR points per range bin (m), share",
    )
    for k, (name, v) in enumerate(lid.items()):
        axes[1, 0].plot(range(32), v["points_per_ring"], "o-", ms=3, label=name, color=COLORS[k])
        axes[1, 1].plot(range(32), v["ring_elevation_deg"], "o-", ms=3, label=name, color=COLORS[k])
    axes[1, 0].set_title("LIDAR returns per ring per scan", fontsize=9)
    axes[1, 1].set_title("median elevation per ring (deg)", fontsize=9)
    for ax in axes[1]:
        ax.set_xlabel("ring")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    files.append(_save(fig, folder / "lidar.png"))

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    rad = {k: v["radar"] for k, v in sets.items()}
    _bars(
        axes[0],
        {k: v["rcs_hist"] for k, v in rad.items()},
        _bin_labels(rad["real"]["rcs_bins"]),
        "radar RCS (dBsm), share",
    )
    _bars(
        axes[1],
        {k: v["speed_hist"] for k, v in rad.items()},
        _bin_labels(rad["real"]["speed_bins"]),
        "radar compensated speed (m/s), share",
    )
    names = list(rad)
    axes[2].bar(
        np.arange(len(names)) - 0.2,
        [rad[n]["points_per_scan"].get("mean", 0.0) for n in names],
        0.4,
        label="points per scan",
        color="0.5",
    )
    ax2 = axes[2].twinx()
    ax2.bar(
        np.arange(len(names)) + 0.2,
        [rad[n]["false_alarm_share"] for n in names],
        0.4,
        label="false-alarm share",
        color="tab:red",
    )
    ax2.set_ylim(0, 1)
    axes[2].set_xticks(range(len(names)), names)
    axes[2].set_title("points per scan (grey), false-alarm share (red)", fontsize=9)
    files.append(_save(fig, folder / "radar.png"))

    fig, ax = plt.subplots(figsize=(9, 3.6))
    rows = [(f"{n} {c}", v) for n, d in sets.items() for c, v in d["cameras"].items()]
    keys = ("luma_mean", "luma_std", "r", "g", "b", "saturation")
    x = np.arange(len(keys))
    for k, (label, v) in enumerate(rows):
        ax.bar(
            x + (k - (len(rows) - 1) / 2) * 0.8 / len(rows),
            [v[q] for q in keys],
            0.8 / len(rows),
            label=label,
        )
    ax.set_xticks(x, ["brightness", "contrast", "R", "G", "B", "saturation"])
    ax.set_title("camera image statistics (0-255)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    files.append(_save(fig, folder / "cameras.png"))

    classes = sorted(
        set(result["real"]["objects"])
        & set.intersection(*(set(s["objects"]) for s in result["synth"].values()))
    )
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    for j, dim in enumerate(("width", "length", "height")):
        x = np.arange(len(classes))
        for k, (name, d) in enumerate(sets.items()):
            axes[j].errorbar(
                x + (k - (len(sets) - 1) / 2) * 0.2,
                [d["objects"][c]["wlh_mean"][j] for c in classes],
                yerr=[d["objects"][c]["wlh_std"][j] for c in classes],
                fmt="o",
                label=name,
                color=COLORS[k],
            )
        axes[j].set_xticks(x, classes, rotation=45, ha="right", fontsize=7)
        axes[j].set_title(f"box {dim} (m), mean +- std", fontsize=9)
        axes[j].legend(fontsize=7)
        axes[j].grid(alpha=0.3)
    x = np.arange(len(classes))
    for k, (name, d) in enumerate(sets.items()):
        axes[3].plot(
            x + (k - (len(sets) - 1) / 2) * 0.2,
            [d["objects"][c]["bottom_above_ground"].get("median", float("nan")) for c in classes],
            "o",
            label=name,
            color=COLORS[k],
        )
    axes[3].set_xticks(x, classes, rotation=45, ha="right", fontsize=7)
    axes[3].set_title("box bottom above LIDAR ground (m), median", fontsize=9)
    axes[3].legend(fontsize=7)
    axes[3].grid(alpha=0.3)
    files.append(_save(fig, folder / "objects.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    merged = {
        n: np.sum([v["hist"] for v in d["annotations"]["num_lidar_pts"].values()], 0).tolist()
        for n, d in sets.items()
    }
    _bars(
        axes[0],
        merged,
        _bin_labels(result["real"]["annotations"]["num_lidar_pts_bins"]),
        "num_lidar_pts per box, share",
    )
    levels = ["1", "2", "3", "4"]
    _bars(
        axes[1],
        {n: [d["annotations"]["visibility"].get(v, 0) for v in levels] for n, d in sets.items()},
        ["v0-40", "v40-60", "v60-80", "v80-100"],
        "visibility, share of boxes",
    )
    files.append(_save(fig, folder / "annotations.png"))
    return files


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    _pyplot().close(fig)
    from PIL import Image

    Image.open(path).convert("RGB").quantize(64).save(path, optimize=True)
    return path.name


# -- the gap, in one table, and the markdown ----------------------------------------------------


def gaps(real: dict[str, Any], synth: dict[str, Any]) -> dict[str, float]:
    """One figure per quantity (synthetic minus real, or a histogram distance; NaN where a
    set lacks the sensor)."""
    nan = float("nan")
    rl, sl = real["lidar"], synth["lidar"]
    out = {
        "lidar intensity TV distance": tv_distance(rl["intensity_hist"], sl["intensity_hist"]),
        "lidar intensity median, synth - real": sl["intensity"]["median"]
        - rl["intensity"]["median"],
        "lidar intensity p90, synth - real": sl["intensity"]["p90"] - rl["intensity"]["p90"],
        "lidar points per range bin TV distance": tv_distance(
            rl["range_per_scan"], sl["range_per_scan"]
        ),
        "lidar points per ring TV distance": tv_distance(
            rl["points_per_ring"], sl["points_per_ring"]
        ),
        "lidar ring elevation, max abs diff (deg)": float(
            np.nanmax(
                np.abs(np.asarray(rl["ring_elevation_deg"]) - np.asarray(sl["ring_elevation_deg"]))
            )
        ),
        "lidar points within 3 m, synth - real (raw)": sl["within_3m_per_scan"]
        - rl["within_3m_per_scan"],
        "lidar points within 3 m, synth - real (after ego filter)": sl["within_3m_after_ego_filter"]
        - rl["within_3m_after_ego_filter"],
        "lidar ground z in ego frame, synth - real (m)": sl["ground_z_ego"]["median"]
        - rl["ground_z_ego"]["median"],
        "radar RCS TV distance": tv_distance(real["radar"]["rcs_hist"], synth["radar"]["rcs_hist"]),
        "radar speed TV distance": tv_distance(
            real["radar"]["speed_hist"], synth["radar"]["speed_hist"]
        ),
        "radar points per scan, synth / real": synth["radar"]["points_per_scan"].get("mean", nan)
        / real["radar"]["points_per_scan"].get("mean", nan),
        "radar false-alarm share, synth - real": synth["radar"]["false_alarm_share"]
        - real["radar"]["false_alarm_share"],
    }
    rd = real["cameras"].get("day")
    sd = synth["cameras"].get("day")
    if rd and sd:
        out["camera day brightness, synth - real"] = sd["luma_mean"] - rd["luma_mean"]
        out["camera day contrast, synth - real"] = sd["luma_std"] - rd["luma_std"]
        out["camera day saturation, synth - real"] = sd["saturation"] - rd["saturation"]
        if "jpeg_kb" in rd and "jpeg_kb" in sd:
            out["camera day JPEG kB per image, synth - real"] = sd["jpeg_kb"] - rd["jpeg_kb"]
    for cls, ro in real["objects"].items():
        so = synth["objects"].get(cls)
        if so is None:
            continue
        rel = np.abs(np.asarray(so["wlh_mean"]) / np.asarray(ro["wlh_mean"]) - 1.0)
        out[f"{cls} size, max relative error of mean w/l/h"] = float(rel.max())
        out[f"{cls} bottom above ground, synth - real (m)"] = so["bottom_above_ground"].get(
            "median", float("nan")
        ) - ro["bottom_above_ground"].get("median", float("nan"))
        if "across_share" in ro and "across_share" in so:  # older results have no headings
            out[f"{cls} share across the ego's axis, synth - real"] = (
                so["across_share"] - ro["across_share"]
            )
            out[f"{cls} heading to the ego's axis TV distance"] = tv_distance(
                ro["heading_to_ego_hist"], so["heading_to_ego_hist"]
            )
    ra, sa = real["annotations"], synth["annotations"]
    merged = [
        np.sum([v["hist"] for v in a["num_lidar_pts"].values()], 0).tolist() for a in (ra, sa)
    ]
    out["num_lidar_pts TV distance"] = tv_distance(*merged)
    levels = ["1", "2", "3", "4"]
    out["visibility TV distance"] = tv_distance(
        [ra["visibility"].get(v, 0) for v in levels], [sa["visibility"].get(v, 0) for v in levels]
    )
    return out


def _f(v: Any, digits: int = 2) -> str:
    if isinstance(v, float):
        return "n/a" if np.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def to_markdown(result: dict[str, Any]) -> str:
    real, synth = result["real"], result["synth"]
    names = ["real", *synth]
    sets = {"real": real, **synth}
    nan = float("nan")
    plots = result.get("plot_dir", "sim2real")  # the plots' folder, beside the markdown
    lines = [
        "# The sim-to-real gap",
        "",
        f"Generated from `{result.get('json_name', 'sim2real.json')}` by:",
        "",
        f"    {result['command']}",
        "",
        f"Real: `{real['dataroot']}` ({real['keyframes']} keyframes). "
        + "; ".join(
            f"{n}: `{s['dataroot']}` ({s['keyframes']} keyframes)" for n, s in synth.items()
        )
        + ". Keyframes only. What each figure is: `benchmarks/sim2real.py`'s docstring.",
        "",
        "## The gap, one figure per quantity",
        "",
        "| quantity | " + " | ".join(f"{n} vs real" for n in synth) + " |",
        "|---|" + "---:|" * len(synth),
    ]
    table = {n: gaps(real, s) for n, s in synth.items()}
    first = next(iter(table.values()))
    for key in first:
        lines.append(
            f"| {key} | " + " | ".join(_f(table[n].get(key, float("nan"))) for n in synth) + " |"
        )

    def row(label: str, values: list[Any], digits: int = 1) -> str:
        return f"| {label} | " + " | ".join(_f(v, digits) for v in values) + " |"

    head = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines += ["", "## LIDAR", "", *head]
    L = {n: sets[n]["lidar"] for n in names}
    lines += [
        row("points per scan", [L[n]["points_per_scan"] for n in names], 0),
        row(
            "points at the sensor origin (no return) per scan",
            [L[n]["origin_points_per_scan"] for n in names],
            0,
        ),
        row(
            "points within 3 m off the origin per scan (ego returns)",
            [L[n]["within_3m_per_scan"] for n in names],
            0,
        ),
        row("... after the ego filter", [L[n]["within_3m_after_ego_filter"] for n in names], 0),
        row(
            "points removed by the ego filter per scan",
            [L[n]["removed_by_ego_filter"] for n in names],
            0,
        ),
        row("intensity mean", [L[n]["intensity"]["mean"] for n in names]),
        row("intensity median", [L[n]["intensity"]["median"] for n in names]),
        row("intensity p90", [L[n]["intensity"]["p90"] for n in names]),
        row("ground z, ego frame (m), median", [L[n]["ground_z_ego"]["median"] for n in names], 3),
        row("lowest ring elevation (deg)", [L[n]["ring_elevation_deg"][0] for n in names]),
        row("highest ring elevation (deg)", [L[n]["ring_elevation_deg"][31] for n in names]),
    ]
    lines += ["", f"![LIDAR]({plots}/lidar.png)", "", "## Radar", "", *head]
    R = {n: sets[n]["radar"] for n in names}
    lines += [
        row("points per scan (mean)", [R[n]["points_per_scan"].get("mean", nan) for n in names]),
        row("RCS median (dBsm)", [R[n]["rcs"].get("median", float("nan")) for n in names]),
        row(
            "compensated speed median (m/s)",
            [R[n]["speed"].get("median", float("nan")) for n in names],
            2,
        ),
        row(
            "compensated speed p90 (m/s)",
            [R[n]["speed"].get("p90", float("nan")) for n in names],
            2,
        ),
        row("false-alarm share (points in no box)", [R[n]["false_alarm_share"] for n in names], 2),
    ]
    lines += ["", f"![radar]({plots}/radar.png)", "", "## Cameras", ""]
    lines += [
        "| set, condition | images | brightness | contrast | R | G | B | saturation | dark share"
        " | JPEG kB / image | JPEG quality |"
    ]
    lines += ["|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in names:
        for cond, c in sets[n]["cameras"].items():
            quality = ", ".join("other" if q is None else str(q) for q in c.get("jpeg_quality", []))
            kb = _f(c.get("jpeg_kb", float("nan")), 0)
            lines.append(
                f"| {n}, {cond} | {c['images']} | {c['luma_mean']:.1f} | {c['luma_std']:.1f} | "
                f"{c['r']:.1f} | {c['g']:.1f} | {c['b']:.1f} | {c['saturation']:.1f} | "
                f"{c['dark_share']:.2f} | {kb} | {quality or '-'} |"
            )
    lines += ["", f"![cameras]({plots}/cameras.png)", "", "## Objects", ""]
    lines += [
        "| class | "
        + " | ".join(f"{n} w / l / h (m) [boxes]" for n in names)
        + " | "
        + " | ".join(f"{n} bottom above ground (m)" for n in names)
        + " |"
    ]
    lines += ["|---|" + "---:|" * (2 * len(names))]
    for cls in sorted(real["objects"]):
        cells, bottom = [], []
        for n in names:
            o = sets[n]["objects"].get(cls)
            cells.append(
                "-"
                if o is None
                else " / ".join(f"{v:.2f}" for v in o["wlh_mean"]) + f" [{o['boxes']}]"
            )
            bottom.append(
                "-" if o is None else _f(o["bottom_above_ground"].get("median", float("nan")))
            )
        lines.append(f"| {cls} | " + " | ".join(cells) + " | " + " | ".join(bottom) + " |")
    if "across_share" in next(iter(real["objects"].values()), {}):  # older results: none
        across = " | ".join(f"{n}: share across the ego's axis (>= 60 deg)" for n in names)
        lines += ["", f"| class | {across} |", "|---|" + "---:|" * len(names)]
        for cls in sorted(real["objects"]):
            shares = [sets[n]["objects"].get(cls, {}).get("across_share") for n in names]
            cells = " | ".join("-" if v is None else f"{v:.2f}" for v in shares)
            lines.append(f"| {cls} | {cells} |")
    lines += ["", f"![objects]({plots}/objects.png)", "", "## Annotations", ""]
    lines += [
        "| class | " + " | ".join(f"{n}: share with 0 LIDAR points / median" for n in names) + " |"
    ]
    lines += ["|---|" + "---:|" * len(names)]
    for cls in sorted(real["annotations"]["num_lidar_pts"]):
        cells = []
        for n in names:
            a = sets[n]["annotations"]["num_lidar_pts"].get(cls)
            cells.append("-" if a is None else f"{a['zero_share']:.2f} / {a['median']:.0f}")
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    vis = ["1", "2", "3", "4"]
    lines += [
        "",
        "| visibility (v0-40 / v40-60 / v60-80 / v80-100), share | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    cells = []
    for n in names:
        v = sets[n]["annotations"]["visibility"]
        tot = max(1, sum(v.get(k, 0) for k in vis))
        cells.append(" / ".join(f"{v.get(k, 0) / tot:.2f}" for k in vis))
    lines.append("| | " + " | ".join(cells) + " |")
    lines += ["", f"![annotations]({plots}/annotations.png)"]
    for section in result.get("notes", []):
        lines += ["", section]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--real", type=Path)
    p.add_argument("--synth", action="append", default=[], metavar="NAME=DATAROOT")
    p.add_argument("--generate", type=Path, help="generate the synthetic set here first (as `now`)")
    p.add_argument("--from-json", type=Path)
    p.add_argument(
        "--notes", type=Path, help="markdown appended to the report (changes, before/after)"
    )
    p.add_argument("--json-out", type=Path)
    p.add_argument("--markdown-out", type=Path)
    p.add_argument("--plots", type=Path)
    args = p.parse_args(argv)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
    else:
        if args.real is None:
            p.error("give --real DATAROOT (or --from-json)")
        synth = dict(s.split("=", 1) for s in args.synth)
        if args.generate:
            cmd = [sys.executable, "-m", "fusion.cli", "generate", "--out", str(args.generate)]
            cmd += ["--version", "v1.0-synth", "--scenes", "2", "--samples-per-scene", "6"]
            cmd += ["--seed", "99", "--conditions", "day,night", "--image-size", "1600x900"]
            cmd += ["--workers", "2"]
            subprocess.run(cmd, check=True)
            synth["now"] = str(args.generate)
        if not synth:
            p.error("give --synth NAME=DATAROOT or --generate DIR")
        result = {
            "command": "python benchmarks/sim2real.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "real": measure(args.real),
            "synth": {n: measure(Path(d)) for n, d in synth.items()},
        }
    if args.notes:
        result["notes"] = [args.notes.read_text()]
    if args.plots and not args.from_json:
        result["plots"] = plot_all(result, args.plots)
        result["plot_dir"] = args.plots.name
    if args.json_out and not args.from_json:
        result["json_name"] = args.json_out.name
    text = to_markdown(result)
    print(text)
    if args.json_out and not args.from_json:
        args.json_out.write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown_out:
        args.markdown_out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
