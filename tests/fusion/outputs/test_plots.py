"""Every picture comes from fusion.outputs.plots, in its one style."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

import fusion.eval.evaluate
import fusion.outputs.plots as render
import fusion.synth.contact_sheet
import fusion.train.loop
from fusion.config import DETECTION_CLASSES
from fusion.postprocess.results import ModelMetrics


def test_callers_use_the_render_module() -> None:
    assert fusion.eval.evaluate.plot_class_aps is render.plot_class_aps
    assert fusion.eval.evaluate.plot_bev_samples is render.plot_bev_samples
    assert fusion.train.loop.plot_losses is render.plot_losses
    assert fusion.synth.contact_sheet.contact_sheet is render.contact_sheet


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_loss_and_ap_plots(tmp_path: Path) -> None:
    log = tmp_path / "losses.jsonl"
    rows = [
        {
            "step": i + 1,
            "total": 3.0 / (i + 1),
            "heatmap": 2.0 / (i + 1),
            "regression": 1.0,
            "attribute": 0.0,
            "depth": 0.5,
        }  # fmt: skip
        for i in range(120)
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert render.plot_losses(tmp_path / "none.jsonl", tmp_path / "x.png") is None
    out = render.plot_losses(log, tmp_path / "plots" / "loss.png")
    assert out is not None and _png_size(out) == (800, 450)  # 8 x 4.5 in at DPI 100
    aps = {c: float(i) / 10 for i, c in enumerate(DETECTION_CLASSES)}
    metrics = {m: ModelMetrics(0.4, 0.5, aps, {}) for m in ("fusion", "lidar")}
    out = render.plot_class_aps(metrics, tmp_path / "plots" / "ap.png")
    assert _png_size(out) == (1100, 400)


def test_box_corners_front_first() -> None:
    corners = render.box_corners_bev(
        np.array([[1.0, 2.0]]), np.array([[2.0, 4.0, 1.5]]), np.array([np.pi / 2])
    )
    # a 4 m long box heading +y: its two front corners are 2 m ahead of the centre
    np.testing.assert_allclose(corners[0, :2, 1], [4.0, 4.0], atol=1e-12)
    np.testing.assert_allclose(sorted(corners[0, :2, 0]), [0.0, 2.0], atol=1e-12)


def test_box_corners_3d_bottom_then_top() -> None:
    c = render.box_corners_3d(
        np.array([[0.0, 0.0, 1.0]]), np.array([[2.0, 4.0, 1.5]]), np.array([0.0])
    )
    assert c.shape == (1, 8, 3)
    np.testing.assert_allclose(c[0, :4, 2], 0.25)  # centre z 1.0 minus half the height
    np.testing.assert_allclose(c[0, 4:, 2], 1.75)
    np.testing.assert_allclose(c[0, 4:, :2], c[0, :4, :2])
    np.testing.assert_allclose(c[0, :2, 0], [2.0, 2.0])  # front corners 2 m ahead (x)


def test_camera_detections_land_in_the_camera_that_sees_them(real_frame, tmp_path: Path) -> None:
    import cv2

    from fusion.config import CAMERA_CHANNELS
    from fusion.frame import Detections

    # one car 12 m ahead of the ego: LIDAR_TOP's +y is the car's forward direction
    ahead = real_frame.reference.sensor_to_ego.inverse().apply(np.array([[12.0, 0.0, 0.8]]))
    dets = Detections(
        center=ahead.astype(np.float32),
        size_wlh=np.array([[1.9, 4.5, 1.6]], np.float32),
        yaw=np.array([np.pi / 2], np.float32),
        velocity=np.zeros((1, 2), np.float32),
        scores=np.array([0.9], np.float32),
        labels=np.array([0]),
    )
    no_gt = dataclasses.replace(real_frame, boxes=None)
    out = render.render_camera_detections(no_gt, dets, "fusion", tmp_path / "cams.png")
    img = cv2.imread(str(out))
    assert img.shape == (360, 960, 3)
    red = np.all(img == render.MODEL_BGR["fusion"], axis=-1)
    hits = {ch: int(red[_tile_mask(k)].sum()) for k, ch in enumerate(CAMERA_CHANNELS)}
    assert hits["CAM_FRONT"] > 50, hits
    assert hits["CAM_BACK"] == 0, hits
    # below the score threshold: nothing drawn
    low = dataclasses.replace(dets, scores=np.array([0.1], np.float32))
    img = cv2.imread(str(render.render_camera_detections(no_gt, low, "fusion", tmp_path / "l.png")))
    assert not np.all(img == render.MODEL_BGR["fusion"], axis=-1).any()
    # the ground truth of the real keyframe is drawn in green
    img = cv2.imread(
        str(render.render_camera_detections(real_frame, None, "gt", tmp_path / "g.png"))
    )
    assert np.all(img == render.GT_BGR, axis=-1).sum() > 200


def _tile_mask(k: int) -> tuple[slice, slice]:
    return slice((k // 3) * 180, (k // 3 + 1) * 180), slice((k % 3) * 320, (k % 3 + 1) * 320)
