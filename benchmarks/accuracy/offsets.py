"""The regression head's sub-cell offset at the ground-truth centre cells, against its target.

    python benchmarks/accuracy/offsets.py --weights fusion/weights/fusion.safetensors \
        --set "ho_train=data/real-0916-ho,v1.0-mini,ho_train" \
        --set "ho_test=data/real-0916-ho,v1.0-mini,ho_test" \
        --set "val A=data/synth-val-q80,v1.0-synth,synth_all" --samples 6 \
        --json-out benchmarks/accuracy/issue17_offsets.json

`headings.py` shows the detections of real keyframes sitting at the centres of their BEV cells.
This script asks why, without the decode in between: for each annotated box of `--detection-name`
(the devkit's filter: at least one LIDAR or radar point), the model's raw offset output (x and y,
in cells) at the cell that holds the box's centre, against the target there (the centre's
position in that cell, 0-1). The frames are built as training builds them, without augmentation
or dropout. A head that localises below the cell has a correlation near 1 and a mean absolute
error well below that of predicting every centre at the middle of its cell (about 0.25 for
centres spread over the cell); one that does not has a correlation near 0 and the same error as
the middle.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np


def measure(pairs: Iterable[tuple[np.ndarray, object]], class_index: int) -> dict:
    """`pairs`: (predicted regression map (10, ny, nx), TargetMaps) per sample."""
    pred, true = [], []
    for regression, targets in pairs:
        iy, ix = np.nonzero(targets.mask)
        keep = targets.heatmap[:, iy, ix].argmax(axis=0) == class_index
        iy, ix = iy[keep], ix[keep]
        pred.append(np.asarray(regression)[0:2, iy, ix].T)
        true.append(targets.regression[0:2, iy, ix].T)
    p = np.concatenate(pred or [np.zeros((0, 2))]).astype(np.float64)
    t = np.concatenate(true or [np.zeros((0, 2))]).astype(np.float64)
    out: dict = {"boxes": len(p)}
    if len(p) < 2:
        return out

    def corr(a: np.ndarray, b: np.ndarray) -> float | None:
        if a.std() == 0 or b.std() == 0:
            return None
        return float(np.corrcoef(a, b)[0, 1])

    return out | {
        "correlation_xy": [corr(p[:, 0], t[:, 0]), corr(p[:, 1], t[:, 1])],
        "mean_abs_error_cells": float(np.abs(p - t).mean()),
        "mean_abs_error_of_the_middle_cells": float(np.abs(0.5 - t).mean()),
        "predicted_mean_xy": p.mean(axis=0).round(4).tolist(),
        "predicted_sd_xy": p.std(axis=0).round(4).tolist(),
        "target_sd_xy": t.std(axis=0).round(4).tolist(),
    }


def model_pairs(model, dataroot: Path, version: str, split: str, samples: int):
    """(regression map, targets) of the first `samples` keyframes of the split, un-augmented."""
    import torch

    from fusion.data.reader import NuScenesReader
    from fusion.train.dataset import collate_training, training_sample

    cfg = model.cfg
    reader = NuScenesReader(dataroot, version, config=cfg)
    for token in reader.sample_tokens(split)[:samples]:
        sample = training_sample(reader.frame(token), cfg, model.variant, model.params)
        inputs, _ = collate_training([sample], cfg)
        with torch.no_grad():
            out = model(inputs)
        yield out.maps.regression[0].numpy(), sample.targets


def to_markdown(result: dict) -> str:
    lines = [
        f"Offsets of `{result['weights']}` at the {result['detection_name']} centre cells,"
        f" {result['samples']} keyframes a set",
        "",
        "| set | boxes | correlation x / y | mean abs error (cells) | the middle's error |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in result["sets"].items():
        if "correlation_xy" not in r:
            lines.append(f"| {name} | {r['boxes']} | - | - | - |")
            continue
        c = " / ".join("-" if v is None else f"{v:.2f}" for v in r["correlation_xy"])
        lines.append(
            f"| {name} | {r['boxes']} | {c} | {r['mean_abs_error_cells']:.3f}"
            f" | {r['mean_abs_error_of_the_middle_cells']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, type=Path)
    ap.add_argument("--set", action="append", required=True, metavar="NAME=DATAROOT,VERSION,SPLIT")
    ap.add_argument("--samples", type=int, default=6, help="keyframes a set (the first N)")
    ap.add_argument("--detection-name", default="car")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)

    from fusion.config import DETECTION_CLASSES
    from fusion.model.weights import load_detector

    if args.detection_name not in DETECTION_CLASSES:
        raise SystemExit(f"--detection-name {args.detection_name!r}: not a detection class")
    model = load_detector(args.weights).eval()
    sets = {}
    for spec in args.set:
        name, sep, rest = spec.partition("=")
        parts = rest.split(",")
        if not sep or len(parts) != 3:
            raise SystemExit(f"--set {spec!r}: expected NAME=DATAROOT,VERSION,SPLIT")
        pairs = model_pairs(model, Path(parts[0]), parts[1], parts[2], args.samples)
        sets[name] = measure(pairs, DETECTION_CLASSES.index(args.detection_name))
        sets[name]["data"] = rest
    result = {
        "command": "python benchmarks/accuracy/offsets.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "weights": str(args.weights),
        "detection_name": args.detection_name,
        "samples": args.samples,
        "sets": sets,
    }
    print(to_markdown(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
