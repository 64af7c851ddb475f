"""Training steps, checkpoints (safetensors only) and shipped-weights loading."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from fusion.commands.train import parse_init_branches
from fusion.model import build_detector, load_detector, save_detector
from fusion.model.losses import detection_loss
from fusion.train.dataset import collate_training, training_sample
from fusion.train.loop import (
    RunPosition,
    init_branch_from,
    init_from,
    load_checkpoint,
    lr_factor,
    param_groups,
    save_checkpoint,
    shard_indices,
)


def _batch(frames, cfg, params, variant="fusion"):
    samples = [
        training_sample(f, cfg, variant, params, np.random.default_rng(i), cfg.train.augment)
        for i, f in enumerate(frames)
    ]
    return collate_training(samples, cfg)


def _step(model, optimizer, inputs, targets, params):
    out = model(inputs)
    loss = detection_loss(out.maps, out.depth, targets, params)
    optimizer.zero_grad()
    loss.total.backward()
    optimizer.step()
    return loss


@pytest.mark.parametrize("variant", ["fusion", "camera", "lidar", "camera-stride8"])
def test_a_few_steps_overfit_a_fixed_batch(variant, tiny_cfg, params, fake_frames):
    torch.manual_seed(0)
    if variant == "camera-stride8":  # depth targets and outputs on the 2x finer feature grid
        variant = "camera"
        cam = dataclasses.replace(tiny_cfg.camera, feature_stride=8)
        tiny_cfg = dataclasses.replace(tiny_cfg, camera=cam)
    inputs, targets = _batch(fake_frames[:2], tiny_cfg, params, variant)
    if variant == "camera":
        assert targets.depth is not None and (targets.depth >= 0).any()
        assert targets.depth.shape[-2:] == tiny_cfg.camera.feature_size
    model = build_detector(tiny_cfg, variant, params).train()
    opt = torch.optim.AdamW(param_groups(model, 3e-3, 0.0, tiny_cfg.train.branch_lr))
    losses = [float(_step(model, opt, inputs, targets, params).total.detach()) for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0], losses
    assert all(np.isfinite(losses))


def test_param_groups_cover_every_parameter_once_with_branch_scales(tiny_cfg, params):
    model = build_detector(tiny_cfg, "fusion", params)
    groups = param_groups(
        model, 1e-3, 0.01, dataclasses.replace(tiny_cfg.train.branch_lr, camera=0.1)
    )
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    by_name = {g["name"]: g for g in groups}
    assert by_name["camera"]["lr"] == pytest.approx(1e-4)
    assert by_name["dense"]["lr"] == pytest.approx(1e-3)
    assert by_name["dense.no_decay"]["weight_decay"] == 0.0


def test_schedule_warms_up_then_decays():
    f = [lr_factor(s, 100, 10) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[-1] == pytest.approx(0.01, abs=1e-3)


def test_shards_partition_each_epoch():
    shards = [shard_indices(11, 0, 3, r, 2) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 6
    assert set(shards[0]) | set(shards[1]) == set(range(11))
    assert shard_indices(11, 0, 3, 0, 2) == shards[0]
    assert shard_indices(11, 0, 4, 0, 2) != shards[0]


def test_checkpoint_resume_continues_exactly(tmp_path: Path, tiny_cfg, params, fake_frames):
    inputs, targets = _batch(fake_frames[:2], tiny_cfg, params)
    torch.manual_seed(0)
    model = build_detector(tiny_cfg, "fusion", params).train()
    opt = torch.optim.AdamW(param_groups(model, 1e-3, 0.01, tiny_cfg.train.branch_lr))
    for _ in range(2):
        _step(model, opt, inputs, targets, params)
    path = save_checkpoint(
        tmp_path / "last.safetensors", model, opt, RunPosition(2, 1, 0), {"seed": 0}
    )
    expected = float(_step(model, opt, inputs, targets, params).total.detach())
    expected_params = [p.detach().clone() for p in model.parameters()]

    torch.manual_seed(123)  # a different init: everything must come from the checkpoint
    resumed = build_detector(tiny_cfg, "fusion", params).train()
    opt2 = torch.optim.AdamW(param_groups(resumed, 1e-3, 0.01, tiny_cfg.train.branch_lr))
    assert load_checkpoint(path, resumed, opt2) == RunPosition(2, 1, 0)
    got = float(_step(resumed, opt2, inputs, targets, params).total.detach())
    assert got == pytest.approx(expected, rel=1e-5)
    for a, b in zip(expected_params, resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6)


def test_checkpoint_for_another_config_is_refused(tmp_path: Path, tiny_cfg, params):
    from fusion.errors import FusionError

    model = build_detector(tiny_cfg, "lidar", params)
    opt = torch.optim.AdamW(model.parameters())
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, RunPosition(), {})
    other_cfg = dataclasses.replace(
        tiny_cfg, model=dataclasses.replace(tiny_cfg.model, head_channels=8)
    )
    other = build_detector(other_cfg, "lidar", params)
    with pytest.raises(FusionError, match="another model or config"):
        load_checkpoint(path, other, torch.optim.AdamW(other.parameters()))


def test_init_copies_weights_across_sweep_counts_and_refuses_another_model(
    tmp_path: Path, tiny_cfg, params
):
    from fusion.errors import FusionError

    torch.manual_seed(3)
    raw = dataclasses.replace(params, point_features="raw")
    path = save_detector(build_detector(tiny_cfg, "lidar", raw), tmp_path / "l.safetensors")
    more_sweeps = dataclasses.replace(
        tiny_cfg, point_cloud=dataclasses.replace(tiny_cfg.point_cloud, sweeps=10)
    )
    torch.manual_seed(4)
    model = build_detector(more_sweeps, "lidar", raw)
    init_from(model, path)
    for k, v in load_detector(path).state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)
    # raw -> scaled point features: the first layer is rescaled, the pillar net is unchanged
    scaled = build_detector(tiny_cfg, "lidar", dataclasses.replace(params, point_features="scaled"))
    init_from(scaled, path)
    g = torch.Generator().manual_seed(0)
    vox = torch.rand((20, 8, 5), generator=g) * torch.tensor([20.0, 20.0, 3.0, 255.0, 0.45])
    num = torch.randint(1, 9, (20,), generator=g, dtype=torch.int32)
    coords = torch.randint(0, 32, (20, 3), generator=g, dtype=torch.int32)
    src = load_detector(path)
    torch.testing.assert_close(
        scaled.eval().pillar_net(vox, num, coords), src.pillar_net(vox, num, coords)
    )
    with pytest.raises(FusionError, match="weights of the 'lidar' model, which does not read"):
        init_from(build_detector(tiny_cfg, "fusion", params), path)
    wider = dataclasses.replace(
        tiny_cfg, model=dataclasses.replace(tiny_cfg.model, head_channels=8)
    )
    with pytest.raises(FusionError, match="tensors differ"):
        init_from(build_detector(wider, "lidar", params), path)


@pytest.mark.parametrize("variant", ["camera", "lidar"])
def test_init_from_the_fusion_model_keeps_its_branch_and_the_fuser_channels_of_it(
    variant, tmp_path: Path, tiny_cfg, params, fake_frames
):
    """A camera (LIDAR) model started from the fusion model computes what the fusion model
    computes with the fuser's weights of the other sensors set to zero."""
    torch.manual_seed(5)
    fusion = build_detector(tiny_cfg, "fusion", params)
    for m in fusion.modules():  # BatchNorm statistics away from their defaults
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = save_detector(fusion, tmp_path / "f.safetensors")
    torch.manual_seed(6)
    model = build_detector(tiny_cfg, variant, params)
    init_from(model, path)
    spans = {"camera": (0, tiny_cfg.camera.channels_out)}
    spans["lidar"] = (spans["camera"][1], spans["camera"][1] + tiny_cfg.model.lidar_channels)
    lo, hi = spans[variant]
    with torch.no_grad():
        w = fusion.fuser.conv[0].weight
        w[:, :lo] = 0.0
        w[:, hi:] = 0.0
    inputs, _ = _batch(fake_frames[:2], tiny_cfg, params, "fusion")
    with torch.no_grad():
        ours = model.eval()(inputs).maps
        theirs = fusion.eval()(inputs).maps
    assert float(ours.heatmap.abs().max()) > 0
    torch.testing.assert_close(ours.heatmap, theirs.heatmap, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours.regression, theirs.regression, rtol=1e-4, atol=1e-4)


