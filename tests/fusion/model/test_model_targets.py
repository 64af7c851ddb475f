"""Box coding: GT boxes -> targets -> head maps -> decode + NMS gives the boxes back, in the
LIDAR frame and (through the reference pose) in the global frame; augmentation keeps every
sensor's geometry consistent."""

from __future__ import annotations

import math

import numpy as np
import pytest
from model_fakes import oracle_maps

from fusion.config import DETECTION_CLASSES, load_config
from fusion.model.params import ATTRIBUTE_NAMES, CLASS_ATTRIBUTE_PREFIX
from fusion.model.targets import decode_regression
from fusion.postprocess.decode import decode_detections
from fusion.postprocess.results import detections_to_results
from fusion.preprocess.inputs import GlobalTransform, camera_inputs, image_view, view_camera
from fusion.train.dataset import box_targets, training_sample
from kernels import points_in_boxes


def _evaluated(frame, cfg):
    b = frame.boxes
    nx, ny = cfg.bev.grid
    r = cfg.bev.bev_range
    keep = []
    for i, name in enumerate(b.detection_names):
        x, y = b.center_lidar[i, :2]
        inside = r[0] <= x < r[3] and r[1] <= y < r[4]
        if name is not None and inside and b.num_lidar_pts[i] + b.num_radar_pts[i] > 0:
            keep.append(i)
    return np.array(keep)


def _match(dets, centers):
    """Index of the detection nearest each centre (m)."""
    d = np.linalg.norm(dets.center[None, :, :2] - centers[:, None, :2], axis=-1)
    return d.argmin(axis=1), d.min(axis=1)


@pytest.mark.parametrize("nms", ["circle", "rotated"])
def test_encode_decode_round_trip_on_the_real_keyframe(real_frame, nms):
    import dataclasses

    from fusion.config import load_config

    cfg = load_config("tiny")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, nms=nms, nms_radius=0.5))
    frame = real_frame
    keep = _evaluated(frame, cfg)
    assert len(keep) > 20
    targets = box_targets(frame, cfg, cfg.params)
    dets = decode_detections(*oracle_maps(targets), cfg)
    b = frame.boxes
    # boxes whose centres share a cell keep only the last one: count distinct cells
    cells = {
        (math.floor((x + 51.2) / 0.8), math.floor((y + 51.2) / 0.8))
        for x, y in b.center_lidar[keep, :2]
    }
    assert len(dets) >= len(cells) - 2  # NMS may merge a pair of touching boxes
    idx, dist = _match(dets, b.center_lidar[keep])
    ok = dist < 1e-3
    assert ok.mean() > 0.9
    for j, i in zip(idx[ok], keep[ok], strict=True):
        np.testing.assert_allclose(dets.center[j], b.center_lidar[i], atol=1e-4)
        np.testing.assert_allclose(dets.size_wlh[j], b.size_wlh[i], rtol=1e-4)
        assert abs(math.remainder(float(dets.yaw[j]) - b.yaw_lidar[i], 2 * math.pi)) < 1e-4
        assert DETECTION_CLASSES[dets.labels[j]] == b.detection_names[i]
        if np.isfinite(b.velocity_lidar[i]).all():
            np.testing.assert_allclose(dets.velocity[j], b.velocity_lidar[i], atol=1e-4)
        prefix = CLASS_ATTRIBUTE_PREFIX[b.detection_names[i]]
        if prefix and b.attributes[i].startswith(prefix):  # the attributes the devkit scores
            assert dets.attributes[j] == b.attributes[i]
        elif not prefix:
            assert dets.attributes[j] == ""
        assert dets.scores[j] > 0.99

    # the same boxes in the devkit's global frame
    results = detections_to_results(dets, frame)
    assert len(results) == len(dets)
    for j, i in zip(idx[ok], keep[ok], strict=True):
        r = results[j]
        np.testing.assert_allclose(r["translation"], b.center_global[i], atol=1e-3)
        q = np.asarray(r["rotation"])
        qg = b.rotation_global[i]
        assert abs(abs(float(q @ qg)) - 1.0) < 1e-6  # same rotation (q and -q alike)
        np.testing.assert_allclose(r["size"], b.size_wlh[i], rtol=1e-4)
        if np.isfinite(b.velocity_global[i]).all():
            np.testing.assert_allclose(r["velocity"], b.velocity_global[i], atol=1e-3)


