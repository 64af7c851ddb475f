"""Velocity from the points to the devkit: targets agree with the motion in the LIDAR sweeps
under every augmentation, the pillar net sees the sweep time, and decoded velocities come out
in the global frame in m/s."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_fakes import make_frame

from fusion.config import DETECTION_CLASSES
from fusion.model.lidar import PillarNet
from fusion.postprocess.decode import decode_detections
from fusion.postprocess.results import detections_to_results
from fusion.preprocess.inputs import GlobalTransform
from fusion.train.dataset import box_targets

SWEEP_LAG_S = 0.2


def moving_frame(seed: int):
    """A fake frame whose LIDAR holds a second, older sweep: each box's points moved back by
    velocity * SWEEP_LAG_S, with dt = SWEEP_LAG_S (what motion-compensated sweeps show); and
    the box index of every point (-1 for the ground)."""
    frame = make_frame(seed)
    pts, boxes = frame.lidar.points, frame.boxes
    owner = np.full(len(pts), -1)
    for k, (c, (w, l, _), yaw) in enumerate(
        zip(boxes.center_lidar, boxes.size_wlh, boxes.yaw_lidar, strict=True)
    ):
        owner[(owner < 0) & (pts[:, 2] > -1.79) & _in_box(pts, c, l, w, yaw)] = k
    older = pts[owner >= 0].copy()
    older[:, :2] -= boxes.velocity_lidar[owner[owner >= 0]] * SWEEP_LAG_S
    older[:, 4] = SWEEP_LAG_S
    lidar = dataclasses.replace(
        frame.lidar, points=np.concatenate([pts, older]).astype(np.float32), num_sweeps=2
    )
    return dataclasses.replace(frame, lidar=lidar), np.concatenate([owner, owner[owner >= 0]])


def _in_box(pts, c, length, width, yaw) -> np.ndarray:
    d = pts[:, :2] - c[:2]
    cs, sn = np.cos(yaw), np.sin(yaw)
    along, across = d[:, 0] * cs + d[:, 1] * sn, -d[:, 0] * sn + d[:, 1] * cs
    return (np.abs(along) <= length / 2 + 1e-3) & (np.abs(across) <= width / 2 + 1e-3)


@pytest.mark.parametrize("seed", range(6))
def test_velocity_targets_follow_the_motion_in_the_sweeps_under_augmentation(
    seed, tiny_cfg, params
):
    frame, owner = moving_frame(seed)
    rng = np.random.default_rng(seed)
    aug = dataclasses.replace(tiny_cfg.train.augment, rotation=np.pi, flip=0.5)
    transform = GlobalTransform.identity() if seed == 0 else GlobalTransform.random(rng, aug)
    pts = transform.points(frame.lidar.points)
    targets = box_targets(frame, tiny_cfg, params, transform)
    boxes = transform.boxes(frame.boxes.as_array())
    x0, y0 = tiny_cfg.bev.bev_range[:2]
    dx, dy = tiny_cfg.bev.cell_size[:2]
    for k, (x, y, *_) in enumerate(boxes):
        ix, iy = int((x - x0) // dx), int((y - y0) // dy)
        assert targets.mask[iy, ix] and targets.velocity_valid[iy, ix]
        now = pts[(owner == k) & (pts[:, 4] == 0)]
        old = pts[(owner == k) & (pts[:, 4] == np.float32(SWEEP_LAG_S))]
        assert len(old) == len(now) > 0
        motion = (now[:, :2].mean(axis=0) - old[:, :2].mean(axis=0)) / SWEEP_LAG_S
        # the target is the motion the points show, in their (augmented) frame, in m/s
        v_target = targets.regression[8:10, iy, ix]
        np.testing.assert_allclose(v_target, motion, atol=2e-3)
        speed = np.hypot(*frame.boxes.velocity_lidar[k])
        np.testing.assert_allclose(np.hypot(*v_target), transform.scale * speed, rtol=1e-5)


def test_unknown_velocity_is_masked_out_of_the_loss(tiny_cfg, params):
    frame = make_frame(1)
    vel = frame.boxes.velocity_lidar.copy()
    vel[0] = np.nan
    frame = dataclasses.replace(frame, boxes=dataclasses.replace(frame.boxes, velocity_lidar=vel))
    t = box_targets(frame, tiny_cfg, params)
    x0, y0 = tiny_cfg.bev.bev_range[:2]
    dx, dy = tiny_cfg.bev.cell_size[:2]
    cells = [(int((y - y0) // dy), int((x - x0) // dx)) for x, y, _ in frame.boxes.center_lidar]
    assert not t.velocity_valid[cells[0]] and t.mask[cells[0]]
    assert all(t.velocity_valid[c] for c in cells[1:])


def test_pillar_net_sees_the_sweep_time(tiny_cfg):
    torch.manual_seed(0)
    net = PillarNet(tiny_cfg.point_cloud, channels=16).eval()
    v, p = 50, tiny_cfg.point_cloud.max_points_per_voxel
    g = torch.Generator().manual_seed(1)
    voxels = torch.rand((v, p, 5), generator=g) * torch.tensor([4.0, 4.0, 2.0, 255.0, 0.0])
    voxels[..., 4] = torch.randint(0, 10, (v, p), generator=g) * 0.05  # 10 sweeps at 20 Hz
    num = torch.full((v,), p, dtype=torch.int32)
    coords = torch.randint(0, 8, (v, 3), generator=g, dtype=torch.int32)
    voxels.requires_grad_(True)
    out = net(voxels, num, coords)
    out.sum().backward()
    assert voxels.grad[..., 4].abs().sum() > 0  # dt reaches the features
    later = voxels.detach().clone()
    later[..., 4] += 0.3
    assert not torch.allclose(net(later, num, coords), out.detach())


@pytest.mark.parametrize("mode", ["raw", "scaled"])
def test_scaled_point_features_are_all_of_order_one(mode):
    """Raw, x and y (m over +-51 m) swamp dt (s over 0.45 s); scaled, dt counts as much."""
    from fusion.config import load_config

    pc = load_config("tiny").point_cloud
    net = PillarNet(pc, channels=8, point_features=mode)
    seen = {}
    net.mlp[0].register_forward_hook(lambda mod, inp, out: seen.update(x=inp[0]))
    g = torch.Generator().manual_seed(2)
    v, p = 400, pc.max_points_per_voxel
    coords = torch.randint(0, 128, (v, 3), generator=g, dtype=torch.int32)
    coords[:, 2] = 0
    centre = (coords[:, :2].float() + 0.5) * 0.8 - 51.2
    voxels = torch.zeros((v, p, 5))
    voxels[..., :2] = centre[:, None] + (torch.rand((v, p, 2), generator=g) - 0.5) * 0.8
    voxels[..., 2] = torch.rand((v, p), generator=g) * 3 - 2
    voxels[..., 3] = torch.rand((v, p), generator=g) * 255
    voxels[..., 4] = torch.randint(0, 10, (v, p), generator=g) * 0.05
    net(voxels, torch.full((v,), p, dtype=torch.int32), coords)
    std = seen["x"].reshape(-1, 10).std(dim=0)
    ratio = float(std[4] / std[:2].max())  # dt against x, y
    if mode == "raw":
        assert ratio < 0.02
    else:
        assert ratio > 0.3 and bool((std > 0.1).all()) and bool((std < 2.0).all())


def test_decoded_velocity_reaches_the_devkit_in_global_m_per_s(tiny_cfg, params):
    """GT LIDAR-frame velocities -> targets -> decode -> result boxes equal GT global ones."""
    frame = make_frame(2)
    t = box_targets(frame, tiny_cfg, params)
    logits = np.where(t.heatmap == 1.0, 10.0, -10.0).astype(np.float32)
    attr = np.zeros((8, *t.mask.shape), np.float32)
    dets = decode_detections(logits, t.regression, attr, tiny_cfg, params)
    results = detections_to_results(dets, frame)
    assert len(results) == len(frame.boxes)
    b = frame.boxes
    for r in results:
        i = int(np.argmin(np.linalg.norm(b.center_global - r["translation"], axis=1)))
        assert r["detection_name"] == b.detection_names[i] and r["detection_name"] in (
            DETECTION_CLASSES
        )
        np.testing.assert_allclose(r["velocity"], b.velocity_global[i], atol=1e-4)
    # the reference pose is yawed: a LIDAR-frame velocity is not the global one
    assert not np.allclose(b.velocity_global, b.velocity_lidar, atol=0.1)


def test_radar_doppler_reaches_the_velocity_head(tiny_cfg, params):
    """The radar points' vx, vy become raster channels that the fusion head's velocity
    depends on: a gradient path from them, and other Doppler gives other velocities
    (measured on the shipped model: benchmarks/velocity_diag.py --zero-doppler)."""
    from fusion.config import RADAR_POINT_COLUMNS
    from fusion.model import build_detector
    from fusion.preprocess.inputs import radar_points, radar_raster
    from fusion.train.dataset import collate_training, training_sample

    frame = make_frame(2)
    pts = radar_points(frame, tiny_cfg)
    assert len(pts)
    vx, vy = RADAR_POINT_COLUMNS.index("vx"), RADAR_POINT_COLUMNS.index("vy")
    raster = radar_raster(pts, tiny_cfg)
    occupied = raster[-1] > 0  # the count channel
    # the raster carries the cells' mean Doppler
    assert np.abs(raster[[vx, vy]][:, occupied]).sum() > 0
    torch.manual_seed(0)
    model = build_detector(tiny_cfg, "fusion", params).eval()
    batch, _ = collate_training([training_sample(frame, tiny_cfg, "fusion", params)], tiny_cfg)
    rr = batch.radar_raster.clone().requires_grad_(True)
    batch = dataclasses.replace(batch, radar_raster=rr)
    out = model(batch).maps.regression[:, 8:10]  # vx, vy
    out.sum().backward()
    assert rr.grad[0, [vx, vy]].abs().sum() > 0
    flipped = rr.detach().clone()
    flipped[0, [vx, vy]] *= -1.0
    with torch.no_grad():
        other = model(dataclasses.replace(batch, radar_raster=flipped)).maps.regression[:, 8:10]
    assert not torch.allclose(other, out.detach())
