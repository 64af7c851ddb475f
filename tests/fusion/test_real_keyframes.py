"""Real labels through the whole chain, on two real keyframes of scene-0916 (tests/data, the
keyframes-only layout): the devkit's boxes -> our frame -> training targets -> decoded
detections -> devkit results -> the devkit's own score. A perfect network must score as one:
a wrong frame, box convention (wlh, yaw, velocity), class or target anywhere between the devkit
and the loss shows here as a lost AP or a TP error. This is the guard of the overfit check of
issue 17 (benchmarks/accuracy.md), which trains on these labels."""

from __future__ import annotations

import json

import pytest
from model_fakes import oracle_maps
from shared_data import REAL_KEYFRAMES

from fusion.config import load_config
from fusion.postprocess.decode import decode_detections
from fusion.postprocess.results import detections_to_results
from fusion.train.dataset import box_targets

VERSION, SPLIT = "v1.0-mini", "mini_val"
# the classes these two keyframes hold (car 68, pedestrian 46, motorcycle 16, bicycle 4,
# truck 4, bus 2 boxes; tests/data/README.md)
PRESENT = ("car", "pedestrian", "motorcycle", "bicycle", "truck", "bus")


@pytest.fixture(scope="module")
def oracle_metrics(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import dataclasses

    from nuscenes.nuscenes import NuScenes

    from fusion.data.reader import NuScenesReader
    from fusion.eval.evaluate import devkit_evaluate

    cfg = load_config("real_sweeps10")
    # the finest NMS radius: two boxes closer than a circle radius would be one detection
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, nms_radius=0.25))
    reader = NuScenesReader(REAL_KEYFRAMES, VERSION, config=cfg)
    results: dict[str, list] = {}
    for token in reader.sample_tokens(SPLIT):
        frame = reader.frame(token)
        dets = decode_detections(*oracle_maps(box_targets(frame, cfg, cfg.params)), cfg)
        results[token] = detections_to_results(dets, frame)
    out = tmp_path_factory.mktemp("oracle")
    path = out / "results.json"
    meta = {"use_camera": True, "use_lidar": True, "use_radar": True}
    meta |= {"use_map": False, "use_external": False}
    path.write_text(json.dumps({"meta": meta, "results": results}))
    nusc = NuScenes(VERSION, str(REAL_KEYFRAMES), verbose=False)
    metrics, _ = devkit_evaluate(nusc, SPLIT, path, out).evaluate()
    return metrics.serialize()


def test_real_keyframes_are_a_keyframes_only_mini_val_pair() -> None:
    tables = REAL_KEYFRAMES / VERSION
    samples = json.loads((tables / "sample.json").read_text())
    rows = json.loads((tables / "sample_data.json").read_text())
    assert len(samples) == 2
    absent = [r for r in rows if not (REAL_KEYFRAMES / r["filename"]).is_file()]
    assert absent and all(not r["is_key_frame"] for r in absent)
    assert all((REAL_KEYFRAMES / r["filename"]).is_file() for r in rows if r["is_key_frame"])


def test_perfect_head_scores_as_one_on_real_labels(oracle_metrics: dict) -> None:
    aps = oracle_metrics["mean_dist_aps"]
    errors = oracle_metrics["label_tp_errors"]
    # a box whose centre shares a BEV cell (0.8 m) with another box of its class is encoded
    # once: pedestrians in groups lose a little AP for it (0.944 measured), no class more
    for name in PRESENT:
        assert aps[name] > (0.9 if name == "pedestrian" else 0.95), (name, aps)
        # the matched boxes are the annotations themselves: every TP error about zero
        bound = {"trans_err": 0.01, "scale_err": 1e-3, "orient_err": 5e-3, "vel_err": 0.01}
        for err, most in (bound | {"attr_err": 0.01}).items():
            assert errors[name][err] < most, (name, errors[name])
    for name in set(aps) - set(PRESENT):
        assert aps[name] == 0.0  # absent classes: nothing invented


def test_regression_targets_keep_each_box_on_its_cell() -> None:
    from fusion.data.reader import NuScenesReader

    cfg = load_config("real_sweeps10")
    reader = NuScenesReader(REAL_KEYFRAMES, VERSION, config=cfg)
    frame = reader.frame(reader.sample_tokens(SPLIT)[0])
    targets = box_targets(frame, cfg, cfg.params)
    assert int((targets.heatmap == 1.0).sum()) > 50  # the peaks of the real boxes in range


# Measured with the shipped weights (benchmarks/accuracy.md, issue 17 second round): mean AP
# over the six present classes on these two keyframes (samples 7 and 8 of scene-0916, in the
# ho_train part the weights were trained on). A convention broken between the reader and the
# network (a frame, wlh order, yaw sign) drops it to about 0.
SHIPPED_SEEN_AP = {"fusion": 0.441, "lidar": 0.507, "camera": 0.372}


@pytest.mark.parametrize("model", ["fusion", "lidar", "camera"])
def test_shipped_weights_find_the_real_objects_they_were_trained_on(model, tmp_path) -> None:
    from fusion.eval.evaluate import evaluate
    from fusion.model.weights import packaged_weights

    report = evaluate(
        REAL_KEYFRAMES,
        VERSION,
        SPLIT,
        {model: packaged_weights(model)},
        tmp_path,
        pictures=0,
        progress=False,
    )
    assert report is not None
    aps = report.metrics[model].label_aps
    mean_present = sum(aps[name] for name in PRESENT) / len(PRESENT)
    assert mean_present > SHIPPED_SEEN_AP[model] - 0.1, (model, mean_present, aps)
    # the absent sweep files of the layout are skipped and counted, not an error
    if model != "camera":
        assert sum(report.absent_sweeps[model].values()) > 0