def test_init_onto_stride_8_camera_features_keeps_every_shared_tensor(
    tmp_path: Path, tiny_cfg, params
):
    from fusion.errors import FusionError

    torch.manual_seed(7)
    path = save_detector(build_detector(tiny_cfg, "fusion", params), tmp_path / "f.safetensors")
    cfg8 = dataclasses.replace(
        tiny_cfg, camera=dataclasses.replace(tiny_cfg.camera, feature_stride=8)
    )
    model = build_detector(cfg8, "camera", params)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    init_from(model, path)
    src = load_detector(path).state_dict()
    for k, v in model.state_dict().items():
        if k.startswith("encoders.camera.lateral8."):
            torch.testing.assert_close(v, fresh[k])
        elif k != "fuser.conv.0.weight":
            torch.testing.assert_close(v, src[k])
    d, c = model.eval().camera_net(torch.zeros((1, 3) + tiny_cfg.camera.image_hw))
    assert d.shape[-2:] == c.shape[-2:] == cfg8.camera.feature_size
    # and back: a stride-16 model from stride-8 weights names the layer it has no place for
    path8 = save_detector(model, tmp_path / "c8.safetensors")
    with pytest.raises(FusionError, match="encoders.camera.lateral8.bias"):
        init_from(build_detector(tiny_cfg, "camera", params), path8)


