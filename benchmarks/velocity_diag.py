"""Predicted against true speed per class, for the velocity figures of benchmarks/accuracy.md.

    python benchmarks/velocity_diag.py --dataroot data/synth-val --version v1.0-synth \
        --split synth_all --out scratch/diag --model NAME=WEIGHTS [--model NAME=WEIGHTS] \
        [--zero-doppler]

Each detection scoring >= 0.3 is matched to the nearest unmatched ground-truth box of its class
within 2 m (greedy by score; boxes with unknown velocity are skipped). Velocities are compared
in the LIDAR_TOP frame, m/s. Writes OUT/NAME.json (the matched pairs), OUT/speed.png (one panel
per model) and prints, per class, the median true and predicted speed and the mean velocity
error over all matched boxes and over the moving ones (> 1 m/s).

`--zero-doppler` adds, for each model that reads radar, a run with the radar points' Doppler
columns (vx, vy) set to 0 and everything else unchanged: whether the Doppler in the radar
raster reaches the head's velocity.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from fusion.config import DETECTION_CLASSES, RADAR_POINT_COLUMNS
from fusion.data.reader import NuScenesReader
from fusion.engines.runner import Runner, open_engine
from fusion.frame import Frame
from fusion.model.weights import load_detector

MIN_SCORE = 0.3
MATCH_M = 2.0


DOPPLER = [RADAR_POINT_COLUMNS.index("vx"), RADAR_POINT_COLUMNS.index("vy")]


def without_doppler(frame: Frame) -> Frame:
    """`frame` with every radar point's vx and vy set to 0."""
    radars = {}
    for ch, radar in frame.radars.items():
        points = radar.points.copy()
        points[:, DOPPLER] = 0.0
        radars[ch] = dataclasses.replace(radar, points=points)
    return dataclasses.replace(frame, radars=radars)


def matched_pairs(
    dataroot: Path, version: str, split: str, weights: Path, zero_doppler: bool = False
) -> list[list]:
    """[class, true vx, vy, predicted vx, vy] per matched detection."""
    model = load_detector(weights)
    cfg = model.cfg
    reader = NuScenesReader(dataroot, version, config=cfg)
    runner = Runner(cfg, model.variant, open_engine("torch", model, "/tmp", "cpu"), model.params)
    pairs: list[list] = []
    for tok in reader.sample_tokens(split):
        frame = reader.frame(tok)
        if zero_doppler:
            frame = without_doppler(frame)
        dets, _ = runner.detect(frame)
        gt = frame.boxes
        used: set[int] = set()
        for j in np.argsort(-dets.scores):
            if dets.scores[j] < MIN_SCORE:
                continue
            name = DETECTION_CLASSES[int(dets.labels[j])]
            cand = [
                i
                for i, n in enumerate(gt.detection_names)
                if n == name and i not in used and np.isfinite(gt.velocity_lidar[i]).all()
            ]
            if not cand:
                continue
            dist = np.hypot(*(gt.center_lidar[cand, :2] - dets.center[j, :2]).T)
            k = int(np.argmin(dist))
            if dist[k] < MATCH_M:
                used.add(cand[k])
                pairs.append(
                    [name, *map(float, gt.velocity_lidar[cand[k]]), *map(float, dets.velocity[j])]
                )
    return pairs


def summary(pairs: list[list]) -> list[str]:
    lines = ["class                  n  true med  pred med  error  error(moving)"]
    for cls in DETECTION_CLASSES:
        p = np.array([r[1:] for r in pairs if r[0] == cls], np.float64).reshape(-1, 4)
        if not len(p):
            continue
        true, pred = np.hypot(p[:, 0], p[:, 1]), np.hypot(p[:, 2], p[:, 3])
        err = np.hypot(p[:, 0] - p[:, 2], p[:, 1] - p[:, 3])
        moving = f"{err[true > 1].mean():.2f}" if (true > 1).any() else "-"
        lines.append(
            f"{cls:20s} {len(p):4d} {np.median(true):8.2f} {np.median(pred):9.2f} "
            f"{err.mean():6.2f}  {moving}"
        )
    return lines


def plot(panels: dict[str, list[list]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.5), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (title, pairs) in zip(axes[0], panels.items(), strict=True):
        for k, cls in enumerate(DETECTION_CLASSES):
            p = np.array([r[1:] for r in pairs if r[0] == cls], np.float64).reshape(-1, 4)
            if len(p):
                true, pred = np.hypot(p[:, 0], p[:, 1]), np.hypot(p[:, 2], p[:, 3])
                ax.scatter(true, pred, s=8, color=cmap(k), label=cls, alpha=0.7)
        ax.plot([0, 12], [0, 12], "k--", lw=0.8)
        ax.set(xlim=(0, 12), ylim=(0, 12), aspect="equal", title=title)
        ax.set(xlabel="true speed (m/s)", ylabel="predicted speed (m/s)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataroot", type=Path, required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--model", action="append", required=True, metavar="NAME=WEIGHTS")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--zero-doppler",
        action="store_true",
        help="also run each radar-reading model with the radar points' vx, vy set to 0",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    models = dict(item.split("=", 1) for item in args.model)
    runs = [(name, Path(w), False) for name, w in models.items()]
    if args.zero_doppler:
        runs += [
            (f"{name}, Doppler zeroed", Path(w), True)
            for name, w in models.items()
            if "radar" in load_detector(Path(w)).modalities
        ]
    panels = {}
    for name, weights, zero in runs:
        panels[name] = matched_pairs(args.dataroot, args.version, args.split, weights, zero)
        (args.out / f"{name}.json").write_text(json.dumps(panels[name]))
        print(name, *summary(panels[name]), sep="\n")
    plot(panels, args.out / "speed.png")


if __name__ == "__main__":
    main()
