"""Forward shapes of the three variants, missing sensors, and gradients through the kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion.config import DETECTION_CLASSES
from fusion.model import build_detector, variant_modalities
from fusion.model.kernel_ops import scatter_bev_autograd
from fusion.model.params import ATTRIBUTE_NAMES, REGRESSION_CHANNELS
from fusion.preprocess.inputs import drop_sensors
from fusion.train.dataset import collate_training, training_sample


@pytest.mark.parametrize("variant", ["fusion", "camera", "lidar"])
def test_forward_shapes(variant, tiny_cfg, params, fake_frames):
    torch.manual_seed(0)
    samples = [training_sample(f, tiny_cfg, variant, params) for f in fake_frames[:2]]
    inputs, _ = collate_training(samples, tiny_cfg)
    model = build_detector(tiny_cfg, variant, params).eval()
    assert tuple(model.encoders.keys()) == variant_modalities(variant)
    with torch.no_grad():
        out = model(inputs)
    nx, ny = tiny_cfg.bev.grid
    assert out.maps.heatmap.shape == (2, len(DETECTION_CLASSES), ny, nx)
    assert out.maps.regression.shape == (2, REGRESSION_CHANNELS, ny, nx)
    assert out.maps.attribute.shape == (2, len(ATTRIBUTE_NAMES), ny, nx)
    if "camera" in variant_modalities(variant):
        h, w = tiny_cfg.camera.feature_size
        assert out.depth is not None
        assert out.depth.shape == (
            2 * len(tiny_cfg.camera.channels),
            tiny_cfg.camera.depth_bins,
            h,
            w,
        )
        torch.testing.assert_close(out.depth.sum(dim=1), torch.ones_like(out.depth[:, 0]))
    else:
        assert out.depth is None
    assert torch.isfinite(out.maps.heatmap).all()


def test_fusion_runs_with_any_sensor_missing(tiny_cfg, params, fake_frames):
    model = build_detector(tiny_cfg, "fusion", params).eval()
    frame = fake_frames[0]
    outs = []
    for drop in (
        [],
        ["LIDAR_TOP"],
        ["cameras"],
        ["radars"],
        ["LIDAR_TOP", "radars"],
        ["CAM_FRONT"],
    ):
        s = training_sample(drop_sensors(frame, drop), tiny_cfg, "fusion", params)
        inputs, _ = collate_training([s], tiny_cfg)
        with torch.no_grad():
            outs.append(model(inputs).maps.heatmap)
        assert torch.isfinite(outs[-1]).all()
    # each missing sensor changes the input the head sees
    for o in outs[1:]:
        assert not torch.allclose(o, outs[0])


def test_drop_sensors_removes_exactly_the_named_sensors(fake_frames):
    frame = fake_frames[0]
    assert drop_sensors(frame, ["LIDAR_TOP"]).lidar is None
    assert drop_sensors(frame, ["cameras"]).cameras == {}
    assert drop_sensors(frame, ["radars"]).radars == {}
    f = drop_sensors(frame, ["CAM_FRONT", "CAM_BACK"])
    assert set(f.cameras) == set(frame.cameras) - {"CAM_FRONT", "CAM_BACK"}
    assert f.lidar is frame.lidar
    from fusion.errors import FusionError

    with pytest.raises(FusionError, match="unknown sensor"):
        drop_sensors(frame, ["CAM_MIDDLE"])


def test_gradients_reach_every_branch_through_the_kernels(tiny_cfg, params, fake_frames):
    samples = [training_sample(f, tiny_cfg, "fusion", params) for f in fake_frames[:2]]
    inputs, _ = collate_training(samples, tiny_cfg)
    model = build_detector(tiny_cfg, "fusion", params).train()
    out = model(inputs)
    (out.maps.heatmap.sum() + out.maps.regression.square().sum()).backward()
    for name in ("camera", "lidar", "radar"):
        grads = [p.grad for p in model.encoders[name].parameters() if p.requires_grad]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def test_scatter_autograd_matches_a_dense_reference():
    rng = np.random.default_rng(0)
    coords = np.column_stack([rng.integers(0, 5, 30), rng.integers(0, 4, 30), np.zeros(30)]).astype(
        np.int32
    )
    feats = torch.tensor(rng.normal(size=(30, 3)), dtype=torch.float64, requires_grad=True)
    weight = torch.tensor(rng.normal(size=(3, 4, 5)), dtype=torch.float64)
    out = scatter_bev_autograd(feats, torch.from_numpy(coords), (5, 4))
    (out * weight).sum().backward()
    # reference: the same sum built with index_put (accumulate) in plain torch
    ref_feats = feats.detach().clone().requires_grad_(True)
    dense = torch.zeros(3, 4, 5, dtype=torch.float64).index_put(
        (
            torch.arange(3)[:, None],
            torch.from_numpy(coords[:, 1]).long()[None],
            torch.from_numpy(coords[:, 0]).long()[None],
        ),
        ref_feats.t(),
        accumulate=True,
    )
    torch.testing.assert_close(out, dense)
    (dense * weight).sum().backward()
    torch.testing.assert_close(feats.grad, ref_feats.grad)


def test_pillar_grid_finer_than_the_bev_grid(tiny_cfg, params, fake_frames):
    import dataclasses

    from fusion.config import load_config
    from fusion.errors import ConfigError
    from fusion.model.lidar import pillar_grid_ratio

    assert pillar_grid_ratio(load_config("nuscenes").point_cloud, load_config("nuscenes").bev) == 4
    assert pillar_grid_ratio(tiny_cfg.point_cloud, tiny_cfg.bev) == 1
    fine = dataclasses.replace(
        tiny_cfg, point_cloud=dataclasses.replace(tiny_cfg.point_cloud, voxel_size=(0.4, 0.4, 8.0))
    )
    model = build_detector(fine, "lidar", params).eval()
    inputs, _ = collate_training([training_sample(fake_frames[0], fine, "lidar", params)], fine)
    assert int(inputs.voxel_coords[:, 0].max()) >= 32  # pillars really live on the 64 x 64 grid
    with torch.no_grad():
        out = model(inputs)
    assert out.maps.heatmap.shape[-2:] == (32, 32)
    odd = dataclasses.replace(
        tiny_cfg, point_cloud=dataclasses.replace(tiny_cfg.point_cloud, voxel_size=(0.3, 0.3, 8.0))
    )
    with pytest.raises(ConfigError, match="power of 2"):
        build_detector(odd, "lidar", params)