def test_regression_coding_inverts():
    from fusion.config import load_config
    from fusion.model.targets import encode_targets

    cfg = load_config("tiny")
    boxes = np.array(
        [[3.3, -7.1, -0.5, 4.2, 1.8, 1.5, 2.5], [-20.05, 10.0, 0.2, 0.7, 0.6, 1.8, -3.0]]
    )
    vel = np.array([[1.0, -2.0], [np.nan, np.nan]])
    t = encode_targets(boxes, np.array([0, 8]), vel, np.array([5, -1]), cfg.bev, 10, cfg.params)
    iy, ix = np.nonzero(t.mask)
    assert len(iy) == 2
    dec, v = decode_regression(t.regression[:, iy, ix].T, ix, iy, cfg.bev)
    order = np.argsort(dec[:, 0])[::-1]
    np.testing.assert_allclose(dec[order, :6], boxes[:, :6], atol=1e-5)
    np.testing.assert_allclose(np.sin(dec[order, 6]), np.sin(boxes[:, 6]), atol=1e-6)
    assert t.velocity_valid[iy, ix][order].tolist() == [True, False]
    assert t.heatmap.max() == 1.0 and t.heatmap[0].max() == 1.0 and t.heatmap[8].max() == 1.0


def test_global_augmentation_keeps_points_in_their_boxes(fake_frames):
    frame = fake_frames[1]
    boxes = frame.boxes.as_array()
    pts = frame.lidar.points
    before = np.asarray(points_in_boxes(pts[:, :3].astype(np.float32), boxes.astype(np.float32)))
    rng = np.random.default_rng(3)
    augment = load_config("tiny").train.augment  # flip 0.5
    for _ in range(5):
        t = GlobalTransform.random(rng, augment)
        after = np.asarray(points_in_boxes(t.points(pts)[:, :3], t.boxes(boxes).astype(np.float32)))
        np.testing.assert_array_equal(before, after)
        assert before.max() >= 0
    # a flip mirrors the heading; a rotation by a adds a
    flip = GlobalTransform(np.diag([1.0, -1.0, 1.0]))
    np.testing.assert_allclose(flip.boxes(boxes)[:, 6], -boxes[:, 6], atol=1e-9)


def test_image_resize_and_crop_move_the_intrinsics_with_the_pixels(real_frame):
    from fusion.config import load_config

    cfg = load_config("tiny")
    data = real_frame.cameras["CAM_FRONT"]
    rng = np.random.default_rng(0)
    view = image_view(data.image.shape[1], data.image.shape[0], cfg, rng, cfg.train.augment)
    net = view_camera(data.camera, view, cfg)
    pts = real_frame.lidar.points[:, :3]
    to_cam = real_frame.sensor_to_lidar("CAM_FRONT").inverse()
    p = to_cam.apply(pts)
    uv_raw, _, ok_raw = data.camera.project(p)
    uv_net, _, _ = net.project(p)
    expected = uv_raw * view.scale - [view.x0, view.y0]
    np.testing.assert_allclose(uv_net[ok_raw], expected[ok_raw], atol=1e-6)


