"""What an ego-pose error alone costs the devkit's metrics: the detections of a run with true
poses, each keyframe's boxes displaced as an ego-pose error of a given RMS would place them
(`fusion.postprocess.results.displace_results`), scored again by the devkit through the same
path as `fusion eval` (`devkit_evaluate`, `evaluate_subset`). No new inference: the detector's
output is the same, only the pose that takes it to the global frame is wrong.

The errors are drawn per keyframe, independent between keyframes: a horizontal offset from a
2-D Gaussian of the given RMS (sigma RMS / sqrt 2 per axis) and a yaw error from a Gaussian of
the given RMS. One standard-normal draw per seed serves every RMS (scaled), so the points of a
sweep differ only by the size of the error, not by its direction. Over a few dozen keyframes
one draw is noisy (at 0.29 m over 49 keyframes, the mAP loss of five draws ranged from 0.049
to 0.075), so a case is scored over several draws (seeds `seed`, `seed + 1`, ...) and their
mean reported."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusion.errors import FusionError
from fusion.eval.evaluate import devkit_evaluate, evaluate_subset, metrics_from
from fusion.postprocess.results import displace_results


def draw_pose_errors(
    n: int, rms_m: float, yaw_rms_rad: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`n` ego-pose errors: horizontal offsets (n, 2) m, 2-D Gaussian with RMS norm `rms_m`,
    and yaw errors (n,) rad, Gaussian with RMS `yaw_rms_rad`. Deterministic per `seed`; the
    same seed gives the same directions for every RMS."""
    if rms_m < 0 or yaw_rms_rad < 0:
        raise FusionError(f"a pose error RMS is not negative: {rms_m} m, {yaw_rms_rad} rad")
    unit = np.random.default_rng([seed, n]).standard_normal((n, 3))
    return unit[:, :2] * (rms_m / math.sqrt(2.0)), unit[:, 2] * yaw_rms_rad


def largest_error_within(
    rms: Sequence[float], drop: Sequence[float], tolerance: float = 0.01
) -> float | None:
    """The largest error RMS (m, or deg for a heading error) whose mAP loss `drop` (>= 0 is a
    loss) stays within `tolerance`: linear between the measured points (sorted by RMS), up to
    where the loss first exceeds it; 0 when the first point already does. None when it never
    does (the largest RMS measured is then a lower bound)."""
    pts = sorted(zip(rms, drop, strict=True))
    if pts and pts[0][1] > tolerance:
        return pts[0][0]
    for (r0, d0), (r1, d1) in zip(pts, pts[1:], strict=False):
        if d1 > tolerance:
            return r0 + (r1 - r0) * (tolerance - d0) / (d1 - d0)
    return None


def pose_sensitivity(
    nusc: Any,
    split: str,
    submission: Mapping[str, Any],
    ego_xy: Mapping[str, np.ndarray],
    cases: Sequence[tuple[float, float]],
    seed: int,
    work: Path,
    draws: int = 1,
) -> list[dict[str, Any]]:
    """Score `submission` (a devkit results file's content: `meta`, `results`) with each
    keyframe of `ego_xy` (sample token -> true ego x, y in m at its LIDAR_TOP time) displaced by
    drawn pose errors, for each case (horizontal RMS m, yaw RMS deg); the devkit's metrics over
    the keyframes of `ego_xy` only, for `draws` draws (seeds `seed` + 0, 1, ...). One row per
    case: the asked RMS, the RMS of all errors drawn, the metrics averaged over the draws
    (`ModelMetrics.as_json` fields) and each draw's mAP, NDS, mATE and mAVE (`draws`). The case
    (0, 0) is scored once: its metrics are those of `submission` itself, bit for bit."""
    if draws < 1:
        raise FusionError(f"pose sensitivity: need at least one draw, not {draws}")
    tokens = list(ego_xy)
    missing = [t for t in tokens if t not in submission["results"]]
    if missing:
        raise FusionError(
            f"{len(missing)} keyframes have no entry in the results (e.g. {missing[0]})"
        )
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for rms, yaw_deg in cases:
        per_draw, drawn_xy, drawn_yaw = [], [], []
        for k in range(draws if (rms, yaw_deg) != (0.0, 0.0) else 1):
            offsets, dyaw = draw_pose_errors(len(tokens), rms, math.radians(yaw_deg), seed + k)
            results = dict(submission["results"])
            for i, tok in enumerate(tokens):
                results[tok] = displace_results(results[tok], ego_xy[tok], offsets[i], dyaw[i])
            path = work / f"results_{len(rows):03d}_{k}.json"
            path.write_text(json.dumps({"meta": submission["meta"], "results": results}))
            evaluator = devkit_evaluate(nusc, split, path, work / f"devkit_{len(rows):03d}_{k}")
            per_draw.append(metrics_from(evaluate_subset(evaluator, tokens), False).as_json())
            drawn_xy.append(offsets)
            drawn_yaw.append(dyaw)
            path.unlink()
        xy, yaw = np.concatenate(drawn_xy), np.concatenate(drawn_yaw)
        rows.append(
            {
                "rms_m": float(rms),
                "yaw_rms_deg": float(yaw_deg),
                "drawn_rms_m": float(np.sqrt(np.mean(np.sum(xy**2, axis=1)))),
                "drawn_yaw_rms_deg": math.degrees(float(np.sqrt(np.mean(yaw**2)))),
                **_mean_metrics(per_draw),
                "draws": [
                    {
                        "mean_ap": m["mean_ap"],
                        "nd_score": m["nd_score"],
                        "trans_err": m["tp_errors"]["trans_err"],
                        "vel_err": m["tp_errors"]["vel_err"],
                    }
                    for m in per_draw
                ],
            }
        )
    return rows


def _mean_metrics(per_draw: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics averaged over draws; one draw's are returned as they are (no rounding)."""
    if len(per_draw) == 1:
        return dict(per_draw[0])

    def mean(values: list[float]) -> float:
        return float(np.mean(values))

    first = per_draw[0]
    return {
        "mean_ap": mean([m["mean_ap"] for m in per_draw]),
        "nd_score": mean([m["nd_score"] for m in per_draw]),
        "label_aps": {k: mean([m["label_aps"][k] for m in per_draw]) for k in first["label_aps"]},
        "tp_errors": {k: mean([m["tp_errors"][k] for m in per_draw]) for k in first["tp_errors"]},
        "empty_submission": any(m["empty_submission"] for m in per_draw),
    }
