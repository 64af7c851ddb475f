"""Heading and sub-cell position of detected boxes against the ground truth, per model run.

    fusion eval --dataroot data/real-0916-ho --version v1.0-mini --split ho_test \
        --models fusion,camera,lidar --out runs/ev_ho
    python benchmarks/accuracy/headings.py --dataroot data/real-0916-ho --version v1.0-mini \
        --run fusion=runs/ev_ho/fusion/results_nusc.json --run lidar=... \
        --json-out benchmarks/accuracy/issue17_headings.json \
        --plot benchmarks/accuracy/issue17_headings.png

The devkit's mAP matches boxes by centre distance only, so it cannot show a model that finds
the objects but turns them; its mAOE averages the heading error over every match. This script
shows how the error is distributed. Each annotated box of `--category` (with at least one LIDAR
point) in the run's samples is matched to the nearest detection of `--detection-name` (score >=
`--score`) within `--max-distance` m in BEV. Per run it reports the share of matches whose
heading is within 15 degrees, about 90 degrees off (75-105) and about 180 degrees off
(>= 165), histograms of the heading error and of the predicted and true headings in the ego
frame (where a prior such as "cars follow the ego's road" shows as peaks at 0 and 180 degrees),
and the detections' position within their BEV cell (`--config`'s grid, LIDAR_TOP frame): the
regression head's sub-cell offset, uniform over the cell when it localises below the cell size,
peaked at the centre when it does not. The matched detections' centre error is split along and
across the ray from the LIDAR to the true centre (a detector that puts the centre on the near,
visible side shows a negative median along the ray) and along the true box's length and width.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pyquaternion import Quaternion

BINS_DEG = np.arange(-180, 181, 30)
POS_BINS_M = np.arange(-2.0, 2.01, 0.25)


def _tables(root: Path, version: str) -> dict[str, list[dict]]:
    names = ("sample_data", "ego_pose", "calibrated_sensor", "sensor", "instance", "category",
             "sample_annotation")  # fmt: skip
    out = {}
    for name in names:
        path = root / version / f"{name}.json"
        try:
            out[name] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"{path}: cannot read the table ({e})") from e
    return out


def _yaw(q: Quaternion) -> float:
    return float(q.yaw_pitch_roll[0])


def _hist(rad: np.ndarray) -> list[int]:
    return np.histogram(np.degrees(rad), BINS_DEG)[0].tolist()


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def measure(
    tables: dict[str, list[dict]],
    results: dict[str, list[dict]],
    category: str,
    detection_name: str,
    score: float,
    max_distance: float,
    grid_origin: tuple[float, float],
    cell: tuple[float, float],
) -> dict:
    channel = {s["token"]: s["channel"] for s in tables["sensor"]}
    calib = {c["token"]: c for c in tables["calibrated_sensor"]}
    poses = {e["token"]: e for e in tables["ego_pose"]}
    cats = {c["token"]: c["name"] for c in tables["category"]}
    inst = {i["token"]: cats[i["category_token"]] for i in tables["instance"]}
    lidar = {}
    for r in tables["sample_data"]:
        if r["is_key_frame"] and channel[calib[r["calibrated_sensor_token"]]["sensor_token"]] == (
            "LIDAR_TOP"
        ):
            lidar[r["sample_token"]] = r
    truth: dict[str, list[dict]] = {}
    for a in tables["sample_annotation"]:
        if inst[a["instance_token"]].startswith(category) and a["num_lidar_pts"] > 0:
            truth.setdefault(a["sample_token"], []).append(a)
    err, pred_yaw, true_yaw, frac, pos = [], [], [], [], []
    for token, dets in results.items():
        if token not in lidar:
            continue
        rec = lidar[token]
        pose, cal = poses[rec["ego_pose_token"]], calib[rec["calibrated_sensor_token"]]
        q_ego, t_ego = Quaternion(pose["rotation"]), np.asarray(pose["translation"])
        q_cal, t_cal = Quaternion(cal["rotation"]), np.asarray(cal["translation"])
        mine = [d for d in dets if d["detection_name"] == detection_name
                and d["detection_score"] >= score]  # fmt: skip
        centres = np.array([q_ego.inverse.rotate(np.asarray(d["translation"]) - t_ego)
                            for d in mine]).reshape(-1, 3)  # fmt: skip
        headings = [_yaw(q_ego.inverse * Quaternion(d["rotation"])) for d in mine]
        pred_yaw += headings
        for c in centres:  # the LIDAR_TOP frame: the BEV grid's
            p = q_cal.inverse.rotate(c - t_cal)
            frac.append(((p[0] - grid_origin[0]) / cell[0] % 1.0,
                         (p[1] - grid_origin[1]) / cell[1] % 1.0))  # fmt: skip
        for a in truth.get(token, []):
            g = q_ego.inverse.rotate(np.asarray(a["translation"]) - t_ego)
            gy = _yaw(q_ego.inverse * Quaternion(a["rotation"]))
            true_yaw.append(gy)
            if not len(centres):
                continue
            dist = np.linalg.norm(centres[:, :2] - g[:2], axis=1)
            i = int(dist.argmin())
            if dist[i] <= max_distance:
                err.append(headings[i] - gy)
                pos.append(_position_error(centres[i, :2] - g[:2], g[:2] - t_cal[:2], gy))
    e = np.abs(_wrap(np.asarray(err))) if err else np.zeros(0)
    p = np.asarray(pos).reshape(-1, 4)
    f = np.asarray(frac).reshape(-1, 2)
    n = max(1, len(e))
    central = float(np.mean(np.all(np.abs(f - 0.5) <= 0.1, axis=1))) if len(f) else 0.0
    return {
        "matched": len(err),
        "annotations": len(true_yaw),
        "detections": len(pred_yaw),
        "within_15deg": float(np.sum(e < np.radians(15)) / n),
        "about_90deg": float(np.sum((e >= np.radians(75)) & (e <= np.radians(105))) / n),
        "about_180deg": float(np.sum(e >= np.radians(165)) / n),
        "mean_abs_heading_error_rad": float(e.mean()) if len(e) else None,
        "heading_error_hist": _hist(_wrap(np.asarray(err))),
        "pred_yaw_ego_hist": _hist(np.asarray(pred_yaw)),
        "true_yaw_ego_hist": _hist(np.asarray(true_yaw)),
        # the share of detections whose centre is in the central 20 % x 20 % of its cell's
        # width (4 % of the area for positions uniform over the cell)
        "centre_in_central_cell_fifth": central,
        **_position_summary(p),
    }


def _position_error(delta: np.ndarray, ray: np.ndarray, yaw: float) -> tuple[float, ...]:
    """A matched detection's BEV centre error: along the ray from the LIDAR to the true
    centre (negative: short of it, towards the sensor) and across it, then along the true
    box's length and width (ego frame)."""
    r = ray / max(1e-6, float(np.linalg.norm(ray)))
    h = np.array([np.cos(yaw), np.sin(yaw)])
    return (float(delta @ r), float(delta @ np.array([-r[1], r[0]])),
            float(delta @ h), float(delta @ np.array([-h[1], h[0]])))  # fmt: skip