def test_depth_targets_come_from_the_lidar_points(real_frame):
    from fusion.config import load_config

    cfg = load_config("tiny")
    s = training_sample(real_frame, cfg, "camera", cfg.params)
    h, w = cfg.camera.feature_size
    assert s.depth.shape == (6, h, w)
    filled = (s.depth >= 0).mean(axis=(1, 2))
    assert (filled > 0.05).all()  # every camera sees LIDAR returns
    assert s.depth.max() < cfg.camera.depth_bins
    # the front camera's bottom rows (the road, close) sit in nearer bins than its horizon row
    front = s.depth[1]
    bottom, middle = front[-1][front[-1] >= 0], front[h // 2][front[h // 2] >= 0]
    assert bottom.mean() < middle.mean()


def test_training_sample_is_reproducible_and_augments(fake_frames, tiny_cfg, params):
    f = fake_frames[0]
    a = training_sample(
        f, tiny_cfg, "fusion", params, np.random.default_rng(1), tiny_cfg.train.augment
    )
    b = training_sample(
        f, tiny_cfg, "fusion", params, np.random.default_rng(1), tiny_cfg.train.augment
    )
    c = training_sample(f, tiny_cfg, "fusion", params, None, None)
    np.testing.assert_array_equal(a.targets.heatmap, b.targets.heatmap)
    np.testing.assert_array_equal(a.inputs.images, b.inputs.images)
    assert not np.array_equal(a.targets.heatmap, c.targets.heatmap)
    # the camera frustums follow the same global transform as the boxes
    assert not np.array_equal(
        a.inputs.camera_geometry.point_cell, c.inputs.camera_geometry.point_cell
    )
    assert camera_inputs(f, tiny_cfg).present.all()


def test_camera_lift_puts_lidar_depths_where_the_lidar_points_are(real_frame):
    """One-hot depths from the LIDAR (the depth targets) lifted with the camera geometry land in
    the BEV cells of those LIDAR points: frustum, resize/crop and camera->LIDAR all agree."""
    from scipy.ndimage import binary_dilation

    from fusion.config import load_config
    from fusion.preprocess.inputs import camera_frustums, camera_geometry
    from kernels import bev_pool

    cfg = load_config("tiny")
    s = training_sample(real_frame, cfg, "camera", cfg.params)
    cams = camera_inputs(real_frame, cfg)
    geometry = camera_geometry(camera_frustums(cams, cfg), cfg)
    d = cfg.camera.depth_bins
    depth = np.zeros((6, d, *cfg.camera.feature_size), np.float32)
    n, hh, ww = np.nonzero(s.depth >= 0)
    depth[n, s.depth[n, hh, ww], hh, ww] = 1.0
    lifted = np.asarray(
        bev_pool(depth, np.ones((6, 1, *cfg.camera.feature_size), np.float32), geometry)
    )[0]
    assert lifted.sum() > 100

    pts = real_frame.lidar.points[: real_frame.lidar.keyframe_points, :3]
    nx, ny = cfg.bev.grid
    ix = np.floor((pts[:, 0] - cfg.bev.bev_range[0]) / cfg.bev.cell_size[0]).astype(int)
    iy = np.floor((pts[:, 1] - cfg.bev.bev_range[1]) / cfg.bev.cell_size[1]).astype(int)
    ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    occupied = np.zeros((ny, nx), bool)
    occupied[iy[ok], ix[ok]] = True
    # depth bins are 2 m wide: allow the bin's half width along the ray (2 cells of 0.8 m)
    near = binary_dilation(occupied, iterations=2)
    assert lifted[near].sum() / lifted.sum() > 0.97
    # the check has teeth: the same depths 8 m further along the rays do not fit
    far = np.zeros_like(depth)
    far[:, 4:] = depth[:, :-4]
    shifted = np.asarray(
        bev_pool(far, np.ones((6, 1, *cfg.camera.feature_size), np.float32), geometry)
    )[0]
    assert shifted[near].sum() / shifted.sum() < 0.85


def test_circle_nms_radius_follows_the_class():
    from fusion.config import load_config
    from fusion.model.params import REGRESSION_CHANNELS

    cfg = load_config("tiny")  # 0.8 m cells, nms_radius scale 1.0
    nx, ny = cfg.bev.grid
    heatmap = np.full((len(DETECTION_CLASSES), ny, nx), -10.0, np.float32)
    car, ped = DETECTION_CLASSES.index("car"), DETECTION_CLASSES.index("pedestrian")
    for k, row in ((car, 40), (ped, 80)):
        heatmap[k, row, 60] = 3.0  # two peaks 2 cells (1.6 m) apart
        heatmap[k, row, 62] = 2.0
    regression = np.zeros((REGRESSION_CHANNELS, ny, nx), np.float32)
    regression[7] = 1.0  # cos(yaw)
    attribute = np.zeros((len(ATTRIBUTE_NAMES), ny, nx), np.float32)
    dets = decode_detections(heatmap, regression, attribute, cfg)
    labels = dets.labels.tolist()
    assert labels.count(car) == 1  # 1.6 m apart: one car (radius 2 m)
    assert labels.count(ped) == 2  # two pedestrians side by side (radius 0.42 m)
