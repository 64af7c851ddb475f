"""`fusion eval` on the real keyframe (split mini_train) with the devkit's DetectionEval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from model_fakes import tiny_config, tiny_params

from fusion.config import DETECTION_CLASSES
from fusion.eval.evaluate import devkit_evaluate, scene_condition
from fusion.frame import Detections
from fusion.model import build_detector, save_detector
from fusion.postprocess.results import TP_ERRORS, detections_to_results


def _weights(folder: Path, score_threshold: float) -> Path:
    cfg = tiny_config(score_threshold=score_threshold)
    for i, variant in enumerate(("fusion", "camera", "lidar")):
        torch.manual_seed(i)
        save_detector(
            build_detector(cfg, variant, tiny_params()), folder / f"{variant}.safetensors"
        )
    return folder


def _eval_argv(real_root: Path, weights: Path, out: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--dataroot",
        str(real_root),
        "--version",
        "v1.0-mini",
        "--split",
        "mini_train",
        "--weights",
        str(weights),
        "--out",
        str(out),
        "--json-out",
        str(out / "s.json"),
        "--no-progress",
        *extra,
    ]


def test_eval_writes_results_metrics_and_pictures(real_root: Path, tmp_path: Path, capsys):
    from fusion.cli import main

    weights = _weights(tmp_path / "w", score_threshold=0.05)
    out = tmp_path / "out"
    assert main(_eval_argv(real_root, weights, out)) == 0
    table = capsys.readouterr().out
    assert "mAP" in table and "NDS" in table and "bev_net" in table
    summary = json.loads((out / "s.json").read_text())
    assert summary["split"] == "mini_train" and summary["samples"] == 1 and summary["dropped"] == []
    assert set(summary["models"]) == {"fusion", "camera", "lidar"}
    for m in summary["models"].values():
        assert set(m) >= {"mean_ap", "nd_score", "label_aps", "tp_errors"}
        assert set(m["label_aps"]) == set(DETECTION_CLASSES)
        assert set(m["tp_errors"]) == set(TP_ERRORS)
        assert 0.0 <= m["mean_ap"] <= 1.0 and 0.0 <= m["nd_score"] <= 1.0
    for variant in ("fusion", "camera", "lidar"):
        results = json.loads((out / variant / "results_nusc.json").read_text())
        assert results["meta"]["use_camera"] == (variant != "lidar")
        boxes = next(iter(results["results"].values()))
        assert boxes and all(b["detection_name"] in DETECTION_CLASSES for b in boxes)
        # global frame: boxes sit around the ego position of the keyframe, not the origin
        t = np.array([b["translation"] for b in boxes])
        assert np.linalg.norm(t[:, :2].mean(axis=0)) > 100.0
    assert (out / "plots" / "class_ap.png").is_file()
    assert len(list((out / "plots").glob("bev_*.png"))) == 1


def test_eval_of_a_detector_that_finds_nothing(real_root: Path, tmp_path: Path):
    from fusion.cli import main

    weights = _weights(tmp_path / "w", score_threshold=1.0)  # sigmoid never reaches 1
    out = tmp_path / "out"
    assert main(_eval_argv(real_root, weights, out, "--models", "lidar")) == 0
    m = json.loads((out / "s.json").read_text())["models"]["lidar"]
    assert m["empty_submission"] is True
    assert m["mean_ap"] == 0.0 and m["nd_score"] == 0.0


def test_drop_removes_the_sensor_at_inference(real_root: Path, tmp_path: Path, capsys):
    from fusion.cli import main

    weights = _weights(tmp_path / "w", score_threshold=0.05)
    full, dropped = tmp_path / "full", tmp_path / "dropped"
    assert main(_eval_argv(real_root, weights, full, "--models", "lidar", "--pictures", "0")) == 0
    assert (
        main(
            _eval_argv(
                real_root,
                weights,
                dropped,
                "--models",
                "lidar",
                "--drop",
                "LIDAR_TOP",
                "--pictures",
                "0",
            )
        )
        == 0
    )
    assert json.loads((dropped / "s.json").read_text())["dropped"] == ["LIDAR_TOP"]
    a = json.loads((full / "lidar" / "results_nusc.json").read_text())["results"]
    b = json.loads((dropped / "lidar" / "results_nusc.json").read_text())["results"]
    assert a != b
    capsys.readouterr()
    assert main(_eval_argv(real_root, weights, tmp_path / "x", "--drop", "CAM_MIDDLE")) == 2
    assert "unknown sensor 'CAM_MIDDLE'" in capsys.readouterr().err


def test_perfect_detections_score_one_through_the_devkit(real_frame, real_nusc, tmp_path: Path):
    """GT boxes (LIDAR frame) -> results (global) -> DetectionEval: every class with ground truth
    gets AP 1, which only holds if the frame conversion is right."""
    b = real_frame.boxes
    seen = b.num_lidar_pts + b.num_radar_pts > 0  # the devkit drops GT without points
    keep = np.array([i for i, n in enumerate(b.detection_names) if n is not None and seen[i]])
    dets = Detections(
        center=b.center_lidar[keep].astype(np.float32),
        size_wlh=b.size_wlh[keep].astype(np.float32),
        yaw=b.yaw_lidar[keep].astype(np.float32),
        velocity=np.nan_to_num(b.velocity_lidar[keep]).astype(np.float32),
        scores=np.linspace(1.0, 0.5, len(keep)).astype(np.float32),
        labels=np.array([DETECTION_CLASSES.index(b.detection_names[i]) for i in keep]),
        attributes=tuple(b.attributes[i] for i in keep),
    )
    results = {
        "meta": {
            "use_camera": True,
            "use_lidar": True,
            "use_radar": False,
            "use_map": False,
            "use_external": False,
        },
        "results": {real_frame.sample_token: detections_to_results(dets, real_frame)},
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    evaluator = devkit_evaluate(real_nusc, "mini_train", path, tmp_path / "eval")
    metrics, _ = evaluator.evaluate()
    s = metrics.serialize()
    with_gt = {box.detection_name for box in evaluator.gt_boxes.all}
    assert len(with_gt) >= 5
    for cls in with_gt:
        assert s["mean_dist_aps"][cls] > 0.99, cls
        assert s["label_tp_errors"][cls]["trans_err"] < 1e-3, cls
        assert s["label_tp_errors"][cls]["scale_err"] < 1e-3, cls
        orient = s["label_tp_errors"][cls]["orient_err"]
        assert np.isnan(orient) if cls == "traffic_cone" else orient < 1e-3, cls  # cones: unscored
    assert s["mean_ap"] == pytest.approx(len(with_gt) / len(DETECTION_CLASSES), abs=0.01)


def test_scene_conditions():
    # the generator's record carries the condition as data; it wins over the prose
    assert scene_condition({"condition": "fog", "description": "synthetic, night"}) == "fog"
    # real nuScenes (and older synthetic sets) only say it in the description
    assert scene_condition({"description": "synthetic, night, seed 3, 12 actors"}) == "night"
    assert scene_condition({"description": "Night, rain, big street"}) == "night"
    assert scene_condition({"description": "synthetic, rain, seed 1"}) == "rain"
    assert scene_condition({"description": "Parking lot, peds, trucks"}) == "day"
    assert scene_condition({"condition": "snow", "description": "Rain"}) == "rain"


def test_weights_resolve_from_a_folder_or_from_run_folders(tmp_path: Path):
    from fusion.errors import FusionError
    from fusion.model.weights import resolve_weights

    (tmp_path / "lidar.safetensors").write_bytes(b"x")
    (tmp_path / "camera").mkdir()
    (tmp_path / "camera" / "camera.safetensors").write_bytes(b"x")
    got = resolve_weights(
        ["lidar", "camera"], tmp_path, ["fusion=" + str(tmp_path / "lidar.safetensors")]
    )
    assert got == {
        "lidar": tmp_path / "lidar.safetensors",
        "camera": tmp_path / "camera" / "camera.safetensors",
    }
    with pytest.raises(FusionError, match="not found"):
        resolve_weights(["fusion"], tmp_path / "nowhere", [])
    with pytest.raises(FusionError, match="unknown model"):
        resolve_weights(["radar"], tmp_path, [])


def test_eval_score_threshold_and_box_cap_override_the_weights(real_root: Path, tmp_path: Path):
    from fusion.cli import main

    weights = _weights(tmp_path / "w", score_threshold=0.05)

    def run(name: str, *extra: str) -> tuple[dict, list[float]]:
        out = tmp_path / name
        assert main(_eval_argv(real_root, weights, out, "--models", "lidar", *extra)) == 0
        summary = json.loads((out / "s.json").read_text())
        results = json.loads((out / "lidar" / "results_nusc.json").read_text())["results"]
        scores = [b["detection_score"] for b in next(iter(results.values()))]
        return summary["postprocess"]["lidar"], sorted(scores, reverse=True)

    own, own_scores = run("own")
    cap = tiny_config(score_threshold=0.05).model.max_detections
    assert own == {"score_threshold": 0.05, "max_detections": cap}  # the weights' own
    assert len(own_scores) > 8 and min(own_scores) > 0.05
    threshold = float(np.median(own_scores))
    cut, cut_scores = run("cut", "--score-threshold", f"{threshold}", "--max-detections", "4")
    assert cut == {"score_threshold": threshold, "max_detections": 4}
    # the highest-scored of the weights' own boxes, above the threshold, at most 4
    kept = [s for s in own_scores if s > threshold][:4]
    assert len(kept) == 4 and cut_scores == pytest.approx(kept)


@pytest.mark.parametrize("bad", [["--score-threshold", "1.0"], ["--max-detections", "501"]])
def test_eval_refuses_out_of_range_postprocess(bad: list[str], tmp_path: Path) -> None:
    from fusion.cli import main

    with pytest.raises(SystemExit):
        main(
            [
                "eval",
                "--dataroot",
                str(tmp_path),
                "--version",
                "v",
                "--split",
                "s",
                "--out",
                str(tmp_path / "o"),
                *bad,
            ]
        )


def test_with_postprocess_keeps_what_is_not_given() -> None:
    from fusion.postprocess.decode import with_postprocess

    cfg = tiny_config(score_threshold=0.05)
    assert with_postprocess(cfg) == cfg
    new = with_postprocess(cfg, max_detections=500)
    assert new.model.max_detections == 500 and new.model.score_threshold == 0.05
    with pytest.raises(ValueError):
        with_postprocess(cfg, score_threshold=-0.1)
