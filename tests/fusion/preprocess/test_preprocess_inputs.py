"""One pipeline: training and inference run the same pre-processing stages and give the same
head maps; camera geometry is cached by calibration, with or without ego-motion compensation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_fakes import make_frame, tiny_config, tiny_params

from calibration import Transform
from fusion.engines.runner import STAGES, Runner, StageTimes
from fusion.engines.torch_engine import TorchEngine
from fusion.model import build_detector
from fusion.preprocess.inputs import (
    CameraGeometryCache,
    camera_frustums,
    camera_inputs,
)
from fusion.train.dataset import collate_training, training_sample


def _moving(frame, dx_m: float, dt_us: int):
    """`frame` with every camera taken `dt_us` earlier, the ego `dx_m` behind (forward x)."""
    cams = {}
    for ch, cam in frame.cameras.items():
        e = cam.pose.ego_to_global.matrix.copy()
        e[:3, 3] -= e[:3, 0] * dx_m
        pose = dataclasses.replace(
            cam.pose,
            timestamp_us=cam.pose.timestamp_us - dt_us,
            ego_to_global=Transform(e, src="ego", dst="global"),
        )
        cams[ch] = dataclasses.replace(cam, pose=pose)
    return dataclasses.replace(frame, cameras=cams)


@pytest.mark.parametrize("variant", ["fusion", "camera", "lidar", "camera-stride8"])
def test_training_forward_and_runner_give_the_same_heatmaps(variant):
    cfg, params = tiny_config(), tiny_params()
    if variant == "camera-stride8":
        variant = "camera"
        cfg = dataclasses.replace(cfg, camera=dataclasses.replace(cfg.camera, feature_stride=8))
    torch.manual_seed(0)
    model = build_detector(cfg, variant, params).eval()
    with torch.no_grad():  # larger random weights than the init, so the maps depend on the input
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    frame = _moving(make_frame(3), dx_m=0.4, dt_us=40_000)
    runner = Runner(cfg, variant, TorchEngine(model), params, camera_motion="compensate")
    head = runner.head(frame)
    batch, _ = collate_training([training_sample(frame, cfg, variant, params)], cfg)
    with torch.no_grad():
        maps = model(batch).maps
    np.testing.assert_allclose(head.heatmap, maps.heatmap.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(head.regression, maps.regression.numpy(), rtol=1e-4, atol=1e-5)
    # and the check has teeth: another frame gives other maps
    other = runner.head(make_frame(4))
    assert (
        np.abs(other.heatmap - head.heatmap).max()
        > 100 * np.abs(head.heatmap - maps.heatmap.numpy()).max()
    )


def test_stage_list_is_stage_times_fields_in_frame_order():
    assert STAGES == StageTimes.names() == tuple(StageTimes().as_dict())
    assert STAGES == (
        "read", "decode", "images", "camera_geometry", "camera_net", "bev_pool", "voxelize",
        "lidar_net", "scatter", "radar_wait", "radar_raster", "bev_net", "postprocess",
    )  # fmt: skip


def test_geometry_cache_by_calibration_ignores_ego_motion():
    cfg = tiny_config()
    base = make_frame(1)
    cache = CameraGeometryCache(cfg, "ignore")
    for i, dx in enumerate((0.0, 0.3, 0.6, 0.9)):
        cache.get(camera_inputs(_moving(base, dx, 10_000 * i), cfg))
    assert cache.builds == 1  # a moving car, one rig: computed once
    # another rig (intrinsics changed) is another entry
    cam = base.cameras["CAM_FRONT"]
    k = cam.camera.intrinsics.copy()
    k[0, 0] *= 1.05
    other = dataclasses.replace(cam, camera=dataclasses.replace(cam.camera, intrinsics=k))
    cache.get(
        camera_inputs(dataclasses.replace(base, cameras={**base.cameras, "CAM_FRONT": other}), cfg)
    )
    assert cache.builds == 2


def test_geometry_cache_with_compensation_follows_the_ego():
    cfg = tiny_config()
    base = make_frame(1)
    cache = CameraGeometryCache(cfg, "compensate")
    for i, dx in enumerate((0.0, 0.3, 0.6)):
        cache.get(camera_inputs(_moving(base, dx, 10_000 * i), cfg))
    assert cache.builds == 3


def test_compensated_frustums_move_with_the_ego_and_rig_frustums_do_not():
    cfg = tiny_config()
    still = camera_inputs(make_frame(2), cfg)
    moved = camera_inputs(_moving(make_frame(2), 0.5, 50_000), cfg)
    # no motion: both poses agree
    np.testing.assert_allclose(
        camera_frustums(still, cfg, motion="compensate"),
        camera_frustums(still, cfg, motion="ignore"),
        atol=1e-5,
    )
    np.testing.assert_array_equal(
        camera_frustums(moved, cfg, motion="ignore"), camera_frustums(still, cfg, motion="ignore")
    )
    shift = camera_frustums(moved, cfg, motion="compensate") - camera_frustums(
        still, cfg, motion="compensate"
    )
    # the cameras were 0.5 m behind along ego x at their time: all frustum points move 0.5 m
    np.testing.assert_allclose(np.linalg.norm(shift, axis=-1), 0.5, atol=1e-4)


def _pillar_points(voxels) -> np.ndarray:
    """(N, 5) the points held by the pillars (padding left out)."""
    keep = np.arange(voxels.features.shape[1])[None, :] < voxels.num_points[:, None]
    return voxels.features[keep]


def _inside(xyz: np.ndarray, box) -> np.ndarray:
    return np.all((xyz[:, :3] >= box[:3]) & (xyz[:, :3] <= box[3:]), axis=1)


def test_ego_filter_removes_the_real_cars_own_returns(real_frame):
    from fusion.config import load_config
    from fusion.preprocess.inputs import ego_filter_mask, sample_inputs, without_ego_returns

    cfg = load_config("nuscenes")
    box = np.asarray(cfg.point_cloud.ego_box)
    pts = real_frame.lidar.points
    horiz = np.hypot(pts[:, 0], pts[:, 1])
    # the real HDL-32E keyframe: thousands of returns from its own car within 3 m
    assert (horiz < 3.0).sum() > 5000
    mask = ego_filter_mask(pts, cfg.point_cloud)
    np.testing.assert_array_equal(mask, _inside(pts, box))
    kept = without_ego_returns(pts, cfg)
    assert (
        len(kept) == len(pts) - mask.sum() and (np.hypot(kept[:, 0], kept[:, 1]) < 3.0).sum() < 100
    )
    # what the detector reads: no pillar holds a point of the box; with `none`, they are there
    inputs, _ = sample_inputs(real_frame, cfg, ("lidar",))
    assert not _inside(_pillar_points(inputs.voxels), box).any()
    off = dataclasses.replace(
        cfg, point_cloud=dataclasses.replace(cfg.point_cloud, ego_filter="none")
    )
    inputs, _ = sample_inputs(real_frame, off, ("lidar",))
    assert _inside(_pillar_points(inputs.voxels), box).sum() > 500  # pillars cap at 20 points


def test_ego_filter_runs_before_augmentation(real_frame):
    from fusion.config import load_config
    from fusion.preprocess.inputs import GlobalTransform, sample_inputs

    cfg = load_config("nuscenes")
    box = np.asarray(cfg.point_cloud.ego_box)
    # two marked points: one in the box (2.3 m ahead), one 2.3 m behind (outside it). A half
    # turn swaps their places: filtered before the turn, the one from the box is gone and the
    # one turned into the box's place stays (a filter after the turn would do the opposite)
    marked = np.array([[0.0, 2.3, -1.8, 201.0, 0.0], [0.0, -2.3, -1.8, 202.0, 0.0]], np.float32)
    lidar = dataclasses.replace(
        real_frame.lidar, points=np.concatenate([real_frame.lidar.points, marked])
    )
    frame = dataclasses.replace(real_frame, lidar=lidar)
    half_turn = GlobalTransform(np.diag([-1.0, -1.0, 1.0]))
    inputs, _ = sample_inputs(frame, cfg, ("lidar",), transform=half_turn)
    seen = _pillar_points(inputs.voxels)
    assert not np.isin(seen[:, 3], [201.0]).any()
    (behind,) = seen[seen[:, 3] == 202.0]
    np.testing.assert_allclose(behind[:3], [0.0, 2.3, -1.8], atol=1e-5)
    assert _inside(behind[None], box).all()
    assert not _inside(half_turn.points(seen), box).any()


def test_ego_filter_is_recorded_in_the_config():
    from fusion.config import dumps_toml, load_config, loads_config
    from fusion.errors import ConfigError

    cfg = load_config("nuscenes")
    assert cfg.point_cloud.ego_filter == "box" and len(cfg.point_cloud.ego_box) == 6
    text = dumps_toml(cfg)
    assert "ego_filter" in text and "ego_box" in text
    assert loads_config(text, "cfg") == cfg
    bad = text.replace("ego_box = [-1.0, -1.7,", "ego_box = [1.5, -1.7,")
    with pytest.raises(ConfigError, match="ego_box"):
        loads_config(bad, "cfg")


def test_inference_ego_filter_in_voxelize_equals_filtering_first(real_frame):
    """Inference leaves the ego box to voxelize's pass (`exclude`); training filters the cloud
    before augmentation. Without augmentation both give the same pillars, to the bit."""
    from fusion.config import load_config
    from fusion.preprocess.inputs import (
        GlobalTransform,
        lidar_voxels,
        sample_inputs,
        without_ego_returns,
    )

    cfg = load_config("nuscenes")
    inference, _ = sample_inputs(real_frame, cfg, ("lidar",))
    filtered_first = lidar_voxels(without_ego_returns(real_frame.lidar.points, cfg), cfg)
    training, _ = sample_inputs(real_frame, cfg, ("lidar",), transform=GlobalTransform.identity())
    for v in (filtered_first, training.voxels):
        np.testing.assert_array_equal(inference.voxels.features, v.features)
        np.testing.assert_array_equal(inference.voxels.coords, v.coords)
        np.testing.assert_array_equal(inference.voxels.num_points, v.num_points)
    unfiltered = lidar_voxels(real_frame.lidar.points, cfg)
    assert unfiltered.num_points.sum() > inference.voxels.num_points.sum()