def test_init_branch_takes_one_sensor_branch_and_leaves_the_rest(tmp_path: Path, tiny_cfg, params):
    from fusion.errors import FusionError

    torch.manual_seed(8)
    cam_path = save_detector(build_detector(tiny_cfg, "camera", params), tmp_path / "c.safetensors")
    torch.manual_seed(9)
    model = build_detector(tiny_cfg, "fusion", params)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    init_branch_from(model, "camera", cam_path)
    cam = load_detector(cam_path).state_dict()
    for k, v in model.state_dict().items():
        if k.startswith("encoders.camera."):
            torch.testing.assert_close(v, cam[k])
        else:
            torch.testing.assert_close(v, before[k])
    with pytest.raises(FusionError, match="has no lidar branch"):
        init_branch_from(model, "lidar", cam_path)
    with pytest.raises(FusionError, match="'camera' model has no lidar branch"):
        init_branch_from(build_detector(tiny_cfg, "camera", params), "lidar", cam_path)
    # a LIDAR branch of raw point features, into a model of scaled ones: the same pillar net
    raw = build_detector(tiny_cfg, "lidar", dataclasses.replace(params, point_features="raw"))
    raw_path = save_detector(raw, tmp_path / "l.safetensors")
    scaled = build_detector(
        tiny_cfg, "fusion", dataclasses.replace(params, point_features="scaled")
    )
    init_branch_from(scaled, "lidar", raw_path)
    g = torch.Generator().manual_seed(0)
    vox = torch.rand((20, 8, 5), generator=g) * torch.tensor([20.0, 20.0, 3.0, 255.0, 0.45])
    num = torch.randint(1, 9, (20,), generator=g, dtype=torch.int32)
    coords = torch.randint(0, 32, (20, 3), generator=g, dtype=torch.int32)
    torch.testing.assert_close(
        scaled.eval().pillar_net(vox, num, coords), raw.eval().pillar_net(vox, num, coords)
    )
    assert parse_init_branches(["camera=a/b.safetensors"]) == (("camera", Path("a/b.safetensors")),)
    for bad in ("camera", "sonar=x", "camera="):
        with pytest.raises(FusionError, match="--init-branch wants SENSOR=WEIGHTS"):
            parse_init_branches([bad])