def _position_summary(p: np.ndarray) -> dict:
    if not len(p):
        return {"position_error": None}
    d = np.hypot(p[:, 0], p[:, 1])
    return {
        "position_error": {
            "median_m": float(np.median(d)),
            "within_0.5m": float(np.mean(d <= 0.5)),
            "within_1m": float(np.mean(d <= 1.0)),
            # a systematic offset shows as a median far from 0 on one axis
            "radial_median_m": float(np.median(p[:, 0])),
            "radial_mean_abs_m": float(np.abs(p[:, 0]).mean()),
            "tangential_median_m": float(np.median(p[:, 1])),
            "tangential_mean_abs_m": float(np.abs(p[:, 1]).mean()),
            "along_length_mean_abs_m": float(np.abs(p[:, 2]).mean()),
            "along_width_mean_abs_m": float(np.abs(p[:, 3]).mean()),
            "radial_hist": np.histogram(p[:, 0], POS_BINS_M)[0].tolist(),
        }
    }


def to_markdown(result: dict) -> str:
    lines = [
        f"Matched `{result['category']}` boxes (nearest `{result['detection_name']}` detection"
        f" with score >= {result['score']} within {result['max_distance']} m), dataroot"
        f" `{result['dataroot']}`; {result['date']}.",
        "",
        "| run | matched / annotated | heading within 15 deg | ~90 deg off | ~180 deg off"
        " | detections centred in the middle fifth of their cell (uniform: 0.04)"
        " | centre error median m (within 0.5 m) | median along / across the ray m"
        " | mean abs along the length / width m |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in result["runs"].items():
        pos = r.get("position_error")  # absent from records written before it
        cells = (
            f" | {pos['median_m']:.2f} ({pos['within_0.5m']:.2f})"
            f" | {pos['radial_median_m']:+.2f} / {pos['tangential_median_m']:+.2f}"
            f" | {pos['along_length_mean_abs_m']:.2f} / {pos['along_width_mean_abs_m']:.2f} |"
            if pos
            else " | | | |"
        )
        lines.append(
            f"| {name} | {r['matched']} / {r['annotations']} | {r['within_15deg']:.2f}"
            f" | {r['about_90deg']:.2f} | {r['about_180deg']:.2f}"
            f" | {r['centre_in_central_cell_fifth']:.2f}" + cells
        )
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    centres = (BINS_DEG[:-1] + BINS_DEG[1:]) / 2
    positions = {n: r["position_error"] for n, r in runs.items() if r.get("position_error")}
    fig, axes = plt.subplots(1, 3 if positions else 2, figsize=(18 if positions else 12, 4.2))
    width = 30 / (len(runs) + 1)
    for k, (name, r) in enumerate(runs.items()):
        x = centres - 15 + width * (k + 0.5)
        h = np.asarray(r["heading_error_hist"], float)
        axes[0].bar(x, h / max(1.0, h.sum()), width=width, label=name)
        p = np.asarray(r["pred_yaw_ego_hist"], float)
        axes[1].bar(x, p / max(1.0, p.sum()), width=width, label=name)
    truths: dict[tuple[int, ...], list[str]] = {}  # runs on the same samples share a truth
    for name, r in runs.items():
        truths.setdefault(tuple(r["true_yaw_ego_hist"]), []).append(name)
    for (hist, names), style in zip(truths.items(), ("-", "--", ":", "-."), strict=False):
        t = np.asarray(hist, float)
        axes[1].step(BINS_DEG, np.append(t, t[-1]) / max(1.0, t.sum()), where="post", color="k",
                     linestyle=style, label=f"ground truth of {names[0]}")  # fmt: skip
    axes[0].set(xlabel="heading error (deg)", ylabel="share of matched boxes",
                title=f"{result['category']}: predicted minus true heading")  # fmt: skip
    axes[1].set(xlabel="heading in the ego frame (deg; 0 = ego forward)", ylabel="share",
                title="predicted headings (bars) and true ones (lines)")  # fmt: skip
    for ax in axes[:2]:
        ax.set_xticks(BINS_DEG)
        ax.legend(fontsize=7)
    if positions:  # records written before the split have none
        mids = (POS_BINS_M[:-1] + POS_BINS_M[1:]) / 2
        for name, pos in positions.items():
            h = np.asarray(pos["radial_hist"], float)
            axes[2].step(mids, h / max(1.0, h.sum()), where="mid",
                         label=f"{name} (median {pos['median_m']:.2f} m)")  # fmt: skip
        axes[2].axvline(0.0, color="k", linewidth=0.8)
        axes[2].set(xlabel="centre error along the ray from the LIDAR (m; < 0: short of it)",
                    ylabel="share of matched boxes", title="where the centres go")  # fmt: skip
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataroot", type=Path, required=True)
    ap.add_argument("--version", default="v1.0-mini")
    ap.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="NAME=RESULTS_JSON",
        help="a devkit results file (fusion eval's OUT/<model>/results_nusc.json)",
    )
    ap.add_argument("--category", default="vehicle.car")
    ap.add_argument("--detection-name", default="car")
    ap.add_argument("--score", type=float, default=0.3)
    ap.add_argument("--max-distance", type=float, default=2.0)
    ap.add_argument("--config", default="real_sweeps10", help="the BEV grid's config")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args(argv)

    from fusion.config import load_config

    bev = load_config(args.config).bev
    tables = _tables(args.dataroot, args.version)
    runs = {}
    for spec in args.run:
        name, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"--run {spec!r}: expected NAME=RESULTS_JSON")
        try:
            results = json.loads(Path(path).read_text())["results"]
        except (OSError, json.JSONDecodeError, KeyError) as e:
            raise SystemExit(f"{path}: not a devkit results file ({e})") from e
        runs[name] = measure(tables, results, args.category, args.detection_name, args.score,
                             args.max_distance, (bev.bev_range[0], bev.bev_range[1]),
                             (bev.cell_size[0], bev.cell_size[1]))  # fmt: skip
        runs[name]["results"] = path
    result = {
        "command": "python benchmarks/accuracy/headings.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "dataroot": str(args.dataroot),
        "category": args.category,
        "detection_name": args.detection_name,
        "score": args.score,
        "max_distance": args.max_distance,
        "bins_deg": BINS_DEG.tolist(),
        "runs": runs,
    }
    print(to_markdown(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
