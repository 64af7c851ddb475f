"""`fusion calibrate`: checkerboard intrinsics, and a LIDAR-camera alignment check of a dataroot."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from calibration import calibrate_from_checkerboards, detect_miscalibration
from fusion.commands.arguments import add_json_arguments, emit_json
from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.errors import DataError, FusionError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mode", metavar="MODE")
    sub.required = True
    board = sub.add_parser("board", help="intrinsics and distortion from checkerboard images")
    board.add_argument("images", type=Path, help="folder of .jpg/.png views of one camera")
    board.add_argument("--pattern", required=True, help="inner corners COLSxROWS, e.g. 9x6")
    board.add_argument("--square", type=float, required=True, help="square side (m)")
    add_json_arguments(board, "the calibration")
    check = sub.add_parser("check", help="score each camera's LIDAR alignment on one sample")
    check.add_argument("--dataroot", required=True)
    check.add_argument("--version", required=True, help="e.g. v1.0-mini")
    check.add_argument("--sample", help="sample token (default: the first)")
    check.add_argument("--step-deg", type=float, default=0.5, help="perturbation size (deg)")
    add_json_arguments(check, "the scores")


def _pattern(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise FusionError(f"--pattern must look like 9x6, got {text!r}") from exc
    return cols, rows


def _board(args: argparse.Namespace) -> dict:
    import cv2

    pattern = _pattern(args.pattern)
    files = sorted(
        p for p in args.images.glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    )
    if not files:
        raise DataError("no .jpg or .png images found", args.images)
    images = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise DataError("corrupt image: cannot be decoded", f)
        images.append(img)
    cal = calibrate_from_checkerboards(images, pattern, args.square)
    return {
        "intrinsics": cal.camera.intrinsics.tolist(),
        "image_hw": [cal.camera.height, cal.camera.width],
        "distortion": cal.distortion.tolist(),
        "rms_px": cal.rms_px,
        "used": [files[i].name for i in cal.used_views],
        "skipped": [files[i].name for i in cal.skipped_views],
    }


def _check(args: argparse.Namespace) -> dict:
    reader = NuScenesReader(
        args.dataroot, args.version, ReaderOptions(lidar_sweeps=1, radar_sweeps=1)
    )
    tokens = reader.sample_tokens()
    if not tokens:
        raise DataError("dataroot has no samples", args.dataroot)
    frame = reader.frame(args.sample or tokens[0])
    if frame.lidar is None:
        raise DataError("the sample has no LIDAR scan", args.dataroot)
    pts = frame.lidar.points[: frame.lidar.keyframe_points]
    out = {"sample_token": frame.sample_token, "cameras": {}}
    for ch, cam in frame.cameras.items():
        rep = detect_miscalibration(
            pts[:, :3],
            cam.image,
            cam.camera,
            frame.sensor_to_lidar(ch).inverse(),
            step_deg=args.step_deg,
        )
        out["cameras"][ch] = {
            "score": rep.score,
            "fraction_of_perturbations_worse": rep.fraction_worse,
            "calibrated": rep.calibrated,
            "best_perturbation_deg": np.asarray(rep.best_perturbation_deg).tolist(),
        }
    return out


def run(args: argparse.Namespace) -> int:
    result = _board(args) if args.mode == "board" else _check(args)
    if emit_json(args, result):
        return 0
    if args.mode == "board":
        k = np.array(result["intrinsics"])
        print(
            f"{len(result['used'])} views used, {len(result['skipped'])} without a board; "
            f"RMS reprojection {result['rms_px']:.3f} px"
        )
        print(f"fx {k[0, 0]:.2f}  fy {k[1, 1]:.2f}  cx {k[0, 2]:.2f}  cy {k[1, 2]:.2f}  (px)")
        print("distortion k1 k2 p1 p2 k3: " + " ".join(f"{d:.5f}" for d in result["distortion"]))
    else:
        print(
            f"LIDAR-camera alignment, sample {result['sample_token']} "
            f"(one frame: a verdict on busy images is weak evidence)"
        )
        for ch, r in result["cameras"].items():
            verdict = (
                "ok"
                if r["calibrated"]
                else "check: a rotation of "
                + " ".join(f"{v:+.1f}" for v in r["best_perturbation_deg"])
                + " deg scores higher"
            )
            print(
                f"  {ch:<16} score {r['score']:8.2f}  "
                f"{100 * r['fraction_of_perturbations_worse']:3.0f}% of perturbations worse  "
                f"{verdict}"
            )
    return 0