def test_weights_round_trip_through_safetensors(tmp_path: Path, tiny_cfg, params, fake_frames):
    inputs, _ = _batch(fake_frames[:1], tiny_cfg, params, "camera")
    model = build_detector(tiny_cfg, "camera", params).eval()
    path = save_detector(model, tmp_path / "camera.safetensors")
    loaded = load_detector(path)
    assert loaded.variant == "camera" and loaded.cfg == tiny_cfg and loaded.params == params
    with torch.no_grad():
        a, b = model(inputs).maps, loaded(inputs).maps
    torch.testing.assert_close(a.heatmap, b.heatmap)
    torch.testing.assert_close(a.regression, b.regression)


def test_corrupt_weights_raise_a_user_error(tmp_path: Path):
    from fusion.errors import FusionError

    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(FusionError):
        load_detector(bad)
    with pytest.raises(FusionError, match="not found"):
        load_detector(tmp_path / "missing.safetensors")


def test_no_pickle_loading_anywhere():
    root = Path(__file__).resolve().parents[3]
    offenders = []
    for path in [*(root / "fusion").rglob("*.py"), *(root / "kernels").rglob("*.py")]:
        text = path.read_text()
        if "torch.load(" in text or "pickle.load" in text:
            offenders.append(str(path))
    assert offenders == []


def test_frame_dataset_keys_and_frame_cache(tiny_cfg, params, fake_frames):
    from model_fakes import FakeSource

    from fusion.train.dataset import FrameDataset

    class CountingSource(FakeSource):
        reads = 0

        def frame(self, sample_token):
            CountingSource.reads += 1
            return super().frame(sample_token)

    tokens = [f.sample_token for f in fake_frames]
    ds = FrameDataset(
        CountingSource(fake_frames),
        tokens,
        tiny_cfg,
        "lidar",
        params,
        tiny_cfg.train.augment,
        seed=3,
        cache_frames=2,
    )
    a, b, c = ds[(0, 1)], ds[(0, 1)], ds[(1, 1)]
    np.testing.assert_array_equal(a.targets.heatmap, b.targets.heatmap)  # same key, same draw
    assert not np.array_equal(a.targets.heatmap, c.targets.heatmap)  # next epoch, new draw
    assert CountingSource.reads == 1  # the cached frame served the other two
    ds[(0, 2)], ds[(0, 3)], ds[(0, 1)]
    assert CountingSource.reads == 4  # capacity 2: frame 1 was evicted


def test_point_keep_thins_the_lidar_points_and_keeps_the_keyframe_rows_first(fake_frames):
    """thin_points keeps about `keep` of the points, the keyframe scan's as the first rows; at
    1 nothing changes and nothing is drawn."""
    from fusion.train.dataset import thin_points

    frame = fake_frames[0]
    lidar = frame.lidar
    rng = np.random.default_rng(0)
    thin = thin_points(frame, 0.4, rng).lidar
    n = len(lidar.points)
    assert abs(len(thin.points) - 0.4 * n) < 5 * np.sqrt(n)
    key = {tuple(p) for p in lidar.points[: lidar.keyframe_points]}
    assert all(tuple(p) in key for p in thin.points[: thin.keyframe_points])
    assert not any(tuple(p) in key for p in thin.points[thin.keyframe_points :])
    state = rng.bit_generator.state
    assert thin_points(frame, 1.0, rng) is frame
    assert rng.bit_generator.state == state


def test_point_keep_below_one_gives_sparser_voxels(tiny_cfg, params, fake_frames):
    """[train.augment] point_keep: the default (1, 1) leaves training inputs as before; (0.2,
    0.2) puts fewer points into the pillars of the same sample."""
    aug = tiny_cfg.train.augment
    assert aug.point_keep == (1.0, 1.0)
    thin = dataclasses.replace(aug, point_keep=(0.2, 0.2))

    def points(augment):
        s = training_sample(fake_frames[0], tiny_cfg, "lidar", params, np.random.default_rng(3),
                            augment)  # fmt: skip
        return int(s.inputs.voxels.num_points.sum())

    assert points(aug) == points(aug)
    assert points(thin) < 0.4 * points(aug)
